//! The API-neutral turn every dialect parses into, in `cursor-connect`'s vocabulary, and the
//! [`RunRequest`] it becomes upstream (the latest turn on a checkpoint, or with the earlier
//! messages as [`RunRequest::history`] when no checkpoint applies).

use std::fmt::Write as _;

use bytes::Bytes;
use cursor_connect::{
    HistoryMessage, ImageInput, RunRequest, ToolCall, ToolDefinition, ToolResult,
};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (tool results in Anthropic's API are user messages too).
    User,
    /// The model.
    Assistant,
    /// An OpenAI `tool` message.
    Tool,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image.
    Image(ImageInput),
    /// Reasoning the model showed earlier.
    Thinking(String),
    /// A call the model made.
    ToolCall(ToolCall),
    /// A result the caller sends back.
    ToolResult {
        /// The call it answers.
        call_id: String,
        /// The result.
        result: ToolResult,
    },
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content.
    pub parts: Vec<Part>,
}

/// How the caller constrains tool use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// Model decides.
    #[default]
    Auto,
    /// No tools this turn.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Named(String),
}

/// A chat request, whichever API it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Turn {
    /// Model requested.
    pub model: String,
    /// System prompt (all system/developer parts joined).
    pub system: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools offered.
    pub tools: Vec<ToolDefinition>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// Stream the answer.
    pub stream: bool,
    /// Add usage to the stream's last chunk (OpenAI `stream_options.include_usage`).
    pub include_usage: bool,
    /// Visible reasoning requested.
    pub thinking: bool,
    /// A client-provided stable session id (Claude Code's session, the Responses API's
    /// `prompt_cache_key`).
    pub client_session: Option<String>,
    /// At most one tool call per response (OpenAI `parallel_tool_calls: false`): further calls
    /// of the same upstream turn are held back and shown one per response, after each result.
    pub one_tool_call: bool,
    /// Request fields the dialect echoes back in its response object (the Responses API's
    /// `instructions`, `tools`, `metadata`, ...); `None` for dialects that echo nothing.
    pub echo: Option<serde_json::Value>,
    /// Flat tool names that stand for a function inside a namespace group (the Responses
    /// API's `namespace` tools), as `(flat name, namespace, name)`.
    pub tool_namespaces: Vec<(String, String, String)>,
    /// The account group the caller's key is pinned to: only its accounts take the turn.
    pub account_group: Option<String>,
}

impl Turn {
    /// Text of the first user message (for the session key).
    pub fn first_user_text(&self) -> String {
        self.messages
            .iter()
            .find(|m| m.role == Role::User && m.parts.iter().any(|p| matches!(p, Part::Text(_))))
            .map(|m| text_of(&m.parts))
            .unwrap_or_default()
    }

    /// Index of the first message after the last assistant message.
    fn latest_turn_start(&self) -> usize {
        self.messages
            .iter()
            .rposition(|m| m.role == Role::Assistant)
            .map_or(0, |i| i + 1)
    }

    /// Tool results the request ends with (they answer the last assistant message's calls),
    /// by call id.
    pub fn trailing_tool_results(&self) -> Vec<(String, ToolResult)> {
        let start = self.latest_turn_start();
        if start == 0 {
            return Vec::new();
        }
        self.messages[start..]
            .iter()
            .flat_map(|m| &m.parts)
            .filter_map(|p| match p {
                Part::ToolResult { call_id, result } => Some((call_id.clone(), result.clone())),
                _ => None,
            })
            .collect()
    }

    /// Text the caller added after the tool results, if any.
    pub fn trailing_user_text(&self) -> String {
        let start = self.latest_turn_start();
        text_of(self.messages[start..].iter().flat_map(|m| &m.parts))
    }

