//! Table-driven: every Connect code, every HTTP/2 reason in reset and GOAWAY form, the
//! conformance HTTP-status cases, errors before/after data, the SDK bug fingerprint, retry-after
//! sources and the text fallback.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cursor_connect_classify::{Category, Context, Layer, SHORT_COOLDOWN, classify};
use cursor_connect_frame::{
    Code, ConnectError, Decoder, Direction, EndStream, ErrorDetail, Metadata, Reason,
    TransportCause, TransportKind,
};
use http::{HeaderMap, StatusCode};

use Category::*;

/// Expected outcome: status, category, retry same, retry other, has cooldown.
type Want = (u16, Category, bool, bool, bool);

#[test]
fn every_connect_code_from_the_peer() {
    let table: [(Code, Want); 16] = [
        (Code::Canceled, (499, Canceled, false, false, false)),
        (Code::Unknown, (500, Unknown, false, false, false)),
        (
            Code::InvalidArgument,
            (400, BadRequest, false, false, false),
        ),
        (
            Code::DeadlineExceeded,
            (504, DeadlineExceeded, true, true, false),
        ),
        (Code::NotFound, (404, BadRequest, false, false, false)),
        (Code::AlreadyExists, (409, BadRequest, false, false, false)),
        (
            Code::PermissionDenied,
            (403, PermissionDenied, false, true, false),
        ),
        (
            Code::ResourceExhausted,
            (429, RateLimited, false, true, true),
        ),
        (
            Code::FailedPrecondition,
            (400, BadRequest, false, false, false),
        ),
        (Code::Aborted, (409, UpstreamUnavailable, true, true, false)),
        (Code::OutOfRange, (400, BadRequest, false, false, false)),
        (
            Code::Unimplemented,
            (501, OutdatedClient, false, false, false),
        ),
        (Code::Internal, (500, Internal, true, true, false)),
        (
            Code::Unavailable,
            (503, UpstreamUnavailable, true, true, false),
        ),
        (Code::DataLoss, (500, Internal, false, false, false)),
        (
            Code::Unauthenticated,
            (401, Unauthenticated, true, true, false),
        ),
    ];
    assert_eq!(table.len(), Code::ALL.len());
    for (code, (status, category, same, other, cool)) in table {
        let c = classify(&ConnectError::remote(code, "Error"), Context::new());
        assert_eq!(c.status().as_u16(), status, "{code:?}");
        assert_eq!(c.category(), category, "{code:?}");
        assert_eq!(c.advice().retry_same_account(), same, "{code:?}");
        assert_eq!(c.advice().retry_other_account(), other, "{code:?}");
        assert_eq!(c.advice().cooldown().is_some(), cool, "{code:?}");
        assert_eq!(c.layer(), Layer::ConnectCode);
        assert_eq!(
            c.transparent_retry_allowed(),
            same || other,
            "{code:?} before data"
        );
        // The proxy status agrees with the Connect table (connect-protocol §1.4) for every code.
        assert_eq!(c.status(), code.http_status(), "{code:?}");
        // The same code built locally (no transport cause) classifies the same way.
        let local = classify(&ConnectError::new(code, "x"), Context::new());
        assert_eq!(
            (local.status(), local.category()),
            (c.status(), c.category())
        );
    }
}

#[test]
fn unauthenticated_refreshes_and_reconnects() {
    let c = classify(
        &ConnectError::remote(Code::Unauthenticated, "Error"),
        Context::new(),
    );
    assert!(c.advice().refresh_credentials());
    assert!(c.advice().reconnect());
    assert!(!c.advice().disable_account());
}

fn frames(json: &str) -> BytesMut {
    let mut wire = BytesMut::new();
    let data = [0x0a, 0x02, 0x6a, 0x00];
    wire.extend_from_slice(&[0, 0, 0, 0, 4]);
    wire.extend_from_slice(&data);
    wire.extend_from_slice(&[2]);
    wire.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
    wire.extend_from_slice(json.as_bytes());
    wire
}

