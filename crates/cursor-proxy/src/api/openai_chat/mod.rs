//! OpenAI `chat.completions`: request parsing and response rendering (streaming and not).

use std::time::{SystemTime, UNIX_EPOCH};

mod request;

use bytes::Bytes;
use serde_json::{Value, json};

use http::HeaderMap;

use self::request::ChatRequest;
use super::error::ApiError;
use super::sse::{self, Render};
use super::{Dialect, decode_body};
use crate::engine::turn::Turn;
use crate::engine::{Stop, TurnItem};
use cursor_connect::classify::Category;
use cursor_connect::{Event, Usage};

/// OpenAI chat completions (`POST /v1/chat/completions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiChat;

impl Dialect for OpenAiChat {
    const NAME: &'static str = "openai_chat";
    const ID_PREFIX: &'static str = "chatcmpl-";
    type Stream = StreamRender;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Turn, ApiError> {
        decode_body::<ChatRequest>(body)?.into_turn()
    }

    fn stream(id: String, turn: &Turn) -> StreamRender {
        StreamRender::new(id, turn.model.clone(), turn.include_usage)
    }

    fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>) -> Result<Value, ApiError> {
        complete(id, &turn.model, items)
    }

    fn error_body(e: &ApiError) -> Value {
        json!({"error": {
            "message": e.message, "type": error_type(e), "param": null, "code": error_code(e),
        }})
    }

    fn error_event(e: &ApiError) -> Bytes {
        sse::data(&Self::error_body(e))
    }
}

/// OpenAI's `error.code`: its own `model_not_found` for a model refused with 404, else the
/// category.
fn error_code(e: &ApiError) -> &'static str {
    if e.status == http::StatusCode::NOT_FOUND && e.category == Category::ModelUnavailable {
        "model_not_found"
    } else {
        e.category.as_str()
    }
}

