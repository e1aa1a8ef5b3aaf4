//! Connect errors the mock sends: end-stream errors on streams and JSON bodies on unary calls,
//! with `aiserver.v1.ErrorDetails` built from real captured bytes.

use base64::Engine as _;
use bytes::Bytes;
use cursor_connect_frame::Code;

/// The `type` Cursor puts on its error details.
pub const ERROR_DETAILS_TYPE: &str = "aiserver.v1.ErrorDetails";

/// A real `ErrorDetails` (ERROR_NOT_LOGGED_IN) captured from Cursor (vector E01), base64 unpadded.
pub const NOT_LOGGED_IN_DETAILS_B64: &str = "CAISVQoUQXV0aGVudGljYXRpb24gZXJyb3ISMklmIHlvdSBhcmUgbG9nZ2VkIGluLCB0cnkgbG9nZ2luZyBvdXQgYW5kIGJhY2sgaW4uIABSBwoFbG9naW4YAQ";

/// A complete end-stream payload captured from `agent.v1.AgentService/Run` (vector E02, 608
/// bytes): `invalid_argument` carrying ERROR_MODEL_NO_LONGER_SUPPORTED with a suggested model.
pub const MODEL_RETIRED_END_STREAM: &str =
    include_str!("vectors/E02-endstream-model-no-longer-supported.json");

/// The end-stream JSON Cursor sends when a Run's first message is not a run request
/// (vector F02, no details).
pub const FIRST_MESSAGE_END_STREAM: &str = r#"{"error":{"code":"invalid_argument","message":"First message must be a run request or prewarm request"}}"#;

/// One entry of an error's `details` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailSpec {
    type_name: String,
    value: Bytes,
    debug_json: Option<String>,
}

impl DetailSpec {
    /// A detail of type `type_name` whose value is the raw protobuf `value` (sent as base64).
    pub fn new(type_name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            type_name: type_name.into(),
            value: value.into(),
            debug_json: None,
        }
    }

    /// Adds the human-readable `debug` member, given as JSON text and inserted verbatim.
    ///
    /// # Errors
    /// Returns the parse error if `json` is not valid JSON.
    pub fn with_debug_json(mut self, json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde_json::Value>(json)?;
        self.debug_json = Some(json.to_owned());
        Ok(self)
    }

    /// The detail's protobuf type name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The raw protobuf bytes of the detail.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    fn write_json(&self, out: &mut String) {
        // Cursor sends the keys in the order type, debug, value (vector E02).
        out.push_str("{\"type\":");
        push_json_string(out, &self.type_name);
        if let Some(debug) = &self.debug_json {
            out.push_str(",\"debug\":");
            out.push_str(debug);
        }
        out.push_str(",\"value\":\"");
        out.push_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.value));
        out.push_str("\"}");
    }
}

/// A Connect error as the mock sends it: code, message, details and end-stream metadata.
///
/// [`ErrorSpec::raw`] sends a payload verbatim instead (used for the captured E02 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSpec {
    code: Code,
    message: String,
    details: Vec<DetailSpec>,
    metadata: Vec<(String, Vec<String>)>,
    raw: Option<Bytes>,
}

