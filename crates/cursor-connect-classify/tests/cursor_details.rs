//! Table-driven: every `aiserver.v1.ErrorDetails.Error` value, with and without custom details.

use std::time::Duration;

use bytes::Bytes;
use cursor_connect_classify::tables::{CURSOR_ERRORS, Decision};
use cursor_connect_classify::{
    Category, Context, CursorError, DetailsSource, LONG_COOLDOWN, Layer, SHORT_COOLDOWN, classify,
};
use cursor_connect_frame::{Code, ConnectError, ErrorDetail, Metadata};
use cursor_proto::aiserver::v1::{
    CustomErrorDetails, ErrorButton, ErrorDetails, SwitchModelAction, error_button,
};
use prost::Message;

use Category::*;

fn with_details(code: Code, msg: &ErrorDetails) -> ConnectError {
    let value = Bytes::from(msg.encode_to_vec());
    ConnectError::remote(code, "Error")
        .with_detail(ErrorDetail::new("aiserver.v1.ErrorDetails", value))
}

fn bare(error: i32) -> ErrorDetails {
    ErrorDetails {
        error,
        details: None,
        is_expected: Some(true),
    }
}

fn custom(error: i32, retryable: Option<bool>) -> ErrorDetails {
    let details = CustomErrorDetails {
        title: format!("title {error}"),
        detail: "detail text".into(),
        is_retryable: retryable,
        ..Default::default()
    };
    ErrorDetails {
        error,
        details: Some(details),
        is_expected: Some(true),
    }
}

#[test]
fn table_names_match_the_schema() {
    for v in 0..=65 {
        assert_eq!(
            CursorError(v).name(),
            cursor_proto::error_details::error_name(v),
            "enum value {v}"
        );
    }
    assert_eq!(CURSOR_ERRORS.len(), 66);
}

#[test]
fn every_error_value_without_custom_details() {
    // The Connect code is deliberately misleading (addenda §5: code invalid_argument carried
    // ERROR_MODEL_NO_LONGER_SUPPORTED); the details must decide.
    for code in [
        Code::InvalidArgument,
        Code::ResourceExhausted,
        Code::Unknown,
    ] {
        let by_code = classify(&ConnectError::remote(code, "Error"), Context::new());
        for row in &CURSOR_ERRORS {
            let c = classify(&with_details(code, &bare(row.value)), Context::new());
            assert_eq!(
                c.cursor_error(),
                Some(CursorError(row.value)),
                "{}",
                row.name
            );
            assert_eq!(
                c.cursor_details().map(|d| d.source()),
                Some(DetailsSource::Value)
            );
            match row.decision {
                Decision::Rule(rule) => {
                    assert_eq!(c.layer(), Layer::CursorDetails, "{}", row.name);
                    assert_eq!(c.category(), rule.category(), "{}", row.name);
                    assert_eq!(c.status(), rule.status(), "{}", row.name);
                    assert_eq!(c.advice(), &rule.advice(), "{}", row.name);
                }
                Decision::Defer => {
                    assert_eq!(c.layer(), Layer::ConnectCode, "{}", row.name);
                    assert_eq!(
                        (c.category(), c.status()),
                        (by_code.category(), by_code.status())
                    );
                }
            }
        }
    }
}

