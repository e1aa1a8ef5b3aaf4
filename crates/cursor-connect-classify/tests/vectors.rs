//! The captured real errors E01–E16 (cursor-test-support's `vectors/`, from shared/vectors/cursor-captures),
//! each parsed the way a client meets it and classified.
//!
//! Most captures carry a cut, garbage or missing detail `value` (or no `type`) beside a complete
//! `debug` JSON. The frame crate keeps that `debug`, and `classify` reads it when no value
//! decodes, so these captures get Cursor's own category and advice; each such test also checks
//! that `CursorDetails::from_error_json` on the raw body agrees, and what the Connect code alone
//! would have said. Only captures the frame crate cannot parse at all (E05, E06) or that are bare
//! `debug` objects (E15, E16) go through `classify_with_details`.

use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use cursor_connect_classify::tables::{Decision, cursor_error_row};
use cursor_connect_classify::{
    Category, Classification, Context, CursorDetails, CursorError, DetailsSource, LONG_COOLDOWN,
    Layer, SHORT_COOLDOWN, classify, classify_with_details,
};
use cursor_connect_frame::{Code, ConnectError, Decoder, Direction, EndStream, ErrorDetail};
use http::{HeaderMap, StatusCode};

use Category::*;

use cursor_test_support::vectors::{body, text as read};

fn end_stream_error(json: &str) -> ConnectError {
    EndStream::parse(json.trim().as_bytes())
        .expect("end-stream JSON")
        .into_result()
        .unwrap_err()
}

/// The JSON object that follows `"key":` in `text` (brace matching, strings respected), for
/// captures whose surrounding JSON the publisher cut.
fn object_after(text: &str, key: &str) -> String {
    let start = text.find(&format!("\"{key}\":")).expect("key") + key.len() + 3;
    let rest = text[start..].trim_start();
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, ch) in rest.char_indices() {
        match (in_str, escaped, ch) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_str = false,
            (false, _, '"') => in_str = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    return rest[..=i].to_owned();
                }
            }
            _ => {}
        }
    }
    panic!("unterminated object after {key}");
}

/// `classify` as a client calls it, checking that the details came from a `debug` JSON and
/// equal what `CursorDetails::from_error_json` reads from the raw body.
fn via_debug(err: &ConnectError, raw: &str, ctx: Context) -> Classification {
    let c = classify(err, ctx);
    let details = c.cursor_details().expect("details from debug");
    assert_eq!(details.source(), DetailsSource::Debug, "{c:?}");
    assert_eq!(
        CursorDetails::from_error_json(raw.as_bytes()).as_ref(),
        Some(details),
        "the frame crate's debug and the raw body agree"
    );
    let defers = cursor_error_row(details.error().0).is_none_or(|r| r.decision == Decision::Defer);
    assert_eq!(c.layer() == Layer::CursorDetails, !defers, "{c:?}");
    c
}

/// What the Connect code (and HTTP status) alone decide, without any Cursor details.
fn code_only(err: &ConnectError) -> Classification {
    classify_with_details(err, Context::new(), None)
}

fn check(c: &Classification, status: u16, category: Category, same: bool, other: bool) {
    assert_eq!(c.status().as_u16(), status, "{c:?}");
    assert_eq!(c.category(), category, "{c:?}");
    assert_eq!(c.advice().retry_same_account(), same, "{c:?}");
    assert_eq!(c.advice().retry_other_account(), other, "{c:?}");
}

#[test]
fn e01_not_logged_in_value() {
    let b64 = read("E01-errordetails-not-logged-in.b64");
    let value = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64.trim())
        .unwrap();
    let err = ConnectError::remote(Code::Unauthenticated, "Error").with_detail(ErrorDetail::new(
        "aiserver.v1.ErrorDetails",
        Bytes::from(value),
    ));
    let c = classify(&err, Context::new());
    check(&c, 401, Unauthenticated, true, true);
    assert_eq!(c.layer(), Layer::CursorDetails);
    assert_eq!(c.cursor_error(), Some(CursorError(2)));
    let d = c.cursor_details().unwrap();
    assert_eq!(d.title(), "Authentication error");
    assert_eq!(d.is_retryable(), Some(false), "sent explicitly");
    assert_eq!(d.action_required(), Some("login"));
    // is_retryable=false, but refreshing changes the request: refresh-then-retry stands.
    assert!(c.advice().refresh_credentials());
    assert!(!c.advice().disable_account());
}

