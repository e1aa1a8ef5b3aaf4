//! The legacy ChatService's sunset answers (reference/cursor-protocol.md §1.5) classify as an
//! outdated client/service with a hint to use the agent service, never as a rate limit, a
//! region problem or a model problem; outside that service the same values keep their rows.

use bytes::Bytes;
use cursor_connect_classify::{Category, Context, LEGACY_CHAT_HINT, Layer, classify};
use cursor_connect_frame::{Code, ConnectError, EndStream, ErrorDetail};
use cursor_proto::aiserver::v1::{CustomErrorDetails, ErrorDetails};
use prost::Message;

fn sunset(code: Code, error: i32, title: &str) -> ConnectError {
    let details = ErrorDetails {
        error,
        details: Some(CustomErrorDetails {
            title: title.into(),
            detail: "Please update Cursor".into(),
            ..Default::default()
        }),
        is_expected: Some(true),
    };
    let value = Bytes::from(details.encode_to_vec());
    ConnectError::remote(code, "Error")
        .with_detail(ErrorDetail::new("aiserver.v1.ErrorDetails", value))
}

fn legacy() -> Context {
    Context::new().with_legacy_chat(true)
}

#[test]
fn sunset_answers_are_an_outdated_service_with_a_hint() {
    let cases = [
        // "Update Required" on composer models: a rate-limit enum value, reused.
        sunset(Code::ResourceExhausted, 28, "Update Required"),
        sunset(Code::FailedPrecondition, 30, "Outdated Client Error"),
        sunset(Code::PermissionDenied, 64, "Unsupported region"),
        sunset(Code::InvalidArgument, 40, "Deprecated"),
        // The title alone is enough, whatever the value.
        sunset(Code::ResourceExhausted, 50, "Update Required"),
    ];
    for err in cases {
        let c = classify(&err, legacy());
        assert_eq!(c.category(), Category::OutdatedClient, "{err}");
        assert_ne!(c.category(), Category::RateLimited);
        assert_eq!(c.hint(), Some(LEGACY_CHAT_HINT));
        assert!(c.hint().unwrap().contains("agent service"));
        assert_eq!(c.layer(), Layer::CursorDetails);
        assert!(!c.advice().is_retryable(), "{err}");
        assert!(!c.transparent_retry_allowed());
        assert_eq!(c.status().as_u16(), 502);
    }
}

#[test]
fn the_captured_outdated_client_end_stream_in_legacy_context() {
    // E16's debug object inside an end-stream, as Cursor 2.0.77 got it.
    let json = br#"{"error":{"code":"failed_precondition","message":"Error","details":[{"type":"aiserver.v1.ErrorDetails","debug":{"error":"ERROR_OUTDATED_CLIENT","details":{"title":"Outdated Client Error","detail":"Your version of Cursor no longer supports this action."}}}]}}"#;
    let err = EndStream::parse(json).unwrap().into_result().unwrap_err();
    let c = classify(&err, legacy());
    assert_eq!(c.category(), Category::OutdatedClient);
    assert_eq!(c.hint(), Some(LEGACY_CHAT_HINT));
}

#[test]
fn outside_the_legacy_service_the_rows_stand_and_there_is_no_hint() {
    let c = classify(
        &sunset(Code::ResourceExhausted, 28, "Model not allowed"),
        Context::new(),
    );
    assert_eq!(c.category(), Category::ModelUnavailable);
    assert_eq!(c.hint(), None);
    let c = classify(&sunset(Code::PermissionDenied, 64, "x"), Context::new());
    assert_eq!(c.category(), Category::PermissionDenied);
    // A real rate limit on the legacy service is still a rate limit.
    let c = classify(&sunset(Code::ResourceExhausted, 50, "Slow down"), legacy());
    assert_eq!(c.category(), Category::RateLimited);
    assert_eq!(c.hint(), None);
}