#[test]
fn every_error_value_with_custom_details() {
    for row in &CURSOR_ERRORS {
        let plain = classify(
            &with_details(Code::Unknown, &bare(row.value)),
            Context::new(),
        );
        for retryable in [None, Some(true), Some(false)] {
            let c = classify(
                &with_details(Code::Unknown, &custom(row.value, retryable)),
                Context::new(),
            );
            let name = row.name;
            let d = c.cursor_details().expect("details");
            assert_eq!(d.title(), format!("title {}", row.value));
            assert_eq!(d.detail(), "detail text");
            assert_eq!(d.is_retryable(), retryable);
            assert_eq!(
                (c.category(), c.status()),
                (plain.category(), plain.status()),
                "{name}"
            );
            let (a, p) = (c.advice(), plain.advice());
            match retryable {
                None => assert_eq!(a, p, "{name}: no flag, no change"),
                // Every account shares the client version: no flag makes a retry useful.
                Some(_) if c.category() == OutdatedClient => {
                    assert_eq!(a, p, "{name}: outdated client is never retryable");
                    assert!(
                        !a.is_retryable() && !c.transparent_retry_allowed(),
                        "{name}"
                    );
                }
                Some(true) => {
                    assert!(a.retry_other_account(), "{name}");
                    assert_eq!(a.retry_same_account(), !p.disable_account(), "{name}");
                    assert!(c.transparent_retry_allowed(), "{name}");
                }
                Some(false) => {
                    assert_eq!(
                        a.retry_same_account(),
                        p.retry_same_account() && p.refresh_credentials(),
                        "{name}"
                    );
                    assert_eq!(
                        a.retry_other_account(),
                        p.retry_other_account() && c.category().is_account_specific(),
                        "{name}"
                    );
                    let want = p.cooldown().map(|d| {
                        if d == SHORT_COOLDOWN {
                            LONG_COOLDOWN
                        } else {
                            d
                        }
                    });
                    assert_eq!(a.cooldown(), want, "{name}");
                }
            }
            assert_eq!(a.refresh_credentials(), p.refresh_credentials());
            assert_eq!(a.disable_account(), p.disable_account());
        }
    }
}

/// Expected: value, category, status, same, other, cooldown, refresh, disable.
type Want = (i32, Category, u16, bool, bool, Option<Duration>, bool, bool);

#[test]
fn decisions_the_issue_names() {
    let long = Some(LONG_COOLDOWN);
    let short = Some(SHORT_COOLDOWN);
    let cases: [Want; 14] = [
        (9, QuotaExhausted, 429, false, true, long, false, false), // FREE_USER_USAGE_LIMIT
        (10, QuotaExhausted, 429, false, true, long, false, false), // PRO_USER_USAGE_LIMIT
        (51, RateLimited, 429, false, true, short, false, false),  // RATE_LIMITED_CHANGEABLE
        (30, OutdatedClient, 502, false, false, None, false, false), // OUTDATED_CLIENT
        (2, Unauthenticated, 401, true, true, None, true, false),  // NOT_LOGGED_IN
        (12, TokenExpired, 401, true, true, None, true, false),    // AUTH_TOKEN_EXPIRED
        (50, RateLimited, 429, false, true, short, false, false),  // RATE_LIMITED
        (41, UpstreamUnavailable, 503, true, true, None, false, false), // RESOURCE_EXHAUSTED (provider)
        (57, UpstreamUnavailable, 502, true, true, None, false, false), // PROVIDER_ERROR
        (
            43,
            ConversationTooLong,
            400,
            false,
            false,
            None,
            false,
            false,
        ),
        (61, ModelUnavailable, 404, false, false, None, false, false),
        (65, PermissionDenied, 403, false, true, None, false, true), // ACCOUNT_CLOSED
        (54, PermissionDenied, 403, false, true, None, false, true), // SUSPICIOUS_USAGE_BLOCKED
        (21, Canceled, 499, false, false, None, false, false),
    ];
    for (v, category, status, same, other, cooldown, refresh, disable) in cases {
        let c = classify(&with_details(Code::Internal, &bare(v)), Context::new());
        let a = c.advice();
        assert_eq!(
            (c.category(), c.status().as_u16()),
            (category, status),
            "{v}"
        );
        assert_eq!(
            (a.retry_same_account(), a.retry_other_account()),
            (same, other),
            "{v}"
        );
        assert_eq!(a.cooldown(), cooldown, "{v}");
        assert_eq!(
            (a.refresh_credentials(), a.disable_account()),
            (refresh, disable),
            "{v}"
        );
    }
}

