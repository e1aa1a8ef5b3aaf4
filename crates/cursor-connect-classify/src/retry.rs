//! Server-supplied retry delays: `google.rpc.RetryInfo`, `retry-after`, Cursor's `retryAfter`.

use std::time::Duration;

use cursor_connect_frame::ConnectError;
use prost::Message;

use crate::details::CursorDetails;

/// The longest retry-after honoured. A peer-supplied delay is clamped to it so that one odd
/// value cannot take an account out of rotation for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The detail type name of `google.rpc.RetryInfo`.
pub const RETRY_INFO_TYPE: &str = "google.rpc.RetryInfo";

/// `google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; }`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Decodes a `google.rpc.RetryInfo` value. Negative or malformed delays give `None`.
pub fn decode_retry_info(value: &[u8]) -> Option<Duration> {
    let info = RetryInfo::decode(value).ok()?;
    let delay = info.retry_delay?;
    let secs = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(clamp(Duration::new(
        secs.min(MAX_RETRY_AFTER.as_secs()),
        nanos,
    )))
}

/// Parses a `retry-after` value given as delta-seconds (HTTP dates are not used by Connect
/// servers and are ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(clamp(Duration::from_secs(secs)))
}

fn clamp(d: Duration) -> Duration {
    d.min(MAX_RETRY_AFTER)
}

fn is_retry_info_type(name: &str) -> bool {
    name.strip_prefix("type.googleapis.com/").unwrap_or(name) == RETRY_INFO_TYPE
}

/// The server's retry-after for `err`, first found of: a `google.rpc.RetryInfo` detail, the
/// `retry-after` metadata, Cursor's `additionalInfo.retryAfter`.
pub(crate) fn retry_after(err: &ConnectError, details: Option<&CursorDetails>) -> Option<Duration> {
    err.details()
        .iter()
        .filter(|d| is_retry_info_type(d.type_name()))
        .find_map(|d| decode_retry_info(d.value()))
        .or_else(|| {
            err.metadata()
                .get("retry-after")
                .and_then(parse_retry_after)
        })
        .or_else(|| {
            details
                .and_then(CursorDetails::retry_after_secs)
                .map(|s| clamp(Duration::from_secs(s)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(seconds: i64, nanos: i32) -> Vec<u8> {
        RetryInfo {
            retry_delay: Some(ProtoDuration { seconds, nanos }),
        }
        .encode_to_vec()
    }

    #[test]
    fn retry_info_decodes_and_clamps() {
        assert_eq!(
            decode_retry_info(&encode(3, 500_000_000)),
            Some(Duration::from_millis(3500))
        );
        assert_eq!(
            decode_retry_info(&encode(i64::MAX, 0)),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(decode_retry_info(&encode(-1, 0)), None);
        assert_eq!(decode_retry_info(&encode(1, -5)), None);
        assert_eq!(decode_retry_info(&encode(1, 1_000_000_000)), None);
        assert_eq!(decode_retry_info(&[]), None, "no delay field");
        assert_eq!(decode_retry_info(&[0x0a, 0xff]), None, "truncated");
    }

    #[test]
    fn retry_after_header_is_delta_seconds() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn type_name_accepts_both_forms() {
        assert!(is_retry_info_type("google.rpc.RetryInfo"));
        assert!(is_retry_info_type(
            "type.googleapis.com/google.rpc.RetryInfo"
        ));
        assert!(!is_retry_info_type("google.rpc.ErrorInfo"));
    }
}
