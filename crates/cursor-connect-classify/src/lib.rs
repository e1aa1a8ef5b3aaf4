//! Turns every failure of a Connect call to Cursor into an HTTP status, a [`Category`] and
//! [`Advice`] (retry here or elsewhere, cool the account down, refresh credentials, reconnect,
//! switch model, give up), plus whether a retry can stay invisible to the caller.
//!
//! Classification is a lookup in a few `const` tables, tried in a fixed order:
//!
//! 1. Cursor's `aiserver.v1.ErrorDetails` (every `Error` enum value is mapped on purpose), read
//!    from the detail's protobuf `value`, else its `debug` JSON, else the
//!    `x-cursor-inference-request-error-type` metadata;
//! 2. the Connect code the peer sent;
//! 3. the typed transport cause (HTTP/2 reason in `RST_STREAM` or `GOAWAY` form, else kind
//!    refined by the code the transport chose);
//! 4. the upstream HTTP status when no usable code was sent, then a local error's code;
//! 5. a small substring table, only for local `unknown` errors that arrived as bare text.
//!
//! The server's retry-after (`google.rpc.RetryInfo`, `retry-after`, Cursor's
//! `additionalInfo.retryAfter`) and suggested model are attached whatever layer decided.
//! [`CooldownTracker`] turns the advice into a per-account schedule (exponential backoff,
//! jitter, cap, reset on success) on a clock you supply.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use cursor_connect_classify::{Category, Context, CooldownTracker, ManualClock, classify};
//! use cursor_connect_frame::{Code, ConnectError};
//! use http::StatusCode;
//!
//! // An end-stream error after one data frame had already been forwarded to our caller:
//! // the fingerprint from Cursor's SDK bug report.
//! let err = ConnectError::remote(Code::Unauthenticated, "Error");
//! let c = classify(&err, Context::new().with_response_started(true));
//! assert_eq!(c.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(c.category(), Category::Unauthenticated);
//! assert!(c.advice().refresh_credentials() && c.advice().reconnect());
//! assert!(!c.transparent_retry_allowed(), "the caller already saw output");
//!
//! // A rate limit before any output: switch accounts invisibly, cool this one down.
//! let err = ConnectError::remote(Code::ResourceExhausted, "Error");
//! let c = classify(&err, Context::new());
//! assert_eq!((c.status(), c.category()), (StatusCode::TOO_MANY_REQUESTS, Category::RateLimited));
//! assert!(c.transparent_retry_allowed() && c.advice().retry_other_account());
//!
//! let clock = ManualClock::new(Instant::now());
//! let mut account = CooldownTracker::with_clock(clock.clone());
//! assert_eq!(account.record_failure(c.advice()), Some(Duration::from_secs(60)));
//! assert_eq!(account.record_failure(c.advice()), Some(Duration::from_secs(120)));
//! clock.advance(Duration::from_secs(119));
//! assert!(account.is_cooling_now());
//! clock.advance(Duration::from_secs(1));
//! assert!(!account.is_cooling_now());
//! account.record_success();
//! assert_eq!(account.consecutive_failures(), 0);
//! ```
//!
//! The tables below are generated from the code (see [`tables::render_markdown`]).
//!
#![doc = include_str!("../doc/decision-tables.md")]
#![forbid(unsafe_code)]

mod advice;
mod classify;
mod code_table;
mod cooldown;
mod cursor_table;
mod details;
mod retry;
mod rule;
pub mod tables;
mod text_table;
mod transport_table;

pub use advice::{Advice, Category, CooldownClass, LONG_COOLDOWN, SHORT_COOLDOWN};
pub use classify::{
    Classification, Context, LEGACY_CHAT_HINT, LEGACY_CHAT_SUNSET_ERRORS, Layer, classify,
    classify_with_details,
};
pub use cooldown::{
    AccountState, Clock, CooldownPolicy, CooldownTracker, JitterSource, ManualClock, NoJitter,
    SeededJitter, SystemClock,
};
pub use cursor_table::CursorError;
pub use details::{CursorDetails, DetailsSource, INFERENCE_ERROR_TYPE};
pub use retry::{MAX_RETRY_AFTER, RETRY_INFO_TYPE, decode_retry_info, parse_retry_after};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