#[test]
fn rate_limited_changeable_offers_the_fallback_model() {
    let mut msg = custom(51, None);
    let details = msg.details.as_mut().unwrap();
    details
        .additional_info
        .insert("fallbackModel".into(), "auto".into());
    details.buttons.push(ErrorButton {
        label: "Switch".into(),
        action: Some(error_button::Action::SwitchModel(SwitchModelAction {
            suggested_model: Some("composer-2.5".into()),
            ..Default::default()
        })),
    });
    let c = classify(&with_details(Code::ResourceExhausted, &msg), Context::new());
    assert_eq!(
        c.advice().fallback_model(),
        Some("auto"),
        "additionalInfo wins over buttons"
    );
    assert_eq!(c.advice().cooldown(), Some(SHORT_COOLDOWN));

    msg.details.as_mut().unwrap().additional_info.clear();
    let c = classify(&with_details(Code::ResourceExhausted, &msg), Context::new());
    assert_eq!(c.advice().fallback_model(), Some("composer-2.5"));

    msg.details
        .as_mut()
        .unwrap()
        .additional_info
        .insert("autoSwitchToModel".into(), "gpt-5".into());
    let c = classify(&with_details(Code::ResourceExhausted, &msg), Context::new());
    assert_eq!(c.advice().fallback_model(), Some("gpt-5"));
}

#[test]
fn additional_info_retry_after() {
    let mut msg = custom(50, Some(true));
    msg.details
        .as_mut()
        .unwrap()
        .additional_info
        .insert("retryAfter".into(), "60".into());
    let c = classify(&with_details(Code::ResourceExhausted, &msg), Context::new());
    assert_eq!(c.advice().retry_after(), Some(Duration::from_secs(60)));
    msg.details
        .as_mut()
        .unwrap()
        .additional_info
        .insert("retryAfter".into(), "soon".into());
    let c = classify(&with_details(Code::ResourceExhausted, &msg), Context::new());
    assert_eq!(c.advice().retry_after(), None);
}

#[test]
fn unknown_future_value_defers_to_the_code() {
    let c = classify(
        &with_details(Code::ResourceExhausted, &bare(99)),
        Context::new(),
    );
    assert_eq!(c.cursor_error(), Some(CursorError(99)));
    assert_eq!(CursorError(99).name(), None);
    assert_eq!((c.category(), c.layer()), (RateLimited, Layer::ConnectCode));
}

#[test]
fn detail_type_and_value_handling() {
    let value = Bytes::from(bare(9).encode_to_vec());
    // The googleapis type URL form is accepted.
    let err = ConnectError::remote(Code::Unknown, "Error").with_detail(ErrorDetail::new(
        "type.googleapis.com/aiserver.v1.ErrorDetails",
        value.clone(),
    ));
    assert_eq!(classify(&err, Context::new()).category(), QuotaExhausted);
    // Another message type with the same bytes is not read as Cursor details.
    let err = ConnectError::remote(Code::Unknown, "Error")
        .with_detail(ErrorDetail::new("a.Other", value.clone()));
    assert_eq!(classify(&err, Context::new()).cursor_error(), None);
    // A broken value (truncated like E03's "CDIS") is skipped, and a later good one is used.
    let err = ConnectError::remote(Code::ResourceExhausted, "Error")
        .with_detail(ErrorDetail::new(
            "aiserver.v1.ErrorDetails",
            Bytes::from_static(&[0x08, 0x32, 0x12]),
        ))
        .with_detail(ErrorDetail::new("aiserver.v1.ErrorDetails", value));
    assert_eq!(classify(&err, Context::new()).category(), QuotaExhausted);
    let err = ConnectError::remote(Code::ResourceExhausted, "Error").with_detail(ErrorDetail::new(
        "aiserver.v1.ErrorDetails",
        Bytes::from_static(&[0x08, 0x32, 0x12]),
    ));
    let c = classify(&err, Context::new());
    assert_eq!((c.category(), c.cursor_error()), (RateLimited, None));
}

