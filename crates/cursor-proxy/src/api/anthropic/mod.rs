//! Anthropic `messages`: request parsing and the full SSE event sequence.

mod request;

use bytes::Bytes;
use serde_json::{Value, json};

use http::{HeaderMap, HeaderValue, StatusCode};

use self::request::MessagesRequest;
use super::error::ApiError;
use super::sse::{self, Render};
use super::{Dialect, decode_body};
use crate::engine::turn::Turn;
use crate::engine::{Stop, TurnItem};
use cursor_connect::{Event, ToolCall, Usage};

/// Anthropic messages (`POST /v1/messages`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl Dialect for Anthropic {
    const NAME: &'static str = "anthropic";
    const MODEL_REFUSED: StatusCode = StatusCode::FORBIDDEN;
    const ID_PREFIX: &'static str = "msg_";
    type Stream = StreamRender;

    fn parse(body: &[u8], headers: &HeaderMap) -> Result<Turn, ApiError> {
        let session = headers
            .get("x-claude-code-session-id")
            .and_then(|v| v.to_str().ok());
        decode_body::<MessagesRequest>(body)?.into_turn(session)
    }

    fn stream(id: String, turn: &Turn) -> StreamRender {
        StreamRender::new(id, turn.model.clone())
    }

    fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>) -> Result<Value, ApiError> {
        complete(id, &turn.model, items)
    }

    fn error_body(e: &ApiError) -> Value {
        json!({"type": "error", "error": {"type": error_type(e), "message": e.message}})
    }

    fn error_event(e: &ApiError) -> Bytes {
        sse::event("error", &Self::error_body(e))
    }

    fn error_headers(e: &ApiError, headers: &mut HeaderMap) {
        if e.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert("x-should-retry", HeaderValue::from_static("true"));
        }
    }
}

/// An estimate of a request's input tokens: about four characters per token over the system
/// text, the messages' text and tool traffic, and the tool definitions, plus a few per message.
/// Cursor has no counting call; this is what `count_tokens` answers, marked as an estimate.
pub fn estimate_tokens(turn: &Turn) -> u64 {
    use crate::engine::turn::Part;
    let mut chars = turn.system.as_ref().map_or(0, String::len);
    for m in &turn.messages {
        chars += 16;
        for p in &m.parts {
            chars += match p {
                Part::Text(t) | Part::Thinking(t) => t.len(),
                Part::Image(_) => 6_000,
                Part::ToolCall(c) => c.name.len() + c.arguments.len(),
                Part::ToolResult { result, .. } => result.content().len(),
            };
        }
    }
    for t in &turn.tools {
        chars += t.name.len() + t.description.len() + t.input_schema.to_string().len();
    }
    (chars as u64).div_ceil(4).max(1)
}

/// Anthropic's `error.type` for an error.
fn error_type(e: &ApiError) -> &'static str {
    match e.status.as_u16() {
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

/// Anthropic's `usage` object from upstream counters. Anthropic's `input_tokens` excludes cache
/// reads and writes, which it reports separately; Cursor's includes them.
pub fn usage_json(u: &Usage) -> Value {
    let uncached = u
        .input_tokens
        .saturating_sub(u.cache_read_tokens)
        .saturating_sub(u.cache_write_tokens);
    json!({
        "input_tokens": uncached,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    })
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn => "end_turn",
        Stop::ToolUse => "tool_use",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// Streaming renderer: `message_start`, content blocks, `message_delta`, `message_stop`.
#[derive(Debug)]
pub struct StreamRender {
    id: String,
    model: String,
    next_index: usize,
    open: Option<Open>,
}

impl StreamRender {
    /// A renderer for message `id` from `model`.
    pub fn new(id: String, model: String) -> Self {
        Self {
            id,
            model,
            next_index: 0,
            open: None,
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(kind) = self.open.take() {
            let index = self.next_index - 1;
            if kind == Open::Thinking {
                // The SDKs expect a signature on thinking blocks; Cursor's reasoning has none.
                sse::push_event(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": ""}}),
                );
            }
            sse::push_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn ensure(&mut self, kind: Open, out: &mut Vec<u8>) -> usize {
        if self.open != Some(kind) {
            self.close(out);
            let block = match kind {
                Open::Text => json!({"type": "text", "text": ""}),
                Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            };
            sse::push_event(
                out,
                "content_block_start",
                &json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
            );
            self.next_index += 1;
            self.open = Some(kind);
        }
        self.next_index - 1
    }

    /// A delta for a text or thinking block, opening the block first if needed.
    fn delta(&mut self, kind: Open, delta: Value, out: &mut Vec<u8>) {
        let index = self.ensure(kind, out);
        sse::push_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    /// A whole `tool_use` block: start, the arguments as one `input_json_delta`, stop.
    fn tool_use(&mut self, c: &ToolCall, out: &mut Vec<u8>) {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        sse::push_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}}),
        );
        if !c.arguments.is_empty() {
            sse::push_event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": c.arguments}}),
            );
        }
        sse::push_event(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }
}

impl Render for StreamRender {
    fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        sse::push_event(
            &mut out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": usage_json(&Usage::default()),
            }}),
        );
        out
    }

    fn item(&mut self, item: TurnItem, out: &mut Vec<u8>) -> bool {
        match item {
            TurnItem::Event(Event::TextDelta(t)) => {
                self.delta(Open::Text, json!({"type": "text_delta", "text": t}), out);
            }
            TurnItem::Event(Event::ThinkingDelta(t)) => {
                let delta = json!({"type": "thinking_delta", "thinking": t});
                self.delta(Open::Thinking, delta, out);
            }
            TurnItem::Event(Event::ThinkingCompleted) => {
                if self.open == Some(Open::Thinking) {
                    self.close(out);
                }
            }
            TurnItem::Event(Event::ToolCall(c)) => self.tool_use(&c, out),
            TurnItem::Event(_) => {}
            TurnItem::Done { stop, usage } => {
                self.close(out);
                sse::push_event(
                    out,
                    "message_delta",
                    &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(stop), "stop_sequence": null}, "usage": usage_json(&usage)}),
                );
                sse::push_event(out, "message_stop", &json!({"type": "message_stop"}));
                return true;
            }
            TurnItem::Failed(e) => {
                out.extend_from_slice(&Anthropic::error_event(&e));
                return true;
            }
        }
        false
    }
}