/// OpenAI's `error.type` for an error.
fn error_type(e: &ApiError) -> &'static str {
    match e.status.as_u16() {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 if e.category == Category::QuotaExhausted => "insufficient_quota",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// OpenAI's `usage` object from upstream counters. Both count cached prompt tokens inside the
/// prompt total, so `prompt_tokens` is Cursor's `input_tokens` as is.
pub fn usage_json(u: &Usage) -> Value {
    let prompt = u.input_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Streaming renderer.
#[derive(Debug)]
pub struct StreamRender {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    role_sent: bool,
    tool_index: usize,
}

impl StreamRender {
    /// A renderer for a response to `model`.
    pub fn new(id: String, model: String, include_usage: bool) -> Self {
        Self {
            id,
            model,
            created: now_secs(),
            include_usage,
            role_sent: false,
            tool_index: 0,
        }
    }

    fn chunk(&mut self, mut delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            delta["role"] = json!("assistant");
        }
        sse::push_data(
            out,
            &json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
        );
    }
}

impl Render for StreamRender {
    fn start(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn item(&mut self, item: TurnItem, out: &mut Vec<u8>) -> bool {
        match item {
            TurnItem::Event(Event::TextDelta(t)) => self.chunk(json!({"content": t}), None, out),
            TurnItem::Event(Event::ThinkingDelta(t)) => {
                self.chunk(json!({"reasoning_content": t}), None, out)
            }
            TurnItem::Event(Event::ThinkingCompleted) => {}
            TurnItem::Event(Event::ToolCall(c)) => {
                let index = self.tool_index;
                self.tool_index += 1;
                let call = json!({"index": index, "id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}});
                self.chunk(json!({"tool_calls": [call]}), None, out);
            }
            TurnItem::Event(_) => {}
            TurnItem::Done { stop, usage } => {
                let reason = if stop == Stop::ToolUse {
                    "tool_calls"
                } else {
                    "stop"
                };
                self.chunk(json!({}), Some(reason), out);
                if self.include_usage {
                    sse::push_data(
                        out,
                        &json!({
                            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": usage_json(&usage),
                        }),
                    );
                }
                out.extend_from_slice(sse::DONE);
                return true;
            }
            TurnItem::Failed(e) => {
                out.extend_from_slice(&OpenAiChat::error_event(&e));
                return true;
            }
        }
        false
    }
}

/// A whole turn as a `chat.completion` object (or the error it ended with).
fn complete(id: &str, model: &str, items: Vec<TurnItem>) -> Result<Value, ApiError> {
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for item in items {
        match item {
            TurnItem::Event(Event::TextDelta(t)) => text.push_str(&t),
            TurnItem::Event(Event::ThinkingDelta(t)) => reasoning.push_str(&t),
            TurnItem::Event(Event::ThinkingCompleted) => {}
            TurnItem::Event(Event::ToolCall(c)) => calls.push(json!({"id": c.id, "type": "function",
                                                       "function": {"name": c.name, "arguments": c.arguments}})),
            TurnItem::Event(_) => {}
            TurnItem::Failed(e) => return Err(e),
            TurnItem::Done { stop, usage } => {
                let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
                if !reasoning.is_empty() {
                    message["reasoning_content"] = json!(reasoning);
                }
                if !calls.is_empty() {
                    message["tool_calls"] = json!(calls);
                }
                let reason = if stop == Stop::ToolUse { "tool_calls" } else { "stop" };
                return Ok(json!({
                    "id": id, "object": "chat.completion", "created": now_secs(), "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
                    "usage": usage_json(&usage),
                }));
            }
        }
    }
    Err(ApiError::no_result())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::turn::{Part, ToolChoice};
    use cursor_connect::ToolCall;
    use http::StatusCode;
    use std::time::Duration;

    #[test]
    fn error_shapes_and_retry_after() {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Category::RateLimited,
            "slow down",
        );
        e.retry_after = Some(Duration::from_millis(1500));
        assert_eq!(
            OpenAiChat::error_body(&e)["error"]["type"],
            "rate_limit_error"
        );
        let r = OpenAiChat::error_response(&e);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "2");
        assert!(
            OpenAiChat::error_event(&ApiError::unauthorized()).starts_with(b"data: {\"error\"")
        );
    }

    #[test]
    fn parses_tools_images_tool_results_and_options() {
        let body = json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true}, "reasoning_effort": "high",
            "tool_choice": {"type": "function", "function": {"name": "get"}},
            "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        });
        let r = parse(&body).unwrap();
        assert_eq!(r.system.as_deref(), Some("be brief"));
        assert!(r.stream && r.include_usage && r.thinking);
        assert_eq!(r.tool_choice, ToolChoice::Named("get".into()));
        assert_eq!(r.tools[0].name, "get");
        assert!(
            matches!(&r.messages[0].parts[1], Part::Image(i) if i.mime == "image/png" && &i.data[..] == b"hi")
        );
        assert_eq!(r.trailing_tool_results()[0].1.content(), "42");
        let err = parse(&json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})).unwrap_err();
        assert_eq!(
            err.message,
            "messages[0].content[0].image_url.url: images must be base64 data URLs"
        );
        assert!(parse(&json!({"messages": []})).is_err());
    }

    fn parse(body: &Value) -> Result<Turn, ApiError> {
        OpenAiChat::parse(body.to_string().as_bytes(), &HeaderMap::new())
    }

    #[test]
    fn unsupported_values_are_refused_naming_the_field() {
        let refused = |body: Value| {
            let e = parse(&body).unwrap_err();
            assert_eq!(e.status, 400, "{}", e.message);
            assert_eq!(
                OpenAiChat::error_body(&e)["error"]["type"],
                "invalid_request_error"
            );
            e.message
        };
        let msg = |m: Value| json!({"model": "m", "messages": [m]});
        assert!(
            refused(msg(json!({"role": "function", "content": "x"})))
                .starts_with("messages[0].role: unknown variant `function`")
        );
        assert!(
            refused(msg(
                json!({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]})
            ))
            .starts_with("messages[0].content[0].type: unknown variant `input_audio`")
        );
        let mut body = msg(json!({"role": "user", "content": "x"}));
        body["reasoning_effort"] = json!("extreme");
        assert!(refused(body.clone()).starts_with("reasoning_effort: unknown variant `extreme`"));
        body["reasoning_effort"] = json!("low");
        body["tool_choice"] = json!("sometimes");
        assert!(refused(body.clone()).starts_with("tool_choice: unsupported value"));
        body["tool_choice"] = json!("auto");
        body["tools"] = json!([{"type": "custom", "custom": {"name": "x"}}]);
        assert!(refused(body.clone()).starts_with("tools[0].type: unknown variant `custom`"));
        assert!(refused(json!({"model": 5, "messages": []})).starts_with("model: invalid type"));
        // Unknown fields are tolerated.
        body["tools"] = json!([]);
        body["frequency_penalty"] = json!(0.5);
        body["user"] = json!("u");
        assert!(parse(&body).is_ok());
    }

    #[test]
    fn stream_renders_tool_calls_usage_and_done() {
        let mut r = StreamRender::new("chatcmpl-1".into(), "m".into(), true);
        let mut out = Vec::new();
        assert!(!r.item(
            TurnItem::Event(Event::ToolCall(ToolCall::new("c", "f", "{}"))),
            &mut out
        ));
        let mut usage = Usage::default();
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
        ) = (3, 5, 2);
        assert!(r.item(
            TurnItem::Done {
                stop: Stop::ToolUse,
                usage
            },
            &mut out
        ));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"role\":\"assistant\"") && text.contains("\"tool_calls\":[{"));
        assert!(text.contains("\"finish_reason\":\"tool_calls\""));
        assert!(text.contains("\"prompt_tokens\":3") && text.contains("\"cached_tokens\":2"));
        assert!(text.ends_with("data: [DONE]\n\n"));
    }
}
