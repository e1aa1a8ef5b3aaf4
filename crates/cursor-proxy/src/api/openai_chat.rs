//! OpenAI `chat.completions`: request parsing and response rendering (streaming and not).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use http::HeaderMap;

use super::error::ApiError;
use super::sse::{self, Render};
use super::{Dialect, decode_body};
use crate::engine::turn::{Message, Part, Role, ToolChoice, Turn};
use crate::engine::{Stop, TurnItem};
use crate::upstream::{Image, TokenUsage, ToolCall, ToolOutput, ToolSpec};

/// OpenAI chat completions (`POST /v1/chat/completions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiChat;

impl Dialect for OpenAiChat {
    const NAME: &'static str = "openai_chat";
    const ID_PREFIX: &'static str = "chatcmpl-";
    type Stream = StreamRender;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Turn, ApiError> {
        parse_request(&decode_body(body)?)
    }

    fn stream(id: String, turn: &Turn) -> StreamRender {
        StreamRender::new(id, turn.model.clone(), turn.include_usage)
    }

    fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>) -> Result<Value, ApiError> {
        complete(id, &turn.model, items)
    }

    fn error_body(e: &ApiError) -> Value {
        json!({"error": {
            "message": e.message, "type": error_type(e), "param": null, "code": e.category,
        }})
    }

    fn error_event(e: &ApiError) -> Bytes {
        sse::data(&Self::error_body(e))
    }
}

/// OpenAI's `error.type` for an error.
fn error_type(e: &ApiError) -> &'static str {
    match e.status.as_u16() {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 if e.category == "quota_exhausted" => "insufficient_quota",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// Parses a `POST /v1/chat/completions` body.
fn parse_request(body: &Value) -> Result<Turn, ApiError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("`model` is required"))?;
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("`messages` must be an array"))?;
    let mut req = Turn {
        model: model.to_owned(),
        ..Turn::default()
    };
    let mut system = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(plain_text(content)),
            "user" => req.messages.push(Message {
                role: Role::User,
                parts: user_parts(content, i)?,
            }),
            "assistant" => {
                let mut parts = Vec::new();
                if let Some(r) = m.get("reasoning_content").and_then(Value::as_str) {
                    parts.push(Part::Thinking(r.to_owned()));
                }
                let text = plain_text(content);
                if !text.is_empty() {
                    parts.push(Part::Text(text));
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = call.get("function").unwrap_or(&Value::Null);
                    parts.push(Part::ToolCall(ToolCall {
                        id: str_of(call, "id"),
                        name: str_of(f, "name"),
                        arguments: f
                            .get("arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("{}")
                            .to_owned(),
                    }));
                }
                req.messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" => req.messages.push(Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult(ToolOutput {
                    call_id: str_of(m, "tool_call_id"),
                    content: plain_text(content),
                    is_error: false,
                })],
            }),
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: unsupported role {other:?}"
                )));
            }
        }
    }
    req.system = Some(system.join("\n\n")).filter(|s| !s.is_empty());
    for t in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = t
            .get("function")
            .ok_or_else(|| ApiError::bad_request("tools[].function is required"))?;
        req.tools.push(ToolSpec {
            name: str_of(f, "name"),
            description: str_of(f, "description"),
            input_schema: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    req.tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    req.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    // stream_options is read here and never forwarded: the upstream has no such parameter.
    req.include_usage = req.stream
        && body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let effort = body.get("reasoning_effort").and_then(Value::as_str);
    req.thinking = effort.is_some_and(|e| e != "none") || model.contains("thinking");
    Ok(req)
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Text of a content that is a string or an array of text parts.
fn plain_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn user_parts(content: &Value, i: usize) -> Result<Vec<Part>, ApiError> {
    match content {
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => {
            let mut parts = Vec::new();
            for p in items {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(Part::Text(str_of(p, "text"))),
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        parts.push(Part::Image(data_url(url).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "messages[{i}]: images must be base64 data URLs"
                            ))
                        })?));
                    }
                    _ => {}
                }
            }
            Ok(parts)
        }
        _ => Ok(Vec::new()),
    }
}

/// Decodes `data:<mime>;base64,<data>`.
pub fn data_url(url: &str) -> Option<Image> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(Image {
        mime: mime.to_owned(),
        data: Bytes::from(data),
    })
}

/// OpenAI's `usage` object from upstream counters. Both count cached prompt tokens inside the
/// prompt total, so `prompt_tokens` is Cursor's `input_tokens` as is.
pub fn usage_json(u: &TokenUsage) -> Value {
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
            TurnItem::Text(t) => self.chunk(json!({"content": t}), None, out),
            TurnItem::Thinking(t) => self.chunk(json!({"reasoning_content": t}), None, out),
            TurnItem::ThinkingDone => {}
            TurnItem::ToolCall(c) => {
                let index = self.tool_index;
                self.tool_index += 1;
                let call = json!({"index": index, "id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}});
                self.chunk(json!({"tool_calls": [call]}), None, out);
            }
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
            TurnItem::Text(t) => text.push_str(&t),
            TurnItem::Thinking(t) => reasoning.push_str(&t),
            TurnItem::ThinkingDone => {}
            TurnItem::ToolCall(c) => calls.push(json!({"id": c.id, "type": "function",
                                                       "function": {"name": c.name, "arguments": c.arguments}})),
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
    Err(ApiError::new(
        http::StatusCode::BAD_GATEWAY,
        "internal",
        "the upstream turn ended without a result",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use std::time::Duration;

    #[test]
    fn error_shapes_and_retry_after() {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
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
        let r = parse_request(&body).unwrap();
        assert_eq!(r.system.as_deref(), Some("be brief"));
        assert!(r.stream && r.include_usage && r.thinking);
        assert_eq!(r.tool_choice, ToolChoice::Named("get".into()));
        assert_eq!(r.tools[0].name, "get");
        assert!(
            matches!(&r.messages[0].parts[1], Part::Image(i) if i.mime == "image/png" && &i.data[..] == b"hi")
        );
        assert_eq!(r.trailing_tool_results()[0].content, "42");
        assert!(parse_request(&json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})).is_err());
        assert!(parse_request(&json!({"messages": []})).is_err());
    }

    #[test]
    fn stream_renders_tool_calls_usage_and_done() {
        let mut r = StreamRender::new("chatcmpl-1".into(), "m".into(), true);
        let mut out = Vec::new();
        assert!(!r.item(
            TurnItem::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{}".into()
            }),
            &mut out
        ));
        let usage = TokenUsage {
            input_tokens: 3,
            output_tokens: 5,
            cache_read_tokens: 2,
            ..TokenUsage::default()
        };
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
