//! Errors as callers see them: each API's own JSON shape, the classifier's status, `retry-after`.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::pool::NoAccount;
use crate::upstream::UpstreamError;

/// Which API a caller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions.
    OpenAi,
    /// Anthropic messages.
    Anthropic,
}

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

    /// OpenAI's `error.type` for this status.
    pub fn openai_type(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 413 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 if self.category == "quota_exhausted" => "insufficient_quota",
            429 => "rate_limit_error",
            _ => "server_error",
        }
    }

    /// Anthropic's `error.type` for this status.
    pub fn anthropic_type(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// The JSON body in `api`'s shape.
    pub fn body(&self, api: Api) -> serde_json::Value {
        match api {
            Api::OpenAi => json!({"error": {
                "message": self.message, "type": self.openai_type(), "param": null, "code": self.category,
            }}),
            Api::Anthropic => {
                json!({"type": "error", "error": {"type": self.anthropic_type(), "message": self.message}})
            }
        }
    }

    /// The SSE event that ends a stream which already sent bytes.
    pub fn sse_event(&self, api: Api) -> Bytes {
        match api {
            Api::OpenAi => crate::sse::data(&self.body(api)),
            Api::Anthropic => crate::sse::event("error", &self.body(api)),
        }
    }

    /// The HTTP response in `api`'s shape.
    pub fn response(&self, api: Api) -> Response {
        let mut resp = (self.status, axum::Json(self.body(api))).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if api == Api::Anthropic && self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("true"));
        }
        resp
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_retry_after() {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
        e.retry_after = Some(Duration::from_millis(1500));
        assert_eq!(e.body(Api::OpenAi)["error"]["type"], "rate_limit_error");
        assert_eq!(e.body(Api::Anthropic)["error"]["type"], "rate_limit_error");
        assert_eq!(e.body(Api::Anthropic)["type"], "error");
        let r = e.response(Api::OpenAi);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let sse = e.sse_event(Api::Anthropic);
        assert!(sse.starts_with(b"event: error\ndata: {"));
        assert!(
            ApiError::unauthorized()
                .sse_event(Api::OpenAi)
                .starts_with(b"data: {\"error\"")
        );
    }
}
