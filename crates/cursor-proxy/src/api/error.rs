//! Errors as callers see them: the classifier's status, category and `retry-after`, kept typed
//! from the upstream failure to the HTTP response; each [`Dialect`](super::Dialect) renders
//! them in its own shape.

use std::fmt;
use std::time::Duration;

use cursor_connect::classify::{Category, Classification};
use http::StatusCode;

use crate::engine::pool::NoAccount;

/// An error for a caller.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What kind of failure (the classifier's category, or the proxy's own for local errors).
    pub category: Category,
    /// Message safe to show the caller.
    pub message: String,
    /// When to try again.
    pub retry_after: Option<Duration>,
    /// The classifier advised that a fresh attempt may succeed (only acted on while nothing
    /// has reached the caller).
    pub retryable: bool,
    /// The upstream failure behind it, if any.
    #[source]
    pub source: Option<cursor_connect::Error>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.category, self.message)
    }
}

/// Errors compare by what the caller sees (status, category, message, retry advice), not by
/// their source.
impl PartialEq for ApiError {
    fn eq(&self, other: &Self) -> bool {
        (
            self.status,
            self.category,
            &self.message,
            self.retry_after,
            self.retryable,
        ) == (
            other.status,
            other.category,
            &other.message,
            other.retry_after,
            other.retryable,
        )
    }
}

impl ApiError {
    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Category::BadRequest, message)
    }

    /// A field of the request has a value this proxy does not support.
    pub fn invalid_field(field: impl AsRef<str>, problem: impl AsRef<str>) -> Self {
        Self::bad_request(format!("{}: {}", field.as_ref(), problem.as_ref()))
    }

    /// A missing or wrong proxy key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Category::Unauthenticated,
            "invalid or missing proxy API key",
        )
    }

    /// The upstream turn ended without a final item (a bug or a vanished task).
    pub fn no_result() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Category::Internal,
            "the upstream turn ended without a result",
        )
    }

    /// Any local error.
    pub fn new(status: StatusCode, category: Category, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            retry_after: None,
            retryable: false,
            source: None,
        }
    }

    /// An upstream failure as the classifier sees it.
    pub fn upstream(e: &cursor_connect::Error, c: &Classification) -> Self {
        // The Connect message is what the server said; the client's own text otherwise. Neither
        // carries credentials.
        let message = e
            .connect_error()
            .map_or_else(|| e.to_string(), |c| c.message().to_owned());
        Self {
            status: c.status(),
            category: c.category(),
            message,
            retry_after: c.advice().retry_after(),
            retryable: c.advice().is_retryable(),
            source: Some(e.clone()),
        }
    }

    /// No account can serve the request right now; `last` is the last upstream failure.
    pub fn no_account(e: &NoAccount, last: Option<Self>) -> Self {
        // A key pinned to an account group is told which group has nothing to offer.
        let which = e
            .group
            .as_ref()
            .map_or_else(String::new, |g| format!(" of account group {g:?}"));
        let mut err = match (last, e.category) {
            (Some(u), _) => u,
            // Every account is resting after rate limits: to the caller that is a rate limit.
            (None, Some(c @ (Category::RateLimited | Category::QuotaExhausted))) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                c,
                format!("all upstream accounts{which} are rate limited"),
            ),
            (None, _) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Category::UpstreamUnavailable,
                format!("no upstream account{which} available"),
            ),
        };
        err.retry_after = err.retry_after.max(e.retry_after);
        err
    }

    /// No upstream account is available.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Category::UpstreamUnavailable,
            "no upstream account available",
        )
    }
}