#[test]
fn inference_error_type_metadata_is_a_last_resort() {
    let mut md = Metadata::new();
    md.insert("x-cursor-inference-request-error-type", "PROVIDER_ERROR");
    let err = ConnectError::remote(Code::ResourceExhausted, "Error").with_metadata(md.clone());
    let c = classify(&err, Context::new());
    assert_eq!(
        (c.category(), c.layer()),
        (UpstreamUnavailable, Layer::CursorDetails)
    );
    assert_eq!(
        c.cursor_details().map(|d| d.source()),
        Some(DetailsSource::Metadata)
    );
    // A decodable value wins over the metadata.
    let err = with_details(Code::ResourceExhausted, &bare(10)).with_metadata(md);
    assert_eq!(classify(&err, Context::new()).category(), QuotaExhausted);
    // An unknown metadata value is ignored.
    let mut md = Metadata::new();
    md.insert("x-cursor-inference-request-error-type", "SOMETHING_NEW");
    let err = ConnectError::remote(Code::ResourceExhausted, "Error").with_metadata(md);
    assert_eq!(classify(&err, Context::new()).cursor_error(), None);
}

#[test]
fn debug_json_sits_between_value_and_metadata() {
    let debug = r#"{"error":"ERROR_BAD_MODEL_NAME","details":{"title":"AI Model Not Found"}}"#;
    let mut md = Metadata::new();
    md.insert("x-cursor-inference-request-error-type", "PROVIDER_ERROR");
    let typed = || ErrorDetail::new("aiserver.v1.ErrorDetails", Bytes::new());
    let source = |err: &ConnectError| {
        let c = classify(err, Context::new());
        (c.cursor_error(), c.cursor_details().map(|d| d.source()))
    };

    // Debug beats the metadata, typed or untyped.
    for detail in [
        typed().with_debug(debug),
        ErrorDetail::new("", Bytes::new()).with_debug(debug),
    ] {
        let err = ConnectError::remote(Code::ResourceExhausted, "Error")
            .with_detail(detail)
            .with_metadata(md.clone());
        assert_eq!(
            source(&err),
            (Some(CursorError(5)), Some(DetailsSource::Debug))
        );
        assert_eq!(classify(&err, Context::new()).category(), ModelUnavailable);
    }

    // A decodable value beats the debug; a cut value (E03's "CDIS") does not.
    let value = Bytes::from(bare(10).encode_to_vec());
    let err = ConnectError::remote(Code::ResourceExhausted, "Error")
        .with_detail(ErrorDetail::new("aiserver.v1.ErrorDetails", value).with_debug(debug));
    assert_eq!(
        source(&err),
        (Some(CursorError(10)), Some(DetailsSource::Value))
    );
    let err = ConnectError::remote(Code::ResourceExhausted, "Error").with_detail(
        ErrorDetail::new(
            "aiserver.v1.ErrorDetails",
            Bytes::from_static(&[0x08, 0x32, 0x12]),
        )
        .with_debug(debug),
    );
    assert_eq!(
        source(&err),
        (Some(CursorError(5)), Some(DetailsSource::Debug))
    );

    // The debug of another message type is that message's, never Cursor's; a debug that names
    // no known error is skipped for a later one; without any, the metadata decides.
    let err = ConnectError::remote(Code::ResourceExhausted, "Error")
        .with_detail(ErrorDetail::new("google.rpc.RetryInfo", Bytes::new()).with_debug(debug))
        .with_detail(typed().with_debug(r#"{"error":"ERROR_FROM_THE_FUTURE"}"#))
        .with_detail(typed().with_debug("not json"))
        .with_metadata(md.clone());
    assert_eq!(
        source(&err),
        (Some(CursorError(57)), Some(DetailsSource::Metadata))
    );
    let err = ConnectError::remote(Code::ResourceExhausted, "Error")
        .with_detail(typed().with_debug(r#"{"error":"ERROR_FROM_THE_FUTURE"}"#))
        .with_detail(typed().with_debug(debug));
    assert_eq!(
        source(&err),
        (Some(CursorError(5)), Some(DetailsSource::Debug))
    );
    let err = ConnectError::remote(Code::ResourceExhausted, "Error")
        .with_detail(ErrorDetail::new("google.rpc.RetryInfo", Bytes::new()).with_debug(debug));
    assert_eq!(source(&err), (None, None));
}
