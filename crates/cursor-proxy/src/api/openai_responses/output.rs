//! The response object and its streamed events, built by one [`Builder`] for both the streamed
//! and the whole response, so both carry the same content.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::store;
use crate::api::error::ApiError;
use crate::api::sse::{self, Render};
use crate::engine::TurnItem;
use crate::engine::turn::{Message, Part, Role, Turn};
use cursor_connect::{Event, ToolCall, Usage};

/// The Responses API's `usage` from upstream counters (input includes cached tokens, as
/// Cursor's does).
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    })
}

/// The item being streamed.
#[derive(Debug)]
enum Open {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
}

/// Builds the output items and the events announcing them.
#[derive(Debug)]
pub(super) struct Builder {
    id: String,
    model: String,
    created: u64,
    echo: Value,
    namespaces: Vec<(String, String, String)>,
    /// The request's conversation, kept when the response is stored.
    conversation: Option<Vec<Message>>,
    output: Vec<Value>,
    answer: Vec<Part>,
    open: Option<Open>,
    seq: u64,
}

impl Builder {
    /// A builder for response `id` to `turn`.
    pub(super) fn new(id: String, turn: &Turn) -> Self {
        let echo = turn.echo.clone().unwrap_or_else(|| json!({}));
        let store = echo.get("store").and_then(Value::as_bool).unwrap_or(true);
        Self {
            id,
            model: turn.model.clone(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            echo,
            namespaces: turn.tool_namespaces.clone(),
            conversation: store.then(|| turn.messages.clone()),
            output: Vec::new(),
            answer: Vec::new(),
            open: None,
            seq: 0,
        }
    }

    fn event(&mut self, out: &mut Vec<u8>, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        sse::push_event(out, kind, &body);
    }

    /// The response object in state `status`.
    pub(super) fn response(
        &self,
        status: &str,
        usage: Option<&Usage>,
        error: Option<&ApiError>,
    ) -> Value {
        let mut r = json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "error": error.map(|e| json!({"code": super::error_code(e), "message": e.message})),
            "incomplete_details": null, "model": self.model, "output": self.output,
            "usage": usage.map(usage_json),
        });
        if let (Value::Object(r), Value::Object(echo)) = (&mut r, &self.echo) {
            for (k, v) in echo {
                r.insert(k.clone(), v.clone());
            }
        }
        r
    }

    /// `response.created` and `response.in_progress`.
    pub(super) fn start(&mut self, out: &mut Vec<u8>) {
        let r = self.response("in_progress", None, None);
        self.event(out, "response.created", json!({"response": r}));
        self.event(out, "response.in_progress", json!({"response": r}));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let index = self.output.len();
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { id, text }) => {
                let part = json!({"type": "summary_text", "text": text});
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                let mut done = at.clone();
                done["text"] = json!(text);
                self.event(out, "response.reasoning_summary_text.done", done);
                let mut done = at;
                done["part"] = part.clone();
                self.event(out, "response.reasoning_summary_part.done", done);
                let item = json!({"id": id, "type": "reasoning", "summary": [part]});
                self.answer.push(Part::Thinking(text));
                self.item_done(out, item);
            }
            Some(Open::Message { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = json!(text);
                done["logprobs"] = json!([]);
                self.event(out, "response.output_text.done", done);
                let mut done = at;
                done["part"] = part.clone();
                self.event(out, "response.content_part.done", done);
                let item = json!({"id": id, "type": "message", "status": "completed",
                                  "role": "assistant", "content": [part]});
                self.answer.push(Part::Text(text));
                self.item_done(out, item);
            }
        }
    }

    fn item_done(&mut self, out: &mut Vec<u8>, item: Value) {
        let index = self.output.len();
        self.event(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let index = self.output.len();
            let id = format!("rs_{}_{index}", self.id);
            let item = json!({"id": id, "type": "reasoning", "summary": []});
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            let part = json!({"type": "summary_text", "text": ""});
            self.event(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
            );
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        if let Some(Open::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let body =
                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta});
            self.event(out, "response.reasoning_summary_text.delta", body);
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            let index = self.output.len();
            let id = format!("msg_{}_{index}", self.id);
            let item = json!({"id": id, "type": "message", "status": "in_progress",
                              "role": "assistant", "content": []});
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            self.event(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
            );
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        if let Some(Open::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let body = json!({"item_id": id, "output_index": index, "content_index": 0,
                              "delta": delta, "logprobs": []});
            self.event(out, "response.output_text.delta", body);
        }
    }

    fn call(&mut self, c: ToolCall, out: &mut Vec<u8>) {
        self.close(out);
        let index = self.output.len();
        let id = format!("fc_{}", c.id);
        let mut item = json!({"id": id, "type": "function_call", "status": "in_progress",
                              "call_id": c.id, "name": c.name, "arguments": ""});
        if let Some((_, ns, name)) = self.namespaces.iter().find(|(flat, _, _)| *flat == c.name) {
            item["namespace"] = json!(ns);
            item["name"] = json!(name);
        }
        self.event(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item.clone()}),
        );
        self.event(
            out,
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": c.arguments}),
        );
        self.event(
            out,
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": c.arguments, "name": item["name"]}),
        );
        item["status"] = json!("completed");
        item["arguments"] = json!(c.arguments);
        self.answer.push(Part::ToolCall(c));
        self.item_done(out, item);
    }

    /// Adds one engine item; returns the final response object once the turn is over (or the
    /// error it failed with).
    pub(super) fn item(
        &mut self,
        item: TurnItem,
        out: &mut Vec<u8>,
    ) -> Option<Result<Value, ApiError>> {
        match item {
            TurnItem::Event(Event::TextDelta(t)) => self.text(&t, out),
            TurnItem::Event(Event::ThinkingDelta(t)) => self.reasoning(&t, out),
            TurnItem::Event(Event::ThinkingCompleted) => {
                if matches!(self.open, Some(Open::Reasoning { .. })) {
                    self.close(out);
                }
            }
            TurnItem::Event(Event::ToolCall(c)) => self.call(c, out),
            TurnItem::Event(_) => {}
            TurnItem::Done { stop: _, usage } => {
                self.close(out);
                if let Some(mut conv) = self.conversation.take() {
                    conv.push(Message {
                        role: Role::Assistant,
                        parts: std::mem::take(&mut self.answer),
                    });
                    store::put(&self.id, conv);
                }
                let r = self.response("completed", Some(&usage), None);
                self.event(out, "response.completed", json!({"response": r}));
                return Some(Ok(r));
            }
            TurnItem::Failed(e) => {
                self.close(out);
                let r = self.response("failed", None, Some(&e));
                self.event(out, "response.failed", json!({"response": r}));
                return Some(Err(e));
            }
        }
        None
    }
}

/// Streaming renderer over a response builder.
#[derive(Debug)]
pub struct StreamRender(Builder);

impl StreamRender {
    /// A renderer for response `id` to `turn`.
    pub fn new(id: String, turn: &Turn) -> Self {
        Self(Builder::new(id, turn))
    }
}

impl Render for StreamRender {
    fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.0.start(&mut out);
        out
    }

    fn item(&mut self, item: TurnItem, out: &mut Vec<u8>) -> bool {
        self.0.item(item, out).is_some()
    }
}

/// A whole turn as a response object (or the error it ended with).
pub(super) fn complete(id: &str, turn: &Turn, items: Vec<TurnItem>) -> Result<Value, ApiError> {
    let mut b = Builder::new(id.to_owned(), turn);
    let mut sink = Vec::new();
    for item in items {
        if let Some(done) = b.item(item, &mut sink) {
            return done;
        }
        sink.clear();
    }
    Err(ApiError::no_result())
}