    /// Images in the latest turn.
    pub fn latest_images(&self) -> Vec<ImageInput> {
        let start = self.latest_turn_start();
        self.messages[start..]
            .iter()
            .flat_map(|m| &m.parts)
            .filter_map(|p| match p {
                Part::Image(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    /// The user text for a turn that resumes a saved checkpoint: only what is new.
    pub fn latest_turn_text(&self) -> String {
        render(&self.messages[self.latest_turn_start()..])
    }

    /// The messages before the latest turn as `cursor-connect` history.
    pub fn history(&self) -> Vec<HistoryMessage> {
        history(&self.messages[..self.latest_turn_start()])
    }

    /// The upstream request for this turn in conversation `conversation_id`. With the
    /// conversation's `checkpoint` only the latest turn goes up; without one the earlier
    /// messages go along as [`RunRequest::history`] (flattened into the user text by
    /// `cursor-connect`; a single plain user message goes through unchanged).
    pub fn run_request(&self, conversation_id: &str, checkpoint: Option<Bytes>) -> RunRequest {
        let mut req = RunRequest::new(self.model.clone(), self.latest_turn_text())
            .conversation_id(conversation_id)
            .thinking(self.thinking)
            .tools(self.effective_tools());
        if let Some(s) = self.effective_system() {
            req = req.system_prompt(s);
        }
        req = match checkpoint {
            Some(cp) => req.checkpoint(cp),
            None => req.history(self.history()),
        };
        for image in self.latest_images() {
            req = req.image(image);
        }
        req
    }

    /// The system prompt with the tool-choice constraint spelled out (Cursor has no such field).
    pub fn effective_system(&self) -> Option<String> {
        let hint = match &self.tool_choice {
            ToolChoice::Required if !self.tools.is_empty() => {
                Some("You must call one of the provided tools in this turn.".to_owned())
            }
            ToolChoice::Named(n) => Some(format!("You must call the tool `{n}` in this turn.")),
            _ => None,
        };
        match (&self.system, hint) {
            (s, None) => s.clone(),
            (None, Some(h)) => Some(h),
            (Some(s), Some(h)) => Some(format!("{s}\n\n{h}")),
        }
    }

    /// Tools after applying the tool choice.
    pub fn effective_tools(&self) -> Vec<ToolDefinition> {
        match &self.tool_choice {
            ToolChoice::None => Vec::new(),
            ToolChoice::Named(n) => self
                .tools
                .iter()
                .filter(|t| &t.name == n)
                .cloned()
                .collect(),
            _ => self.tools.clone(),
        }
    }
}

fn text_of<'a>(parts: impl IntoIterator<Item = &'a Part>) -> String {
    let mut out = String::new();
    for p in parts {
        if let Part::Text(t) = p {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
    }
    out
}

/// Earlier messages as `cursor-connect` history (thinking is not replayed; images are named).
fn history(messages: &[Message]) -> Vec<HistoryMessage> {
    let mut out = Vec::new();
    for m in messages {
        for p in &m.parts {
            let item = match (m.role, p) {
                (_, Part::Thinking(_)) => continue,
                (Role::Assistant, Part::Text(t)) => HistoryMessage::Assistant(t.clone()),
                (_, Part::Text(t)) => HistoryMessage::User(t.clone()),
                (_, Part::Image(i)) => HistoryMessage::User(format!("[image {}]", i.mime)),
                (_, Part::ToolCall(c)) => HistoryMessage::ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                },
                (_, Part::ToolResult { call_id, result }) => HistoryMessage::ToolResult {
                    id: call_id.clone(),
                    name: tool_name(messages, call_id).to_owned(),
                    content: result.content().to_owned(),
                    is_error: result.is_error(),
                },
            };
            out.push(item);
        }
    }
    out
}

/// The name of the tool call `id` answers, if the history has it.
fn tool_name<'a>(messages: &'a [Message], id: &str) -> &'a str {
    messages
        .iter()
        .flat_map(|m| &m.parts)
        .find_map(|p| match p {
            Part::ToolCall(c) if c.id == id => Some(c.name.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// Renders messages as a readable transcript; a lone user text renders as itself.
fn render(messages: &[Message]) -> String {
    if let [m] = messages
        && m.role == Role::User
        && m.parts
            .iter()
            .all(|p| matches!(p, Part::Text(_) | Part::Image(_)))
    {
        return text_of(&m.parts);
    }
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::Tool => "Tool",
        };
        for p in &m.parts {
            // Writing into a String cannot fail.
            let _ = match p {
                Part::Text(t) => writeln!(out, "{who}: {t}"),
                Part::Image(i) => writeln!(out, "{who}: [image {}]", i.mime),
                Part::Thinking(_) => Ok(()),
                Part::ToolCall(c) => writeln!(
                    out,
                    "Assistant called tool {} (id {}) with {}",
                    c.name, c.id, c.arguments
                ),
                Part::ToolResult { call_id, result } => {
                    let status = if result.is_error() { "error" } else { "result" };
                    writeln!(
                        out,
                        "Tool {status} for call {call_id}: {}",
                        result.content()
                    )
                }
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: Role, t: &str) -> Message {
        Message {
            role,
            parts: vec![Part::Text(t.into())],
        }
    }

    fn tool_round() -> Turn {
        Turn {
            model: "m".into(),
            messages: vec![
                text(Role::User, "weather?"),
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::ToolCall(ToolCall::new("c1", "get", "{}"))],
                },
                Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: "c1".into(),
                        result: ToolResult::text("sunny"),
                    }],
                },
            ],
            ..Turn::default()
        }
    }

