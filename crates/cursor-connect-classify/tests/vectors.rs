//! The captured real errors E01–E16 (tests/vectors/, copied from shared/vectors/cursor-captures),
//! each parsed the way a client meets it and classified.
//!
//! Where the capture's detail `value` is missing, cut or garbage, the frame crate drops the
//! `debug` JSON, so `classify` sees only the code (and metadata); the same capture is then also
//! classified with the details read from its `debug` JSON (`classify_with_details`), which is
//! what a caller holding the raw body can do.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use cursor_connect_classify::{
    Category, Classification, Context, CursorDetails, CursorError, DetailsSource, LONG_COOLDOWN,
    Layer, SHORT_COOLDOWN, classify, classify_with_details,
};
use cursor_connect_frame::{Code, ConnectError, Decoder, Direction, EndStream, ErrorDetail};
use http::{HeaderMap, StatusCode};

use Category::*;

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file without the publisher's `#` comment lines.
fn body(name: &str) -> String {
    read(name)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

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

fn with_debug(err: &ConnectError, json: &str) -> Classification {
    let details = CursorDetails::from_error_json(json.as_bytes()).expect("debug details");
    assert_eq!(details.source(), DetailsSource::Debug);
    classify_with_details(err, Context::new(), Some(details))
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
    let c = classify(&err, Context::new());
    check(&c, 429, RateLimited, false, true);
    assert_eq!(
        (c.cursor_error(), c.advice().cooldown()),
        (None, Some(SHORT_COOLDOWN))
    );
    // Debug: ERROR_RATE_LIMITED with isRetryable=false: waiting briefly will not help.
    let c = with_debug(&err, &json);
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.cursor_error(), Some(CursorError(50)));
    assert_eq!(c.advice().cooldown(), Some(LONG_COOLDOWN));
    assert_eq!(
        c.cursor_details().unwrap().title(),
        "You have an unpaid invoice"
    );
}

#[test]
fn e04_too_many_computers_custom_message() {
    let json = read("E04-endstream-too-many-computers.json");
    let err = end_stream_error(&json);
    check(
        &classify(&err, Context::new()),
        429,
        RateLimited,
        false,
        true,
    );
    let c = with_debug(&err, &json);
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
fn e07_provider_error_via_metadata() {
    let json = read("E07-endstream-provider-error-422.json");
    let err = end_stream_error(&json);
    let c = classify(&err, Context::new());
    check(&c, 502, UpstreamUnavailable, true, true);
    assert_eq!(
        c.cursor_details().unwrap().source(),
        DetailsSource::Metadata
    );
    assert_eq!(c.cursor_error(), Some(CursorError(57)));
    // The debug adds isRetryable=false (provider said 422): not an account problem, so no retry.
    let c = with_debug(&err, &json);
    check(&c, 502, UpstreamUnavailable, false, false);
    assert_eq!(
        c.cursor_details()
            .unwrap()
            .additional_info("providerStatusCode"),
        Some("422")
    );
}

#[test]
fn e08_resource_exhausted_is_the_provider_not_a_rate_limit() {
    let json = read("E08-endstream-resource-exhausted-provider.json");
    let err = end_stream_error(&json);
    assert_eq!(err.code(), Code::ResourceExhausted);
    let c = classify(&err, Context::new());
    check(&c, 503, UpstreamUnavailable, true, true);
    assert_eq!(c.advice().cooldown(), None, "the account is fine");
    assert!(c.transparent_retry_allowed());
    assert_eq!(with_debug(&err, &json).category(), UpstreamUnavailable);
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
    let c = classify(&err, Context::new());
    check(&c, 429, RateLimited, false, true);
    assert_eq!(
        c.advice().retry_after(),
        None,
        "the retryAfter lives in the dropped debug"
    );
    let c = with_debug(&err, &json);
    check(&c, 429, RateLimited, true, true);
    assert_eq!(c.advice().retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(
        c.cursor_details().unwrap().additional_info("operation"),
        Some("getScopedInstallationAccessKey")
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
    check(
        &classify(&err, Context::new()),
        400,
        BadRequest,
        false,
        false,
    );
    let c = with_debug(&err, &json);
    check(&c, 400, BadRequest, false, false);
    assert_eq!(c.cursor_error(), Some(CursorError(36)));
}

#[test]
fn e11_unauthorized_suspicious_activity() {
    let json = body("E11-endstream-unauthorized-suspicious.txt");
    let err = end_stream_error(&json);
    let c = classify(&err, Context::new());
    check(&c, 401, Unauthenticated, true, true);
    assert!(c.advice().refresh_credentials() && c.advice().reconnect());
    let c = with_debug(&err, &json);
    check(&c, 401, Unauthenticated, false, true);
    assert_eq!(c.advice().cooldown(), Some(LONG_COOLDOWN));
    assert!(c.advice().refresh_credentials());
    assert_eq!(c.cursor_details().unwrap().action_required(), Some("login"));
}

#[test]
fn e12_bad_model_name_auto() {
    let json = read("E12-endstream-bad-model-name-auto.json");
    let err = end_stream_error(&json);
    check(
        &classify(&err, Context::new()),
        404,
        BadRequest,
        false,
        false,
    );
    let c = with_debug(&err, &json);
    check(&c, 404, ModelUnavailable, false, false);
    assert_eq!(
        c.cursor_details().unwrap().detail(),
        "Model name is not valid: \"auto\""
    );
}

#[test]
fn e13_rate_limited_changeable_free_plan() {
    let json = read("E13-endstream-rate-limited-changeable-free-plan.json");
    let err = end_stream_error(&json);
    check(
        &classify(&err, Context::new()),
        429,
        RateLimited,
        false,
        true,
    );
    let c = with_debug(&err, &json);
    check(&c, 429, RateLimited, false, true);
    assert_eq!(c.cursor_error(), Some(CursorError(51)));
    assert_eq!(c.advice().cooldown(), Some(SHORT_COOLDOWN));
    assert_eq!(c.advice().fallback_model(), None, "this capture names none");
}

#[test]
fn e14_not_logged_in_chat_service() {
    let json = read("E14-endstream-not-logged-in-chatservice.json");
    let err = end_stream_error(&json);
    let c = classify(&err, Context::new().with_response_started(true));
    check(&c, 401, Unauthenticated, true, true);
    assert!(!c.transparent_retry_allowed());
    let c = with_debug(&err, &json);
    check(&c, 401, Unauthenticated, true, true);
    assert_eq!(c.cursor_error(), Some(CursorError(2)));
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let ids: Vec<&str> = names.iter().map(|n| &n[..3]).collect();
    let want: Vec<String> = (1..=16).map(|i| format!("E{i:02}")).collect();
    assert_eq!(ids, want);
}