#[test]
fn e02_model_no_longer_supported_full_frame() {
    let json = read("E02-endstream-model-no-longer-supported.json");
    let json = json.trim();
    assert_eq!(json.len(), 608, "the capture's frame length");
    let mut wire = BytesMut::from(&[0x02, 0x00, 0x00, 0x02, 0x60][..]);
    wire.extend_from_slice(json.as_bytes());
    let frame = Decoder::new(Direction::Response)
        .decode(&mut wire)
        .unwrap()
        .unwrap();
    assert!(frame.flags.is_end_stream());
    let err = EndStream::parse(&frame.payload)
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "the misleading code");
    let c = classify(&err, Context::new().with_response_started(true));
    check(&c, 404, ModelUnavailable, false, false);
    assert_eq!(c.layer(), Layer::CursorDetails);
    assert_eq!(c.cursor_error(), Some(CursorError(61)));
    assert_eq!(c.advice().fallback_model(), Some("composer-2.5"));
    assert_eq!(c.cursor_details().unwrap().title(), "Composer 2 is retired");
    // The debug rendering agrees with the value.
    let debug = CursorDetails::from_debug_json(&object_after(json, "debug")).unwrap();
    let from_debug = classify_with_details(&err, Context::new(), Some(debug));
    assert_eq!(
        (from_debug.category(), from_debug.advice()),
        (c.category(), c.advice())
    );
    // from_error_json prefers the value, but only under the ErrorDetails type.
    let untyped = json.replace(r#""type":"aiserver.v1.ErrorDetails","#, "");
    assert_eq!(
        CursorDetails::from_error_json(untyped.as_bytes())
            .unwrap()
            .source(),
        DetailsSource::Debug
    );
    assert_eq!(
        CursorDetails::from_error_json(json.as_bytes())
            .unwrap()
            .source(),
        DetailsSource::Value
    );
}

#[test]
fn e03_unpaid_invoice_truncated_value() {
    let json = read("E03-endstream-unpaid-invoice.json");
    let err = end_stream_error(&json);
    // The value "CDIS" is cut mid-field: it does not decode, the debug decides.
    assert_eq!(err.details()[0].value().as_ref(), [0x08, 0x32, 0x12]);
    let c = via_debug(&err, &json, Context::new());
    // ERROR_RATE_LIMITED with isRetryable=false: waiting briefly will not help.
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.cursor_error(), Some(CursorError(50)));
    assert_eq!(c.advice().cooldown(), Some(LONG_COOLDOWN));
    assert_eq!(
        c.cursor_details().unwrap().title(),
        "You have an unpaid invoice"
    );
    // The code alone would have cooled the account down only briefly.
    let code = code_only(&err);
    check(&code, 429, RateLimited, false, true);
    assert_eq!(code.advice().cooldown(), Some(SHORT_COOLDOWN));
}

#[test]
fn e04_too_many_computers_custom_message() {
    let json = read("E04-endstream-too-many-computers.json");
    let err = end_stream_error(&json);
    let c = via_debug(&err, &json, Context::new());
    assert_eq!(c.cursor_error(), Some(CursorError(29)));
    assert_eq!(
        c.layer(),
        Layer::ConnectCode,
        "CUSTOM_MESSAGE defers to the code"
    );
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.cursor_details().unwrap().title(), "Too many computers.");
}

#[test]
fn e05_model_not_allowed_cut_frame() {
    let text = body("E05-endstream-model-not-allowed.txt").replace('\n', " ");
    // The publisher cut the frame mid-value: the end-stream JSON does not parse, and the
    // client's local error is internal.
    let json = text.trim_start_matches('4');
    let parse_err = EndStream::parse(json.as_bytes()).unwrap_err();
    let local = ConnectError::from(parse_err);
    check(&classify(&local, Context::new()), 500, Internal, true, true);
    // The debug object survived whole.
    let debug = object_after(json, "debug");
    let details = CursorDetails::from_debug_json(&debug).unwrap();
    assert_eq!(details.error(), CursorError(28));
    let err = ConnectError::remote(Code::ResourceExhausted, "Error");
    let c = classify_with_details(&err, Context::new(), Some(details));
    check(&c, 403, ModelUnavailable, false, false);
    assert_eq!(c.cursor_details().unwrap().title(), "Model not allowed");
}

