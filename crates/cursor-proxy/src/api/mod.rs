//! The HTTP APIs callers speak (OpenAI chat completions, OpenAI Responses, Anthropic messages). Each one is a [`Dialect`]: it parses a request body into the
//! neutral [`Turn`], renders the engine's [`TurnItem`]s as its own response (streamed or whole),
//! and renders errors in its own shape. The pipeline between (caller key, engine, retries,
//! logging) is written once, in [`routes`], for every dialect.

pub mod anthropic;
pub mod body;
pub mod error;
pub mod models;
pub mod openai_chat;
pub mod openai_responses;
pub mod routes;
pub mod sse;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

pub use self::anthropic::Anthropic;
pub use self::body::decode_body;
pub use self::error::ApiError;
pub use self::openai_chat::OpenAiChat;
pub use self::openai_responses::OpenAiResponses;
use self::sse::Render;
use crate::engine::TurnItem;
use crate::engine::turn::Turn;

/// One HTTP API dialect (OpenAI chat completions, Anthropic messages, ...).
///
/// Implementations are stateless: everything a response needs comes from the parsed [`Turn`]
/// and the engine's items.
pub trait Dialect: Send + Sync + 'static {
    /// The dialect's name in logs.
    const NAME: &'static str;
    /// Prefix of the ids of its responses (`chatcmpl-`, `msg_`).
    const ID_PREFIX: &'static str;
    /// The streaming renderer.
    type Stream: Render;
    /// The status this API answers for a model the caller may not use.
    const MODEL_REFUSED: http::StatusCode = http::StatusCode::NOT_FOUND;

    /// Parses a request body (and the headers that carry request data) into the neutral turn.
    fn parse(body: &[u8], headers: &HeaderMap) -> Result<Turn, ApiError>;

    /// A renderer for the streamed response `id` to `turn`.
    fn stream(id: String, turn: &Turn) -> Self::Stream;

    /// The whole (non-streamed) response `id` to `turn`, from all of the turn's items; the
    /// error it ended with if it failed.
    fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>)
    -> Result<serde_json::Value, ApiError>;

    /// The JSON error body in this API's shape.
    fn error_body(error: &ApiError) -> serde_json::Value;

    /// The SSE event that ends a stream which already sent bytes.
    fn error_event(error: &ApiError) -> Bytes;

    /// Headers this API adds to an error response besides `retry-after` (none by default).
    fn error_headers(_error: &ApiError, _headers: &mut HeaderMap) {}

    /// The HTTP error response: the error's status, this API's body, `retry-after` when known.
    fn error_response(error: &ApiError) -> Response {
        let mut resp = (error.status, axum::Json(Self::error_body(error))).into_response();
        if let Some(after) = error.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        Self::error_headers(error, resp.headers_mut());
        resp
    }
}
