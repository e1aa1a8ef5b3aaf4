//! Cursor's `aiserver.v1.ErrorDetails`, read from whichever form the error carries.

use cursor_connect_frame::ConnectError;
use cursor_proto::aiserver::v1::{CustomErrorDetails, ErrorDetails, error_button};
use cursor_proto::error_details::is_error_details_type;
use prost::Message as _;
use serde_json::Value;

use crate::cursor_table::{CursorError, cursor_error_by_name};

/// Metadata key Cursor uses for a machine-readable inference failure (E07, E08).
pub const INFERENCE_ERROR_TYPE: &str = "x-cursor-inference-request-error-type";

/// `additionalInfo` keys that name a model to switch to, in order of preference.
const FALLBACK_KEYS: [&str; 4] = [
    "autoSwitchToModel",
    "fallbackModel",
    "auto_switch_to_model",
    "fallback_model",
];

/// Where the [`CursorDetails`] were read from.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailsSource {
    /// The protobuf `value` of an `aiserver.v1.ErrorDetails` detail (authoritative).
    Value,
    /// The human-readable `debug` JSON of a detail (used when the value is missing or broken).
    Debug,
    /// Only the `x-cursor-inference-request-error-type` metadata (no title or advice fields).
    Metadata,
}

/// The parts of Cursor's `ErrorDetails` that classification uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorDetails {
    error: CursorError,
    title: String,
    detail: String,
    is_retryable: Option<bool>,
    additional_info: Vec<(String, String)>,
    suggested_models: Vec<String>,
    action_required: Option<String>,
    source: DetailsSource,
}

impl CursorDetails {
    /// Reads the details of `err`, in this order:
    ///
    /// 1. the first `aiserver.v1.ErrorDetails` detail whose `value` decodes (authoritative);
    /// 2. the first detail whose `debug` JSON names a Cursor error, read by the same parser as
    ///    [`CursorDetails::from_debug_json`] (several real captures carry a cut, garbage or
    ///    missing `value`, or no `type` at all, beside a complete `debug`: E03, E04, E07–E14);
    /// 3. the `x-cursor-inference-request-error-type` metadata (a name only, no title).
    ///
    /// Only details typed `aiserver.v1.ErrorDetails` or untyped have their `debug` read: the
    /// `debug` of another message (say `google.rpc.RetryInfo`) is that message, not Cursor's.
    /// `None` when none of the three is present.
    pub fn from_error(err: &ConnectError) -> Option<Self> {
        let details = err.details();
        details
            .iter()
            .filter(|d| is_error_details_type(d.type_name()) && !d.value().is_empty())
            .find_map(|d| ErrorDetails::decode(d.value().as_ref()).ok())
            .map(|decoded| Self::from_proto(&decoded))
            .or_else(|| {
                details
                    .iter()
                    .filter(|d| debug_may_be_error_details(d.type_name()))
                    .filter_map(|d| d.debug())
                    .find_map(Self::from_debug_json)
            })
            .or_else(|| {
                let name = err.metadata().get(INFERENCE_ERROR_TYPE)?;
                let row = cursor_error_by_name(name)?;
                Some(Self::bare(CursorError(row.value), DetailsSource::Metadata))
            })
    }

    /// Reads the details from raw error JSON: a unary error body (`{code, message, details}`)
    /// or an end-stream (`{"error": {…}}`), in the order of [`CursorDetails::from_error`]
    /// without the metadata: the first `aiserver.v1.ErrorDetails` detail whose `value` decodes,
    /// else the first `debug` JSON (of an `ErrorDetails` or untyped detail) that names an
    /// error. `None` for anything else.
    ///
    /// [`classify`](crate::classify) already reads `debug` through the frame crate; this is for
    /// bodies the frame crate could not parse at all (a frame cut mid-JSON, as in E05).
    pub fn from_error_json(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let error = value
            .get("error")
            .filter(|e| e.is_object())
            .unwrap_or(&value);
        let details = error.get("details")?.as_array()?;
        let from_value = details.iter().find_map(|d| {
            // Without the type, bytes that happen to parse are not trusted (protobuf decoding
            // is lenient); the `debug` of such a detail is still read below.
            if !is_error_details_type(detail_type(d)) {
                return None;
            }
            let bytes = decode_b64(d.get("value")?.as_str()?)?;
            ErrorDetails::decode(bytes.as_slice()).ok()
        });
        from_value.map(|m| Self::from_proto(&m)).or_else(|| {
            details
                .iter()
                .filter(|d| debug_may_be_error_details(detail_type(d)))
                .filter_map(|d| d.get("debug"))
                .find_map(Self::from_debug_value)
        })
    }

