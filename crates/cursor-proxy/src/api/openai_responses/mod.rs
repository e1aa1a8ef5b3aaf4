//! The OpenAI Responses API (`POST /v1/responses`): request parsing, the response object and
//! its streamed event sequence (`response.created`, `response.in_progress`, output items with
//! their parts and deltas, `response.completed` or `response.failed`).
//!
//! `previous_response_id` continues a response this proxy stored (see [`store`]);
//! `prompt_cache_key` names the conversation (like Claude Code's session id). Tool calls wait
//! on the open upstream stream exactly as for chat completions: the next request's
//! `function_call_output` items go back on it.

mod output;
mod request;
pub mod store;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

pub use self::output::{StreamRender, usage_json};
use self::request::ResponsesRequest;
use super::error::ApiError;
use super::sse;
use super::{Dialect, decode_body};
use crate::engine::TurnItem;
use crate::engine::turn::Turn;

/// OpenAI Responses (`POST /v1/responses`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiResponses;

impl Dialect for OpenAiResponses {
    const NAME: &'static str = "openai_responses";
    const ID_PREFIX: &'static str = "resp_";
    type Stream = StreamRender;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Turn, ApiError> {
        let parsed = decode_body::<ResponsesRequest>(body)?.into_turn()?;
        let mut turn = parsed.turn;
        if let Some(prev) = parsed.previous_response_id {
            let mut earlier = store::get(&prev).ok_or_else(|| {
                ApiError::invalid_field(
                    "previous_response_id",
                    format!("Previous response with id '{prev}' not found."),
                )
            })?;
            earlier.append(&mut turn.messages);
            turn.messages = earlier;
        }
        Ok(turn)
    }

    fn stream(id: String, turn: &Turn) -> StreamRender {
        StreamRender::new(id, turn)
    }

    fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>) -> Result<Value, ApiError> {
        output::complete(id, turn, items)
    }

    fn error_body(e: &ApiError) -> Value {
        super::openai_chat::OpenAiChat::error_body(e)
    }

    fn error_event(e: &ApiError) -> Bytes {
        sse::event(
            "error",
            &json!({"type": "error", "code": error_code(e), "message": e.message, "param": null}),
        )
    }
}

/// The `code` of a failed response's `error`.
pub(crate) fn error_code(e: &ApiError) -> &'static str {
    match e.status.as_u16() {
        429 => "rate_limit_exceeded",
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 | 403 => "invalid_api_key",
        _ => "server_error",
    }
}
