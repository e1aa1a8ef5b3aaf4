//! Helpers for `aiserver.v1.ErrorDetails`, the detail Cursor attaches to Connect errors.
//!
//! The enum's wire names (`ERROR_RESOURCE_EXHAUSTED`) appear in the error JSON's `debug`
//! object; the numbers appear in the base64 `value`. These helpers convert between the two.
//!
//! ```
//! use cursor_proto::aiserver::v1::error_details::Error;
//! use cursor_proto::error_details;
//!
//! assert_eq!(error_details::error_name(41), Some("ERROR_RESOURCE_EXHAUSTED"));
//! assert_eq!(error_details::error_from_name("ERROR_RESOURCE_EXHAUSTED"), Some(Error::ResourceExhausted));
//! assert_eq!(error_details::error_name(9999), None);
//! assert!(Error::TaskUuidNotFound.is_retired());
//! ```

use prost::Message as _;

use crate::aiserver::v1::ErrorDetails;
use crate::aiserver::v1::error_details::Error;

/// The detail `type` real servers send: the bare proto name.
pub const TYPE_NAME: &str = "aiserver.v1.ErrorDetails";

/// Whether a Connect error detail `type` names [`ErrorDetails`]. Accepts the bare name real
/// servers send and the `type.googleapis.com/` form some re-implementations emit.
pub fn is_error_details_type(type_name: &str) -> bool {
    type_name
        .strip_prefix("type.googleapis.com/")
        .unwrap_or(type_name)
        == TYPE_NAME
}

/// The wire name of an `ErrorDetails.Error` value, or `None` for a number this schema does not
/// know (a newer server).
pub fn error_name(value: i32) -> Option<&'static str> {
    Error::try_from(value).ok().map(|e| e.as_str_name())
}

/// The enum value for a wire name such as `ERROR_RATE_LIMITED`; exact match only.
pub fn error_from_name(name: &str) -> Option<Error> {
    Error::from_str_name(name)
}

/// Decodes the raw bytes of a detail's `value` (after base64) as [`ErrorDetails`].
pub fn decode(value: &[u8]) -> Result<ErrorDetails, prost::DecodeError> {
    ErrorDetails::decode(value)
}

impl ErrorDetails {
    /// The wire name of [`ErrorDetails::error`], or `None` for a number unknown to this schema.
    pub fn error_name(&self) -> Option<&'static str> {
        error_name(self.error)
    }
}

impl Error {
    /// Whether the value was removed from Cursor's enum by 2026-08 (15, 16, 17, 19, 24, 26, 27,
    /// 32). Such values are kept in this schema so that an older server's error still decodes
    /// to a name.
    pub const fn is_retired(self) -> bool {
        matches!(
            self,
            Self::OpenaiAccountLimitExceeded
                | Self::TaskUuidNotFound
                | Self::TaskNoPermissions
                | Self::AgentEngineNotFound
                | Self::ApiKeyNotSupported
                | Self::SlashEditFileTooLong
                | Self::FileUnsupported
                | Self::GitgraphNotFound
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_0_to_65_has_a_name_that_round_trips() {
        for v in 0..=65 {
            let name = error_name(v).unwrap_or_else(|| panic!("no name for {v}"));
            assert!(name.starts_with("ERROR_"), "{name}");
            assert_eq!(error_from_name(name).map(|e| e as i32), Some(v));
        }
        assert_eq!(error_name(66), None);
        assert_eq!(error_name(-1), None);
    }

    #[test]
    fn numbers_confirmed_by_captures() {
        assert_eq!(error_name(2), Some("ERROR_NOT_LOGGED_IN"));
        assert_eq!(
            error_name(28),
            Some("ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT")
        );
        assert_eq!(error_name(29), Some("ERROR_CUSTOM_MESSAGE"));
        assert_eq!(error_name(50), Some("ERROR_RATE_LIMITED"));
        assert_eq!(error_name(61), Some("ERROR_MODEL_NO_LONGER_SUPPORTED"));
        // The TASK-8 note's numbers are wrong; the descriptors say these.
        assert_eq!(error_name(9), Some("ERROR_FREE_USER_USAGE_LIMIT"));
        assert_eq!(error_name(10), Some("ERROR_PRO_USER_USAGE_LIMIT"));
        assert_eq!(error_name(25), Some("ERROR_TIMEOUT"));
        assert_eq!(error_name(40), Some("ERROR_DEPRECATED"));
    }

    #[test]
    fn retired_values() {
        let retired: Vec<i32> = (0..=65)
            .filter_map(|v| Error::try_from(v).ok())
            .filter(|e| e.is_retired())
            .map(|e| e as i32)
            .collect();
        assert_eq!(retired, [15, 16, 17, 19, 24, 26, 27, 32]);
    }

    #[test]
    fn type_names() {
        assert!(is_error_details_type("aiserver.v1.ErrorDetails"));
        assert!(is_error_details_type(
            "type.googleapis.com/aiserver.v1.ErrorDetails"
        ));
        assert!(!is_error_details_type("aiserver.v1.CustomErrorDetails"));
        assert_eq!(<ErrorDetails as prost::Name>::full_name(), TYPE_NAME);
    }

    #[test]
    fn name_from_message() {
        let d = ErrorDetails {
            error: 41,
            ..Default::default()
        };
        assert_eq!(d.error_name(), Some("ERROR_RESOURCE_EXHAUSTED"));
        let d = ErrorDetails {
            error: 400,
            ..Default::default()
        };
        assert_eq!(d.error_name(), None);
    }
}
