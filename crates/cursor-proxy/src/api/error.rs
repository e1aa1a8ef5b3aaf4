//! Errors as callers see them: the classifier's status, category and `retry-after`; each
//! [`Dialect`](super::Dialect) renders them in its own shape.

use std::time::Duration;

use http::StatusCode;

use crate::engine::pool::NoAccount;
use crate::upstream::UpstreamError;

/// An error for a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {category}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Category (classifier category, or a local one such as `bad_request`).
    pub category: String,
    /// Message safe to show the caller.
    pub message: String,
    /// When to try again.
    pub retry_after: Option<Duration>,
    /// The upstream advised that a fresh attempt may succeed (only acted on while nothing has
    /// reached the caller).
    pub retryable: bool,
}

impl ApiError {
    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A missing or wrong proxy key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "invalid or missing proxy API key",
        )
    }

    /// Any error.
    pub fn new(status: StatusCode, category: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            category: category.to_owned(),
            message: message.into(),
            retry_after: None,
            retryable: false,
        }
    }

    /// No account can serve the request right now.
    pub fn no_account(e: NoAccount, last: Option<&UpstreamError>) -> Self {
        let mut err = match (last, e.category.as_deref()) {
            (Some(u), _) => Self::from(u),
            // Every account is resting after rate limits: to the caller that is a rate limit.
            (None, Some(c @ ("rate_limited" | "quota_exhausted"))) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                c,
                "all upstream accounts are rate limited",
            ),
            (None, _) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable",
                "no upstream account available",
            ),
        };
        err.retry_after = err.retry_after.max(e.retry_after);
        err
    }

    /// A field of the request has a value this proxy does not support.
    pub fn invalid_field(field: impl AsRef<str>, problem: impl AsRef<str>) -> Self {
        Self::bad_request(format!("{}: {}", field.as_ref(), problem.as_ref()))
    }
}

impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        Self {
            status: e.status,
            category: e.category.to_owned(),
            message: e.message.clone(),
            retry_after: e.advice.retry_after,
            retryable: e.retryable(),
        }
    }
}