#[test]
fn e06_unary_401_not_logged_in() {
    let text = body("E06-unary-401-not-logged-in-debug.txt");
    let json = &text[text.find('{').unwrap()..];
    // Elided by the publisher ("…"): not JSON, so the HTTP status decides.
    let err = ConnectError::from_unary_response(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        json.as_bytes(),
    );
    assert_eq!(err.code(), Code::Unauthenticated);
    let c = classify(&err, Context::new());
    check(&c, 401, Unauthenticated, true, true);
    assert_eq!(c.layer(), Layer::HttpStatus);
    assert!(c.advice().refresh_credentials());
    let details = CursorDetails::from_debug_json(&object_after(json, "debug")).unwrap();
    assert_eq!(details.action_required(), Some("login"));
    let c = classify_with_details(&err, Context::new(), Some(details));
    check(&c, 401, Unauthenticated, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(2)));
}

#[test]
fn e07_provider_error_debug_beats_metadata() {
    let json = read("E07-endstream-provider-error-422.json");
    let err = end_stream_error(&json);
    // The value "x" is not base64; the debug adds isRetryable=false (the provider said 422):
    // not an account problem, and the same request fails again, so no retry.
    let c = via_debug(&err, &json, Context::new());
    check(&c, 502, UpstreamUnavailable, false, false);
    assert_eq!(c.cursor_error(), Some(CursorError(57)));
    assert_eq!(
        c.cursor_details()
            .unwrap()
            .additional_info("providerStatusCode"),
        Some("422")
    );
    // Without the details, the metadata alone names the same error but knows no more.
    let bare =
        ConnectError::remote(err.code(), err.message()).with_metadata(err.metadata().clone());
    let c = classify(&bare, Context::new());
    check(&c, 502, UpstreamUnavailable, true, true);
    assert_eq!(
        c.cursor_details().unwrap().source(),
        DetailsSource::Metadata
    );
    assert_eq!(c.cursor_error(), Some(CursorError(57)));
}

#[test]
fn e08_resource_exhausted_is_the_provider_not_a_rate_limit() {
    let json = read("E08-endstream-resource-exhausted-provider.json");
    let err = end_stream_error(&json);
    assert_eq!(err.code(), Code::ResourceExhausted);
    let c = via_debug(&err, &json, Context::new());
    check(&c, 503, UpstreamUnavailable, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(41)));
    assert_eq!(c.advice().cooldown(), None, "the account is fine");
    assert!(c.transparent_retry_allowed());
    assert_eq!(
        code_only(&err).category(),
        RateLimited,
        "the misleading code"
    );
}

#[test]
fn e09_unary_429_github_rate_limited() {
    let json = read("E09-unary-429-rate-limited-github.json");
    let err = ConnectError::from_unary_response(
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        json.trim().as_bytes(),
    );
    assert_eq!(err.code(), Code::ResourceExhausted);
    // The only detail has neither type nor value: only debug.
    assert_eq!(err.details()[0].type_name(), "");
    let c = via_debug(&err, &json, Context::new());
    // isRetryable=true with the server's retryAfter: wait, then the same account is fine.
    check(&c, 429, RateLimited, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(50)));
    assert_eq!(c.advice().retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(
        c.cursor_details().unwrap().additional_info("operation"),
        Some("getScopedInstallationAccessKey")
    );
    let code = code_only(&err);
    check(&code, 429, RateLimited, false, true);
    assert_eq!(
        code.advice().retry_after(),
        None,
        "the retryAfter lives in the debug"
    );
}

#[test]
fn e10_unary_failed_precondition_payment_method() {
    let json = read("E10-unary-failed-precondition-payment-method.json");
    let err = ConnectError::from_unary_response(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        json.trim().as_bytes(),
    );
    assert_eq!(err.code(), Code::FailedPrecondition);
    let c = via_debug(&err, &json, Context::new());
    check(&c, 400, BadRequest, false, false);
    assert_eq!(c.cursor_error(), Some(CursorError(36)));
    assert_eq!(
        c.cursor_details().unwrap().title(),
        "Payment method required"
    );
}