    fn bare(error: CursorError, source: DetailsSource) -> Self {
        Self {
            error,
            title: String::new(),
            detail: String::new(),
            is_retryable: None,
            additional_info: Vec::new(),
            suggested_models: Vec::new(),
            action_required: None,
            source,
        }
    }

    /// Builds the view from a decoded `ErrorDetails` message.
    pub fn from_proto(msg: &ErrorDetails) -> Self {
        let mut out = Self::bare(CursorError(msg.error), DetailsSource::Value);
        if let Some(custom) = &msg.details {
            out.fill_from_custom(custom);
        }
        out
    }

    fn fill_from_custom(&mut self, custom: &CustomErrorDetails) {
        self.title.clone_from(&custom.title);
        self.detail.clone_from(&custom.detail);
        self.is_retryable = custom.is_retryable;
        let mut info: Vec<(String, String)> = custom
            .additional_info
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The proto map has no order; sort so the advice is deterministic.
        info.sort();
        self.additional_info = info;
        self.suggested_models = custom
            .buttons
            .iter()
            .filter_map(|b| match &b.action {
                Some(error_button::Action::SwitchModel(s)) => s.suggested_model.clone(),
                None => None,
            })
            .filter(|m| !m.is_empty())
            .collect();
        self.action_required = custom
            .analytics_metadata
            .as_ref()
            .and_then(|a| a.action_required.clone())
            .filter(|a| !a.is_empty());
    }

    /// Builds the view from the protobuf-JSON `debug` rendering of `ErrorDetails`
    /// (`{"error":"ERROR_…","details":{"title":…,"isRetryable":…,"additionalInfo":{…},
    /// "buttons":[{"switchModel":{"suggestedModel":…}}]}}`). Both camelCase and snake_case
    /// keys are accepted. `None` when the text is not such an object or names no known error.
    pub fn from_debug_json(text: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        Self::from_debug_value(&value)
    }

