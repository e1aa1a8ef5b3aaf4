//! Property tests: whatever a peer sends, classification does not panic and keeps its
//! invariants (an error status, no transparent retry after output unless retry-safe, bounded
//! retry-after).

use bytes::Bytes;
use cursor_connect_classify::{Context, CursorDetails, MAX_RETRY_AFTER, classify};
use cursor_connect_frame::{
    Code, ConnectError, ErrorDetail, Metadata, Reason, TransportCause, TransportKind,
};
use http::StatusCode;
use proptest::prelude::*;

const KINDS: [TransportKind; 6] = [
    TransportKind::Reset,
    TransportKind::GoAway,
    TransportKind::Io,
    TransportKind::Timeout,
    TransportKind::Protocol,
    TransportKind::Closed,
];

fn type_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("aiserver.v1.ErrorDetails".to_owned()),
        Just("type.googleapis.com/aiserver.v1.ErrorDetails".to_owned()),
        Just("google.rpc.RetryInfo".to_owned()),
        Just(String::new()),
        ".{0,40}",
    ]
}

#[derive(Debug, Clone)]
struct Input {
    code: usize,
    message: String,
    wire: bool,
    details: Vec<(String, Vec<u8>)>,
    retry_after: Option<String>,
    inference: Option<String>,
    cause: Option<(usize, Option<u32>, bool, bool)>,
    started: bool,
    status: Option<u16>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        0usize..16,
        ".{0,64}",
        any::<bool>(),
        prop::collection::vec(
            (type_name(), prop::collection::vec(any::<u8>(), 0..128)),
            0..4,
        ),
        prop::option::of(".{0,24}"),
        prop::option::of(prop_oneof![Just("PROVIDER_ERROR".to_owned()), ".{0,24}"]),
        prop::option::of((
            0usize..6,
            prop::option::of(any::<u32>()),
            any::<bool>(),
            any::<bool>(),
        )),
        any::<bool>(),
        prop::option::of(100u16..1000),
    )
        .prop_map(
            |(code, message, wire, details, retry_after, inference, cause, started, status)| {
                Input {
                    code,
                    message,
                    wire,
                    details,
                    retry_after,
                    inference,
                    cause,
                    started,
                    status,
                }
            },
        )
}

fn build(i: &Input) -> (ConnectError, Context) {
    let code = Code::ALL[i.code];
    let mut err = match i.cause {
        Some((k, reason, remote, safe)) => {
            let mut cause = TransportCause::new(KINDS[k])
                .remote(remote)
                .retry_safe(safe);
            if let Some(r) = reason {
                cause = cause.with_reason(Reason::new(r));
            }
            ConnectError::transport(code, i.message.clone(), cause)
        }
        None if i.wire => ConnectError::remote(code, i.message.clone()),
        None => ConnectError::new(code, i.message.clone()),
    };
    for (t, v) in &i.details {
        err = err.with_detail(ErrorDetail::new(t.clone(), Bytes::from(v.clone())));
    }
    let mut md = Metadata::new();
    if let Some(r) = &i.retry_after {
        md.insert("retry-after", r.clone());
    }
    if let Some(t) = &i.inference {
        md.insert("x-cursor-inference-request-error-type", t.clone());
    }
    err = err.with_metadata(md);
    let mut ctx = Context::new().with_response_started(i.started);
    if let Some(s) = i.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        ctx = ctx.with_http_status(s);
    }
    (err, ctx)
}

proptest! {
    #[test]
    fn classification_invariants(i in input()) {
        let (err, ctx) = build(&i);
        let c = classify(&err, ctx);
        prop_assert!(c.status().is_client_error() || c.status().is_server_error());
        let safe = err.transport_cause().is_some_and(|t| t.retry_safe);
        if c.transparent_retry_allowed() {
            prop_assert!(c.advice().is_retryable());
            prop_assert!(!i.started || safe);
        }
        prop_assert!(c.advice().retry_after().is_none_or(|d| d <= MAX_RETRY_AFTER));
        if c.advice().disable_account() {
            prop_assert!(!c.advice().retry_same_account() || safe);
        }
    }

    #[test]
    fn json_readers_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), text in ".{0,256}") {
        let _ = CursorDetails::from_error_json(&body);
        let _ = CursorDetails::from_error_json(text.as_bytes());
        let _ = CursorDetails::from_debug_json(&text);
    }

    #[test]
    fn debug_json_shapes(error in prop_oneof![Just("\"ERROR_RATE_LIMITED\"".to_owned()), any::<i64>().prop_map(|n| n.to_string()), ".{0,12}"],
                         retry in prop_oneof![Just("true"), Just("false"), Just("\"x\""), Just("null")],
                         info in ".{0,12}") {
        let json = format!(
            r#"{{"error":{error},"details":{{"title":"t","isRetryable":{retry},"additionalInfo":{{"retryAfter":{info:?},"n":1}},"buttons":[{{"switchModel":{{"suggestedModel":{info:?}}}}},{{}}]}}}}"#
        );
        if let Some(d) = CursorDetails::from_debug_json(&json) {
            prop_assert_eq!(d.title(), "t");
            prop_assert_eq!(d.additional_info("n"), Some("1"));
        }
    }
}