#[test]
fn e11_unauthorized_suspicious_activity() {
    let json = body("E11-endstream-unauthorized-suspicious.txt");
    let err = end_stream_error(&json);
    let c = via_debug(&err, &json, Context::new());
    // Blocked, not expired: refresh, and keep this account out for long.
    check(&c, 401, Unauthenticated, false, true);
    assert_eq!(c.cursor_error(), Some(CursorError(38)));
    assert_eq!(c.advice().cooldown(), Some(LONG_COOLDOWN));
    assert!(c.advice().refresh_credentials());
    assert_eq!(c.cursor_details().unwrap().action_required(), Some("login"));
    // The code alone would retry the same account after a refresh.
    let code = code_only(&err);
    check(&code, 401, Unauthenticated, true, true);
    assert!(code.advice().refresh_credentials() && code.advice().reconnect());
}

#[test]
fn e12_bad_model_name_auto() {
    let json = read("E12-endstream-bad-model-name-auto.json");
    let err = end_stream_error(&json);
    let c = via_debug(&err, &json, Context::new());
    check(&c, 404, ModelUnavailable, false, false);
    assert_eq!(c.cursor_error(), Some(CursorError(5)));
    assert_eq!(
        c.cursor_details().unwrap().detail(),
        "Model name is not valid: \"auto\""
    );
    check(&code_only(&err), 404, BadRequest, false, false);
}

#[test]
fn e13_rate_limited_changeable_free_plan() {
    let json = read("E13-endstream-rate-limited-changeable-free-plan.json");
    let err = end_stream_error(&json);
    let c = via_debug(&err, &json, Context::new());
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.cursor_error(), Some(CursorError(51)));
    assert_eq!(c.advice().cooldown(), Some(SHORT_COOLDOWN));
    assert_eq!(c.advice().fallback_model(), None, "this capture names none");
    assert_eq!(
        c.cursor_details().unwrap().title(),
        "Named models unavailable"
    );
    // The same capture with the fallback Cursor offers elsewhere (additionalInfo): the advice
    // carries it, still through `classify` and the debug JSON.
    let offered = json.replace(
        r#""detail":"Free plans can only use Auto.""#,
        r#""detail":"Free plans can only use Auto.","additionalInfo":{"autoSwitchToModel":"auto"}"#,
    );
    assert_ne!(offered, json);
    let c = via_debug(&end_stream_error(&offered), &offered, Context::new());
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.advice().fallback_model(), Some("auto"));
}

#[test]
fn e14_not_logged_in_chat_service() {
    let json = read("E14-endstream-not-logged-in-chatservice.json");
    let err = end_stream_error(&json);
    let c = via_debug(&err, &json, Context::new().with_response_started(true));
    check(&c, 401, Unauthenticated, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(2)));
    assert!(c.advice().refresh_credentials());
    assert!(
        !c.transparent_retry_allowed(),
        "the caller already saw output"
    );
}

#[test]
fn e15_ide_resource_exhausted() {
    let text = body("E15-ide-ui-resource-exhausted.txt");
    let debug = text.lines().find(|l| l.starts_with('{')).unwrap();
    let details = CursorDetails::from_debug_json(debug).unwrap();
    assert_eq!(
        details.fallback_model(),
        None,
        "additionalInfo and buttons are empty"
    );
    // "[resource_exhausted] Error" is how the IDE printed the Connect error itself.
    assert!(text.contains("[resource_exhausted] Error"));
    let err = ConnectError::remote(Code::ResourceExhausted, "Error");
    let c = classify_with_details(&err, Context::new(), Some(details));
    check(&c, 503, UpstreamUnavailable, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(41)));
}

#[test]
fn e16_outdated_client() {
    let details = CursorDetails::from_debug_json(&read("E16-outdated-client-debug.json")).unwrap();
    let err = ConnectError::remote(Code::FailedPrecondition, "Error");
    let c = classify_with_details(&err, Context::new(), Some(details));
    check(&c, 502, OutdatedClient, false, false);
    assert!(!c.transparent_retry_allowed());
    assert_eq!(c.cursor_details().unwrap().title(), "Outdated Client Error");
}

#[test]
fn every_capture_is_covered() {
    let names = cursor_test_support::vectors::names();
    let ids: Vec<&str> = names
        .iter()
        .map(|n| &n[..3])
        .filter(|id| id.starts_with('E'))
        .collect();
    let want: Vec<String> = (1..=16).map(|i| format!("E{i:02}")).collect();
    assert_eq!(ids, want);
}