    #[test]
    fn single_message_passes_through() {
        let r = Turn {
            messages: vec![text(Role::User, "hi")],
            ..Turn::default()
        };
        assert_eq!(r.run_request("c", None).effective_user_text(), "hi");
        assert_eq!(r.latest_turn_text(), "hi");
        assert!(r.trailing_tool_results().is_empty());
        assert_eq!(r.first_user_text(), "hi");
    }

    #[test]
    fn tool_results_are_found_and_flattened() {
        let r = tool_round();
        assert_eq!(r.trailing_tool_results()[0].1.content(), "sunny");
        let flat = r.run_request("c", None).effective_user_text();
        // The lower crate's transcript format, not a second one of our own.
        let history = [
            HistoryMessage::User("weather?".into()),
            HistoryMessage::ToolCall {
                id: "c1".into(),
                name: "get".into(),
                arguments: "{}".into(),
            },
        ];
        assert_eq!(
            flat,
            cursor_connect::flatten_history(&history, &r.latest_turn_text())
        );
        assert!(
            flat.contains("weather?") && flat.contains("sunny"),
            "{flat}"
        );
        let mut answered = tool_round();
        answered.messages.push(Message {
            role: Role::Assistant,
            parts: vec![Part::Text("sunny it is".into())],
        });
        answered.messages.push(text(Role::User, "thanks"));
        let flat = answered.run_request("c", None).effective_user_text();
        let resumed = answered.run_request("c", Some(Bytes::from_static(b"cp")));
        assert_eq!(
            resumed.effective_user_text(),
            "thanks",
            "a checkpoint carries the history"
        );
        assert!(
            flat.contains("[tool result get id=c1]\nsunny") && flat.ends_with("thanks"),
            "{flat}"
        );
        assert!(
            r.latest_turn_text()
                .contains("Tool result for call c1: sunny")
        );
    }

    #[test]
    fn tool_choice_shapes_tools_and_system() {
        let spec = |n: &str| ToolDefinition::new(n, "", serde_json::json!({}));
        let mut r = Turn {
            tools: vec![spec("a"), spec("b")],
            ..Turn::default()
        };
        r.tool_choice = ToolChoice::None;
        assert!(r.effective_tools().is_empty());
        r.tool_choice = ToolChoice::Named("b".into());
        assert_eq!(r.effective_tools().len(), 1);
        assert!(r.effective_system().unwrap().contains("`b`"));
    }
}