/// The SDK bug report in seeds/: one data frame, then an end-stream
/// `{"metadata":{},"error":{"code":"unauthenticated","message":"Error"}}`.
#[test]
fn sdk_bug_fingerprint_is_a_typed_auth_failure() {
    let mut wire =
        frames(r#"{"metadata":{},"error":{"code":"unauthenticated","message":"Error"}}"#);
    let mut dec = Decoder::new(Direction::Response);
    let first = dec.decode(&mut wire).unwrap().unwrap();
    assert!(!first.flags.is_end_stream());
    let last = dec.decode(&mut wire).unwrap().unwrap();
    assert!(last.flags.is_end_stream());
    let err = EndStream::parse(&last.payload)
        .unwrap()
        .into_result()
        .unwrap_err();

    // The data frame reached the caller: the failure is typed, but not transparently retried.
    let c = classify(&err, Context::new().with_response_started(true));
    assert_eq!(c.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.category(), Unauthenticated);
    assert!(c.category().is_auth());
    assert_eq!(c.layer(), Layer::ConnectCode);
    assert!(c.advice().refresh_credentials(), "refresh the credentials");
    assert!(
        c.advice().reconnect(),
        "the handle may be the stale part: drop it"
    );
    assert!(c.advice().retry_same_account(), "after refresh + reconnect");
    assert!(!c.transparent_retry_allowed());

    // Had nothing reached the caller, the retry could be invisible.
    assert!(classify(&err, Context::new()).transparent_retry_allowed());
}

#[test]
fn end_stream_errors_before_and_after_data() {
    for code in Code::ALL {
        let err = ConnectError::remote(code, "Error");
        let before = classify(&err, Context::new());
        let after = classify(&err, Context::new().with_response_started(true));
        assert_eq!(
            before.transparent_retry_allowed(),
            before.advice().is_retryable(),
            "{code:?}"
        );
        assert!(
            !after.transparent_retry_allowed(),
            "{code:?}: output already reached the caller"
        );
        assert_eq!(
            before.advice(),
            after.advice(),
            "{code:?}: the advice itself does not change"
        );
    }
}

/// Expected per reason: (reset status, reset category, goaway status, goaway category).
const H2_WANT: [(u32, u16, Category, u16, Category); 14] = [
    (0x0, 503, UpstreamUnavailable, 503, UpstreamUnavailable),
    (0x1, 502, Transport, 502, Transport),
    (0x2, 502, Transport, 502, Transport),
    (0x3, 502, Transport, 502, Transport),
    (0x4, 502, Transport, 502, Transport),
    (0x5, 502, Transport, 502, Transport),
    (0x6, 502, Transport, 502, Transport),
    (0x7, 503, UpstreamUnavailable, 503, UpstreamUnavailable),
    (0x8, 502, Transport, 502, Transport),
    (0x9, 502, Transport, 502, Transport),
    (0xa, 502, Transport, 502, Transport),
    (0xb, 429, RateLimited, 429, RateLimited),
    (0xc, 502, Transport, 502, Transport),
    (0xd, 502, Transport, 502, Transport),
];

fn transport_err(kind: TransportKind, reason: Option<u32>, remote: bool) -> ConnectError {
    let mut cause = TransportCause::new(kind)
        .remote(remote)
        .response_started(true);
    if let Some(r) = reason {
        cause = cause.with_reason(Reason::new(r));
    }
    ConnectError::transport(Code::Unavailable, "h2 failure", cause)
}

#[test]
fn every_h2_reason_in_reset_and_go_away_form() {
    for (reason, rs, rc, gs, gc) in H2_WANT
        .into_iter()
        .chain([(0x42, 502, Transport, 502, Transport)])
    {
        let reset = classify(
            &transport_err(TransportKind::Reset, Some(reason), true),
            Context::new(),
        );
        assert_eq!(
            (reset.status().as_u16(), reset.category()),
            (rs, rc),
            "RST_STREAM {reason:#x}"
        );
        assert_eq!(reset.layer(), Layer::Transport);
        let away = classify(
            &transport_err(TransportKind::GoAway, Some(reason), true),
            Context::new(),
        );
        assert_eq!(
            (away.status().as_u16(), away.category()),
            (gs, gc),
            "GOAWAY {reason:#x}"
        );
        assert!(
            away.advice().reconnect(),
            "GOAWAY {reason:#x}: the connection is going away"
        );
        // Retry policy: everything but the TLS / HTTP-version refusals may be retried somewhere.
        let fatal = matches!(reason, 0xc | 0xd);
        assert_eq!(
            reset.advice().is_retryable(),
            !fatal,
            "RST_STREAM {reason:#x}"
        );
        assert_eq!(away.advice().is_retryable(), !fatal, "GOAWAY {reason:#x}");
        // HPACK and SETTINGS failures poison the whole connection even in reset form.
        let reset_reconnects = matches!(reason, 0x4 | 0x9 | 0xc | 0xd);
        assert_eq!(
            reset.advice().reconnect(),
            reset_reconnects,
            "RST_STREAM {reason:#x}"
        );
        // Not retry-safe and a response had started, but nothing reached the caller yet.
        assert_eq!(reset.transparent_retry_allowed(), !fatal);
        let after = classify(
            &transport_err(TransportKind::Reset, Some(reason), true),
            Context::new().with_response_started(true),
        );
        assert!(
            !after.transparent_retry_allowed(),
            "{reason:#x} after output"
        );
    }
}

#[test]
fn rst_stream_no_error_before_end_stream_is_unavailable_not_protocol() {
    let c = classify(
        &transport_err(TransportKind::Reset, Some(0), true),
        Context::new(),
    );
    assert_eq!(c.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(c.category(), UpstreamUnavailable);
    assert!(c.advice().retry_same_account());
}

#[test]
fn enhance_your_calm_backs_off() {
    for kind in [TransportKind::Reset, TransportKind::GoAway] {
        let c = classify(&transport_err(kind, Some(0xb), true), Context::new());
        assert_eq!(c.advice().cooldown(), Some(SHORT_COOLDOWN));
        assert!(
            !c.advice().retry_same_account(),
            "not immediately on the same account"
        );
        assert!(c.advice().retry_other_account());
    }
}

#[test]
fn retry_safe_causes_allow_transparent_retry_even_after_output() {
    let refused = TransportCause::new(TransportKind::Reset)
        .with_reason(Reason::new(0x7))
        .remote(true)
        .retry_safe(true);
    let unprocessed_go_away = TransportCause::new(TransportKind::GoAway)
        .with_reason(Reason::new(0x0))
        .remote(true)
        .retry_safe(true);
    let calm_unprocessed = TransportCause::new(TransportKind::GoAway)
        .with_reason(Reason::new(0xb))
        .remote(true)
        .retry_safe(true);
    for cause in [refused, unprocessed_go_away, calm_unprocessed] {
        let err = ConnectError::transport(Code::Unavailable, "refused", cause);
        for started in [false, true] {
            let c = classify(&err, Context::new().with_response_started(started));
            assert!(c.transparent_retry_allowed(), "{cause:?} started={started}");
            assert!(c.advice().retry_other_account());
            // Unprocessed, but a peer that said ENHANCE_YOUR_CALM still gets its back-off.
            let calm = cause.reason == Some(Reason::ENHANCE_YOUR_CALM);
            assert_eq!(c.advice().retry_same_account(), !calm, "{cause:?}");
        }
    }
    // The same GOAWAY that covered our stream (not retry-safe) after output: no.
    let processed = TransportCause::new(TransportKind::GoAway)
        .with_reason(Reason::new(0x0))
        .remote(true);
    let err = ConnectError::transport(Code::Unavailable, "goaway", processed);
    assert!(
        !classify(&err, Context::new().with_response_started(true)).transparent_retry_allowed()
    );
}

#[test]
fn enhance_your_calm_raised_by_our_library_is_not_a_rate_limit() {
    for kind in [TransportKind::Reset, TransportKind::GoAway] {
        let c = classify(&transport_err(kind, Some(0xb), false), Context::new());
        assert_eq!(
            (c.status().as_u16(), c.category()),
            (502, Transport),
            "{kind:?}"
        );
        assert_eq!(c.advice().cooldown(), None);
        assert!(c.advice().reconnect() && c.advice().is_retryable());
    }
}

#[test]
fn local_cancel_is_canceled_remote_cancel_is_transport() {
    let local = classify(
        &transport_err(TransportKind::Reset, Some(0x8), false),
        Context::new(),
    );
    assert_eq!((local.status().as_u16(), local.category()), (499, Canceled));
    assert!(!local.advice().is_retryable());
    let remote = classify(
        &transport_err(TransportKind::Reset, Some(0x8), true),
        Context::new(),
    );
    assert_eq!(
        (remote.status().as_u16(), remote.category()),
        (502, Transport)
    );
}

#[test]
fn transport_kinds_without_reason() {
    let want = [
        (TransportKind::Reset, 502, Transport, false),
        (TransportKind::GoAway, 502, Transport, true),
        (TransportKind::Io, 502, Transport, true),
        (TransportKind::Timeout, 504, DeadlineExceeded, true),
        (TransportKind::Protocol, 502, Transport, true),
        (TransportKind::Closed, 502, Transport, true),
    ];
    for (kind, status, category, reconnect) in want {
        // A code the refinements do not use, so the kind table alone decides.
        let err = ConnectError::transport(Code::Internal, "x", TransportCause::new(kind));
        let c = classify(&err, Context::new());
        assert_eq!(
            (c.status().as_u16(), c.category()),
            (status, category),
            "{kind:?}"
        );
        assert_eq!(c.advice().reconnect(), reconnect, "{kind:?}");
        assert!(c.advice().is_retryable(), "{kind:?}");
    }
    // The transport's own code tells apart what its kinds lump together (cursor-connect-h2
    // maps a caller's cancel to Closed/canceled, bad input to Protocol/invalid_argument,
    // keepalive and idle timeouts to Timeout/unavailable, the call deadline to
    // Timeout/deadline_exceeded).
    let refined = [
        (TransportKind::Closed, Code::Canceled, 499, Canceled, false),
        (
            TransportKind::Protocol,
            Code::InvalidArgument,
            400,
            BadRequest,
            false,
        ),
        (
            TransportKind::Timeout,
            Code::Unavailable,
            502,
            Transport,
            true,
        ),
        (
            TransportKind::Timeout,
            Code::DeadlineExceeded,
            504,
            DeadlineExceeded,
            true,
        ),
        (
            TransportKind::Closed,
            Code::Unavailable,
            502,
            Transport,
            true,
        ),
        (TransportKind::Io, Code::Unavailable, 502, Transport, true),
    ];
    for (kind, code, status, category, retry) in refined {
        let err = ConnectError::transport(code, "x", TransportCause::new(kind));
        let c = classify(&err, Context::new());
        assert_eq!(
            (c.status().as_u16(), c.category()),
            (status, category),
            "{kind:?} {code:?}"
        );
        assert_eq!(c.advice().is_retryable(), retry, "{kind:?} {code:?}");
        assert_eq!(c.layer(), Layer::Transport);
    }
    // With a reason, the reason decides whatever the code.
    let err = ConnectError::transport(
        Code::Canceled,
        "x",
        TransportCause::new(TransportKind::Reset)
            .with_reason(Reason::new(0x2))
            .remote(true),
    );
    assert_eq!(classify(&err, Context::new()).category(), Transport);
    // A reason on a dead-connection kind still means reconnect.
    let io = classify(
        &transport_err(TransportKind::Io, Some(0x2), true),
        Context::new(),
    );
    assert!(io.advice().reconnect());
}

/// connect-protocol §1.5 / conformance `client_http_to_rpc_code.yaml`: a unary non-200 with no
/// usable Connect body. The inferred code follows the spec; the classification refines it
/// (a 429 is a rate limit on this account, not generic unavailability).
#[test]
fn conformance_http_status_cases() {
    let cases: [(u16, Code, u16, Category); 16] = [
        (400, Code::Internal, 400, BadRequest),
        (401, Code::Unauthenticated, 401, Unauthenticated),
        (403, Code::PermissionDenied, 403, PermissionDenied),
        (404, Code::Unimplemented, 501, OutdatedClient),
        (408, Code::Unknown, 504, DeadlineExceeded),
        (409, Code::Unknown, 409, BadRequest),
        (412, Code::Unknown, 400, BadRequest),
        (413, Code::Unknown, 413, BadRequest),
        (415, Code::Unknown, 415, BadRequest),
        (429, Code::Unavailable, 429, RateLimited),
        (431, Code::Unknown, 431, BadRequest),
        (500, Code::Unknown, 500, Internal),
        (502, Code::Unavailable, 503, UpstreamUnavailable),
        (503, Code::Unavailable, 503, UpstreamUnavailable),
        (504, Code::Unavailable, 504, DeadlineExceeded),
        (505, Code::Unknown, 500, Internal),
    ];
    for (http, inferred, status, category) in cases {
        let sc = StatusCode::from_u16(http).unwrap();
        for body in [
            &b""[..],
            b"null",
            b"{\"code\":null}",
            b"<html>bad gateway</html>",
            b"{\"code\":\"bogus\"}",
        ] {
            let err = ConnectError::from_unary_response(sc, &HeaderMap::new(), body);
            assert_eq!(err.code(), inferred, "{http} {body:?}");
            let c = classify(&err, Context::new());
            assert_eq!(
                (c.status().as_u16(), c.category()),
                (status, category),
                "{http} {body:?}"
            );
            assert_eq!(c.layer(), Layer::HttpStatus, "{http}");
        }
    }
    // An unlisted status falls back to the inferred code.
    let err = ConnectError::from_unary_response(StatusCode::IM_A_TEAPOT, &HeaderMap::new(), b"");
    let c = classify(&err, Context::new());
    assert_eq!((c.category(), c.layer()), (Unknown, Layer::ConnectCode));
    // A valid code in the body wins over the status.
    let err = ConnectError::from_unary_response(
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        br#"{"code":"unauthenticated","message":"Error"}"#,
    );
    assert_eq!(classify(&err, Context::new()).category(), Unauthenticated);
}

#[test]
fn context_http_status_is_used_when_the_error_has_none() {
    let err = ConnectError::new(Code::Unknown, "upstream said no");
    let ctx = Context::new().with_http_status(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(classify(&err, ctx).category(), RateLimited);
    // A code the peer sent, even `unknown`, is not second-guessed by the status it implies.
    let wire = ConnectError::from_unary_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &HeaderMap::new(),
        br#"{"code":"unknown","message":"boom"}"#,
    );
    assert!(wire.is_wire());
    let c = classify(&wire, Context::new());
    assert_eq!((c.category(), c.layer()), (Unknown, Layer::ConnectCode));
    // Peer text behind a status with no row (an error page) is not matched either.
    let page = ConnectError::from_unary_response(
        StatusCode::IM_A_TEAPOT,
        &HeaderMap::new(),
        b"rate limit exceeded",
    );
    assert_eq!(classify(&page, Context::new()).category(), Unknown);
    // A 200 (streaming response with an end-stream error) is never a status decision.
    let ctx = Context::new().with_http_status(StatusCode::OK);
    assert_eq!(classify(&err, ctx).category(), Unknown);
}

fn retry_info(seconds: i64) -> ErrorDetail {
    // google.rpc.RetryInfo { retry_delay: Duration { seconds } }, encoded by hand.
    let mut duration = Vec::new();
    prost::encoding::int64::encode(1, &seconds, &mut duration);
    let mut info = Vec::new();
    prost::encoding::bytes::encode(1, &duration, &mut info);
    ErrorDetail::new("google.rpc.RetryInfo", Bytes::from(info))
}

#[test]
fn retry_after_sources_in_order() {
    let mut md = Metadata::new();
    md.insert("retry-after", "30");
    let err = ConnectError::remote(Code::ResourceExhausted, "slow down")
        .with_detail(retry_info(7))
        .with_metadata(md.clone());
    assert_eq!(
        classify(&err, Context::new()).advice().retry_after(),
        Some(Duration::from_secs(7))
    );
    let err = ConnectError::remote(Code::ResourceExhausted, "slow down").with_metadata(md);
    assert_eq!(
        classify(&err, Context::new()).advice().retry_after(),
        Some(Duration::from_secs(30))
    );
    let err = ConnectError::remote(Code::ResourceExhausted, "slow down");
    assert_eq!(classify(&err, Context::new()).advice().retry_after(), None);
    // A RetryInfo that does not decode is skipped, not trusted.
    let broken = ErrorDetail::new(
        "google.rpc.RetryInfo",
        Bytes::from_static(&[0x0a, 0x05, 0x08]),
    );
    let err = ConnectError::remote(Code::Unavailable, "x").with_detail(broken);
    assert_eq!(classify(&err, Context::new()).advice().retry_after(), None);
}

#[test]
fn text_fallback_only_for_local_unknown_errors() {
    let local = ConnectError::new(Code::Unknown, "stream error received: refused stream");
    let c = classify(&local, Context::new());
    assert_eq!(
        (c.category(), c.layer()),
        (UpstreamUnavailable, Layer::Text)
    );
    let local = ConnectError::new(Code::Unknown, "429 Too Many Requests from upstream");
    assert_eq!(classify(&local, Context::new()).category(), RateLimited);
    let local = ConnectError::new(Code::Unknown, "something odd");
    let c = classify(&local, Context::new());
    assert_eq!(
        (c.category(), c.layer(), c.status().as_u16()),
        (Unknown, Layer::ConnectCode, 500)
    );
    // Peer text is never matched: the peer's code (unknown) stands.
    let remote = ConnectError::remote(Code::Unknown, "rate limit exceeded");
    assert_eq!(classify(&remote, Context::new()).category(), Unknown);
    // A typed local code is not second-guessed by its text.
    let typed = ConnectError::new(Code::Internal, "rate limit");
    assert_eq!(classify(&typed, Context::new()).category(), Internal);
}