/// A whole turn as a `message` object (or the error it ended with).
fn complete(id: &str, model: &str, items: Vec<TurnItem>) -> Result<Value, ApiError> {
    // Text is appended in place (re-joining a JSON string per delta is quadratic in the answer).
    let mut blocks: Vec<(&'static str, String)> = Vec::new();
    let mut append = |kind: &'static str, t: &str| match blocks.last_mut() {
        Some((k, text)) if *k == kind => text.push_str(t),
        _ => blocks.push((kind, t.to_owned())),
    };
    let mut calls = Vec::new();
    for item in items {
        match item {
            TurnItem::Event(Event::TextDelta(t)) => append("text", &t),
            TurnItem::Event(Event::ThinkingDelta(t)) => append("thinking", &t),
            TurnItem::Event(Event::ThinkingCompleted) => {}
            TurnItem::Event(Event::ToolCall(c)) => calls.push(c),
            TurnItem::Event(_) => {}
            TurnItem::Failed(e) => return Err(e),
            TurnItem::Done { stop, usage } => {
                let mut content: Vec<Value> = blocks
                    .drain(..)
                    .map(|(kind, text)| match kind {
                        "thinking" => {
                            json!({"type": "thinking", "thinking": text, "signature": ""})
                        }
                        _ => json!({"type": kind, "text": text}),
                    })
                    .collect();
                for c in calls {
                    let input: Value =
                        serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                    content.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                return Ok(json!({
                    "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
                    "stop_reason": stop_reason(stop), "stop_sequence": null, "usage": usage_json(&usage),
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
    use cursor_connect::classify::Category;

    fn parse(body: &Value) -> Result<Turn, ApiError> {
        Anthropic::parse(body.to_string().as_bytes(), &HeaderMap::new())
    }

    #[test]
    fn unsupported_values_are_refused_naming_the_field() {
        let refused = |body: Value| {
            let e = parse(&body).unwrap_err();
            assert_eq!(e.status, 400, "{}", e.message);
            assert_eq!(
                Anthropic::error_body(&e)["error"]["type"],
                "invalid_request_error"
            );
            e.message
        };
        let msgs = |m: Value| json!({"model": "m", "max_tokens": 5, "messages": [m]});
        assert!(
            refused(msgs(json!({"role": "tool", "content": "x"})))
                .starts_with("messages[0].role: unknown variant `tool`")
        );
        let url_image =
            json!({"type": "image", "source": {"type": "url", "url": "http://x/y.png"}});
        assert_eq!(
            refused(msgs(
                json!({"role": "user", "content": [{"type": "text", "text": "see"}, url_image]})
            )),
            "messages[0].content[1].source.type: images must be base64 sources"
        );
        assert!(
            refused(msgs(
                json!({"role": "user", "content": [{"type": "video"}]})
            ))
            .starts_with("messages[0].content[0].type: unknown variant `video`")
        );
        let mut body = msgs(json!({"role": "user", "content": "x"}));
        body["tool_choice"] = json!({"type": "sometimes"});
        assert!(refused(body.clone()).starts_with("tool_choice.type: unknown variant `sometimes`"));
        body["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
        body["thinking"] = json!({"type": "always"});
        assert!(refused(body.clone()).starts_with("thinking.type: unknown variant `always`"));
        // Unknown fields and server-side history blocks are tolerated.
        body["thinking"] = json!({"type": "disabled"});
        body["top_k"] = json!(3);
        body["messages"] = json!([{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}, {"type": "text", "text": "a", "citations": []}]},
                                  {"role": "user", "content": [{"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]}]);
        let t = parse(&body).unwrap();
        assert_eq!(t.messages[0].parts, vec![Part::Text("a".into())]);
        assert!(!t.thinking);
    }

    #[test]
    fn parses_blocks_tools_thinking_and_session() {
        let body = json!({
            "model": "m", "max_tokens": 100, "stream": true,
            "system": [{"type": "text", "text": "sys"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "user_x_account_y_session_abc"},
            "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web"}],
            "tool_choice": {"type": "any"},
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}], "is_error": true}]},
            ]
        });
        let r = parse(&body).unwrap();
        assert_eq!(r.system.as_deref(), Some("sys"));
        assert!(r.thinking && r.stream);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tool_choice, ToolChoice::Required);
        assert_eq!(r.client_session.as_deref(), Some("abc"));
        let res = r.trailing_tool_results();
        assert_eq!(
            (res[0].0.as_str(), res[0].1.content(), res[0].1.is_error()),
            ("t1", "ok", true)
        );
        assert!(
            matches!(&r.messages[1].parts[0], Part::ToolCall(c) if c.arguments == r#"{"a":1}"#)
        );
    }

    #[test]
    fn error_shape_and_headers() {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Category::RateLimited,
            "slow down",
        );
        e.retry_after = Some(std::time::Duration::from_millis(1500));
        let body = Anthropic::error_body(&e);
        assert_eq!(
            (body["type"].as_str(), body["error"]["type"].as_str()),
            (Some("error"), Some("rate_limit_error"))
        );
        assert_eq!(
            Anthropic::error_response(&e).headers()[http::header::RETRY_AFTER],
            "2"
        );
        assert!(Anthropic::error_event(&e).starts_with(b"event: error\ndata: {"));
        let busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Category::UpstreamUnavailable,
            "busy",
        );
        assert_eq!(
            Anthropic::error_response(&busy).headers()["x-should-retry"],
            "true"
        );
    }

    #[test]
    fn complete_merges_deltas_in_linear_time() {
        // 100k deltas of 16 bytes: re-joining the text per delta copies ~80 GB, appending 1.6 MB.
        const N: usize = 100_000;
        let mut items = vec![
            TurnItem::Event(Event::ThinkingDelta("th".into())),
            TurnItem::Event(Event::ThinkingDelta("ink".into())),
            TurnItem::Event(Event::ThinkingCompleted),
        ];
        items.extend((0..N).map(|_| TurnItem::Event(Event::TextDelta("0123456789abcdef".into()))));
        items.push(TurnItem::Done {
            stop: Stop::EndTurn,
            usage: Usage::default(),
        });
        let started = std::time::Instant::now();
        let v = complete("msg_1", "m", items).unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            v["content"][0],
            json!({"type": "thinking", "thinking": "think", "signature": ""})
        );
        assert_eq!(v["content"][1]["type"], "text");
        assert_eq!(v["content"][1]["text"].as_str().map(str::len), Some(16 * N));
        assert_eq!(v["content"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn event_sequence_has_every_block_and_the_end() {
        let mut r = StreamRender::new("msg_1".into(), "m".into());
        let mut out = r.start();
        for item in [
            TurnItem::Event(Event::ThinkingDelta("hmm".into())),
            TurnItem::Event(Event::ThinkingCompleted),
            TurnItem::Event(Event::TextDelta("a".into())),
            TurnItem::Event(Event::TextDelta("b".into())),
            TurnItem::Event(Event::ToolCall(ToolCall::new("t", "f", "{\"x\":1}"))),
        ] {
            assert!(!r.item(item, &mut out));
        }
        assert!(r.item(
            TurnItem::Done {
                stop: Stop::ToolUse,
                usage: {
                    let mut u = Usage::default();
                    u.output_tokens = 7;
                    u
                }
            },
            &mut out
        ));
        let text = String::from_utf8(out).unwrap();
        let events: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            events,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert!(
            text.contains("\"stop_reason\":\"tool_use\"") && text.contains("\"output_tokens\":7")
        );
    }
}