    fn from_debug_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let error = match obj.get("error")? {
            Value::String(name) => CursorError(cursor_error_by_name(name)?.value),
            Value::Number(n) => CursorError(i32::try_from(n.as_i64()?).ok()?),
            _ => return None,
        };
        let mut out = Self::bare(error, DetailsSource::Debug);
        let Some(details) = obj.get("details").and_then(Value::as_object) else {
            return Some(out);
        };
        let text = |key: &str| {
            details
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let pick = |camel: &str, snake: &str| details.get(camel).or_else(|| details.get(snake));
        out.title = text("title");
        out.detail = text("detail");
        out.is_retryable = pick("isRetryable", "is_retryable").and_then(Value::as_bool);
        if let Some(info) = pick("additionalInfo", "additional_info").and_then(Value::as_object) {
            let mut pairs: Vec<(String, String)> = info
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect();
            pairs.sort();
            out.additional_info = pairs;
        }
        if let Some(buttons) = details.get("buttons").and_then(Value::as_array) {
            out.suggested_models = buttons
                .iter()
                .filter_map(|b| b.get("switchModel").or_else(|| b.get("switch_model")))
                .filter_map(|s| s.get("suggestedModel").or_else(|| s.get("suggested_model")))
                .filter_map(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
        }
        out.action_required = pick("analyticsMetadata", "analytics_metadata")
            .and_then(|a| a.get("actionRequired").or_else(|| a.get("action_required")))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        Some(out)
    }

    /// The `Error` enum value.
    pub fn error(&self) -> CursorError {
        self.error
    }

    /// Cursor's user-facing title (may be empty).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Cursor's user-facing detail text (may be empty).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// `CustomErrorDetails.is_retryable` when the server sent it.
    pub fn is_retryable(&self) -> Option<bool> {
        self.is_retryable
    }

    /// One `additionalInfo` entry.
    pub fn additional_info(&self, key: &str) -> Option<&str> {
        self.additional_info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The analytics `actionRequired` value (e.g. `"login"`).
    pub fn action_required(&self) -> Option<&str> {
        self.action_required.as_deref()
    }

    /// Where these details came from.
    pub fn source(&self) -> DetailsSource {
        self.source
    }

    /// The model Cursor suggests instead: `additionalInfo.autoSwitchToModel` or `fallbackModel`,
    /// else the first "switch model" button.
    pub fn fallback_model(&self) -> Option<&str> {
        FALLBACK_KEYS
            .iter()
            .find_map(|key| self.additional_info(key).filter(|m| !m.is_empty()))
            .or_else(|| self.suggested_models.first().map(String::as_str))
    }

    /// `additionalInfo.retryAfter` in whole seconds (E09 sends `"60"`).
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.additional_info("retryAfter")
            .or_else(|| self.additional_info("retry_after"))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A JSON detail's `type` (empty when missing or not a string).
fn detail_type(detail: &Value) -> &str {
    detail
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether a detail of this type may carry `ErrorDetails` in its `debug`: Cursor's own type,
/// or none (E09, E12–E14 send only `debug`).
fn debug_may_be_error_details(type_name: &str) -> bool {
    type_name.is_empty() || is_error_details_type(type_name)
}

/// Standard base64, padded or not (Connect emits it unpadded).
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .or_else(|| STANDARD.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_json_accepts_both_key_styles_and_numbers() {
        let camel = r#"{"error":"ERROR_RATE_LIMITED_CHANGEABLE","details":{"title":"T","isRetryable":true,
            "additionalInfo":{"autoSwitchToModel":"auto","n":3},"buttons":[{"switchModel":{"suggestedModel":"m"}}],
            "analyticsMetadata":{"actionRequired":"upgrade"}}}"#;
        let snake = r#"{"error":51,"details":{"title":"T","is_retryable":true,
            "additional_info":{"auto_switch_to_model":"auto","n":3},"buttons":[{"switch_model":{"suggested_model":"m"}}],
            "analytics_metadata":{"action_required":"upgrade"}}}"#;
        for text in [camel, snake] {
            let d = CursorDetails::from_debug_json(text).unwrap();
            assert_eq!(d.error(), CursorError(51));
            assert_eq!(d.title(), "T");
            assert_eq!(d.is_retryable(), Some(true));
            assert_eq!(d.fallback_model(), Some("auto"));
            assert_eq!(d.additional_info("n"), Some("3"));
            assert_eq!(d.action_required(), Some("upgrade"));
            assert_eq!(d.source(), DetailsSource::Debug);
        }
    }

    #[test]
    fn debug_json_rejects_what_is_not_error_details() {
        for text in [
            "",
            "[]",
            "{}",
            r#"{"error":"ERROR_NOT_A_THING"}"#,
            r#"{"error":true}"#,
            r#"{"error":99999999999}"#,
            r#"{"retryDelay":"1s"}"#,
        ] {
            assert!(CursorDetails::from_debug_json(text).is_none(), "{text}");
        }
        // An error name alone is enough.
        let d = CursorDetails::from_debug_json(r#"{"error":"ERROR_OUTDATED_CLIENT"}"#).unwrap();
        assert_eq!(
            (d.error(), d.title(), d.fallback_model()),
            (CursorError(30), "", None)
        );
    }

    #[test]
    fn base64_padded_and_unpadded() {
        assert_eq!(decode_b64("CAI"), Some(vec![0x08, 0x02]));
        assert_eq!(decode_b64("CAI="), Some(vec![0x08, 0x02]));
        assert_eq!(decode_b64("x"), None);
        assert_eq!(
            decode_b64("C-I"),
            None,
            "URL-safe alphabet is not Connect's"
        );
    }
}