impl ErrorSpec {
    /// An error with `code` and `message` and no details.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            metadata: Vec::new(),
            raw: None,
        }
    }

    /// An error whose end-stream payload (or unary body) is `json`, byte for byte. `code` is used
    /// for the HTTP status of unary responses.
    pub fn raw(code: Code, json: impl Into<Bytes>) -> Self {
        let mut spec = Self::new(code, "");
        spec.raw = Some(json.into());
        spec
    }

    /// Appends a detail.
    pub fn with_detail(mut self, detail: DetailSpec) -> Self {
        self.details.push(detail);
        self
    }

    /// Appends an end-stream metadata entry (top-level `metadata` of the end-stream JSON; unary
    /// errors send it as response headers).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => self.metadata.push((key, vec![value])),
        }
        self
    }

    /// The Connect code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message (empty for [`ErrorSpec::raw`]).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details.
    pub fn details(&self) -> &[DetailSpec] {
        &self.details
    }

    /// The metadata entries.
    pub fn metadata(&self) -> &[(String, Vec<String>)] {
        &self.metadata
    }

    /// `unauthenticated` with the captured ERROR_NOT_LOGGED_IN details (E01) and their debug JSON.
    pub fn not_logged_in() -> Self {
        let value = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(NOT_LOGGED_IN_DETAILS_B64)
            .map(Bytes::from)
            .unwrap_or_default();
        Self::new(Code::Unauthenticated, "Error").with_detail(debugged(
            value,
            r#"{"error":"ERROR_NOT_LOGGED_IN","details":{"title":"Authentication error","detail":"If you are logged in, try logging out and back in.","isRetryable":false,"analyticsMetadata":{"actionRequired":"login"}},"isExpected":true}"#,
        ))
    }

    /// The captured end-stream of a retired model (E02), verbatim.
    pub fn model_retired() -> Self {
        Self::raw(
            Code::InvalidArgument,
            Bytes::from_static(MODEL_RETIRED_END_STREAM.as_bytes()),
        )
    }

    /// `resource_exhausted` with ERROR_RATE_LIMITED (50) details, texts from a real capture (E03).
    pub fn rate_limited() -> Self {
        let title = "You have an unpaid invoice";
        let detail = "Visit [cursor.com/dashboard](https://cursor.com/dashboard) and pay your invoice in Stripe to resume requests.";
        let value = error_details(50, title, detail, false, &[]);
        let debug = format!(
            r#"{{"error":"ERROR_RATE_LIMITED","details":{{"title":{},"detail":{},"isRetryable":false,"showRequestId":false}},"isExpected":true}}"#,
            json_string(title),
            json_string(detail)
        );
        Self::new(Code::ResourceExhausted, "Error").with_detail(debugged(value, &debug))
    }

    /// `resource_exhausted` with ERROR_PROVIDER_ERROR (57) and the
    /// `x-cursor-inference-request-error-type` metadata, texts from a real capture (E07).
    pub fn provider_error() -> Self {
        let title = "Provider Error";
        let detail = "We're having trouble connecting to the model provider.";
        let value = error_details(57, title, detail, false, &[("providerStatusCode", "422")]);
        let debug = format!(
            r#"{{"error":"ERROR_PROVIDER_ERROR","details":{{"title":{},"detail":{},"isRetryable":false,"showRequestId":false,"additionalInfo":{{"providerStatusCode":"422"}}}},"isExpected":true}}"#,
            json_string(title),
            json_string(detail)
        );
        Self::new(Code::ResourceExhausted, "Error")
            .with_detail(debugged(value, &debug))
            .with_metadata("x-cursor-inference-request-error-type", "PROVIDER_ERROR")
    }

    /// The JSON payload of an end-stream frame carrying this error.
    pub fn end_stream_json(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = String::from("{\"error\":");
        self.write_error_object(&mut out);
        if !self.metadata.is_empty() {
            out.push_str(",\"metadata\":{");
            for (i, (key, values)) in self.metadata.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push_str(":[");
                for (j, value) in values.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_json_string(&mut out, value);
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push('}');
        Bytes::from(out)
    }

    /// The JSON body of a unary error response (the bare error object).
    pub fn unary_json(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            // A raw end-stream payload wraps the error object in {"error": ...}; unwrap it.
            if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(raw)
                && let Some(inner) = map.remove("error")
            {
                return Bytes::from(inner.to_string());
            }
            return raw.clone();
        }
        let mut out = String::new();
        self.write_error_object(&mut out);
        Bytes::from(out)
    }

    fn write_error_object(&self, out: &mut String) {
        out.push_str("{\"code\":\"");
        out.push_str(self.code.as_str());
        out.push('"');
        if !self.message.is_empty() {
            out.push_str(",\"message\":");
            push_json_string(out, &self.message);
        }
        if !self.details.is_empty() {
            out.push_str(",\"details\":[");
            for (i, detail) in self.details.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                detail.write_json(out);
            }
            out.push(']');
        }
        out.push('}');
    }
}

fn debugged(value: impl Into<Bytes>, debug: &str) -> DetailSpec {
    let detail = DetailSpec::new(ERROR_DETAILS_TYPE, value);
    match detail.clone().with_debug_json(debug) {
        Ok(with_debug) => with_debug,
        // The debug texts above are constants; a typo would only drop the optional member.
        Err(_) => detail,
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&json_string(s));
}

/// Encodes `aiserver.v1.ErrorDetails{error, details{title, detail, is_retryable, show_request_id,
/// additional_info}, is_expected=true}` with explicit zero values, as Cursor sends them.
pub(crate) fn error_details(
    error: i32,
    title: &str,
    detail: &str,
    retryable: bool,
    additional_info: &[(&str, &str)],
) -> Vec<u8> {
    use prost::encoding::{bool as pb_bool, int32, string};
    let mut custom = Vec::new();
    string::encode(1, &title.to_owned(), &mut custom);
    string::encode(2, &detail.to_owned(), &mut custom);
    pb_bool::encode(4, &retryable, &mut custom);
    pb_bool::encode(5, &false, &mut custom);
    for (key, value) in additional_info {
        let mut entry = Vec::new();
        string::encode(1, &(*key).to_owned(), &mut entry);
        string::encode(2, &(*value).to_owned(), &mut entry);
        len_field(7, &entry, &mut custom);
    }
    let mut out = Vec::new();
    int32::encode(1, &error, &mut out);
    len_field(2, &custom, &mut out);
    pb_bool::encode(3, &true, &mut out);
    out
}

/// Writes a length-delimited field holding already-encoded bytes.
pub(crate) fn len_field(tag: u32, body: &[u8], out: &mut Vec<u8>) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_stream_json_keeps_cursor_key_order_and_metadata() {
        let json = ErrorSpec::provider_error().end_stream_json();
        let text = std::str::from_utf8(&json).expect("utf-8");
        let (t, d, v) = (
            text.find("\"type\"").expect("type"),
            text.find("\"debug\"").expect("debug"),
            text.find("\"value\"").expect("value"),
        );
        assert!(t < d && d < v, "{text}");
        let parsed: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
        assert_eq!(parsed["error"]["code"], "resource_exhausted");
        assert_eq!(
            parsed["metadata"]["x-cursor-inference-request-error-type"],
            serde_json::json!(["PROVIDER_ERROR"])
        );
        assert!(
            !parsed["error"]["details"][0]["value"]
                .as_str()
                .unwrap_or("=")
                .contains('=')
        );
    }

    #[test]
    fn not_logged_in_uses_the_captured_bytes() {
        let spec = ErrorSpec::not_logged_in();
        let value = spec.details()[0].value();
        assert_eq!(value.len(), 91);
        assert_eq!(&value[..2], [0x08, 0x02], "ERROR_NOT_LOGGED_IN");
        let unary: serde_json::Value = serde_json::from_slice(&spec.unary_json()).expect("json");
        assert_eq!(unary["code"], "unauthenticated");
        assert_eq!(unary["details"][0]["value"], NOT_LOGGED_IN_DETAILS_B64);
    }

    #[test]
    fn raw_payloads_are_verbatim_and_unwrap_for_unary() {
        let spec = ErrorSpec::model_retired();
        assert_eq!(
            spec.end_stream_json().as_ref(),
            MODEL_RETIRED_END_STREAM.as_bytes()
        );
        let unary: serde_json::Value = serde_json::from_slice(&spec.unary_json()).expect("json");
        assert_eq!(unary["code"], "invalid_argument");
        assert_eq!(spec.code().http_status(), 400);
    }

    #[test]
    fn generated_details_have_explicit_zero_values() {
        let bytes = error_details(50, "t", "d", false, &[("k", "v")]);
        // error=50, details{title, detail, is_retryable=0, show_request_id=0, additional_info{k:v}}, is_expected=1
        assert_eq!(
            bytes,
            [
                0x08, 50, 0x12, 18, 0x0a, 1, b't', 0x12, 1, b'd', 0x20, 0, 0x28, 0, 0x3a, 6, 0x0a,
                1, b'k', 0x12, 1, b'v', 0x18, 1
            ]
        );
        assert!(
            DetailSpec::new("x", Bytes::new())
                .with_debug_json("{")
                .is_err()
        );
    }
}
