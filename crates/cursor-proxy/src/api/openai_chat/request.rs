//! The `POST /v1/chat/completions` body as OpenAI documents it, and its translation into the
//! neutral [`Turn`]. Fields this proxy does not use are tolerated (and ignored); values it cannot
//! honour are refused with an error naming the field.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::body::TextOr;
use crate::api::error::ApiError;
use crate::engine::turn::{Message, Part, Role, ToolChoice, Turn};
use cursor_connect::{ImageInput, ToolCall, ToolDefinition, ToolResult};

/// A chat completions request.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    tool_choice: Option<ChatToolChoice>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    reasoning_effort: Option<ReasoningEffort>,
}

/// One message. Flat rather than tagged by role, so a bad value deep inside is reported with
/// its full path.
#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: ChatRole,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<AssistantToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChatRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// A message's content: a string or a list of parts.
type Content = TextOr<ContentPart>;

/// One content part.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

/// `image_url`: an object with `url` (the documented form) or the URL itself.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Object { url: String },
    Url(String),
}

#[derive(Debug, Deserialize)]
struct AssistantToolCall {
    id: String,
    function: FunctionCall,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: Option<String>,
}

/// A tool offered to the model.
#[derive(Debug, Deserialize)]
struct Tool {
    #[serde(rename = "type", default)]
    _kind: ToolKind,
    function: FunctionDef,
}

/// The only tool type Cursor can run for the caller.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolKind {
    #[default]
    Function,
}

#[derive(Debug, Deserialize)]
struct FunctionDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// `tool_choice`: `"none" | "auto" | "required"` or `{"type": "function", "function": {"name"}}`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
struct ChatToolChoice(ToolChoice);

impl TryFrom<Value> for ChatToolChoice {
    type Error = String;

    fn try_from(v: Value) -> Result<Self, String> {
        let choice = match &v {
            Value::String(s) if s == "none" => ToolChoice::None,
            Value::String(s) if s == "auto" => ToolChoice::Auto,
            Value::String(s) if s == "required" => ToolChoice::Required,
            Value::Object(o) => match o.get("function").and_then(|f| f.get("name")) {
                Some(Value::String(name)) => ToolChoice::Named(name.clone()),
                _ => {
                    return Err(
                        "expected {\"type\": \"function\", \"function\": {\"name\": ...}}".into(),
                    );
                }
            },
            other => {
                return Err(format!(
                    "unsupported value {other}, expected \"none\", \"auto\", \"required\" or a named function"
                ));
            }
        };
        Ok(Self(choice))
    }
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// `reasoning_effort`; anything but `none` asks for visible reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

impl ChatRequest {
    /// The neutral turn.
    pub(crate) fn into_turn(self) -> Result<Turn, ApiError> {
        let mut turn = Turn {
            thinking: self
                .reasoning_effort
                .is_some_and(|e| e != ReasoningEffort::None)
                || self.model.contains("thinking"),
            model: self.model,
            ..Turn::default()
        };
        let mut system = Vec::new();
        for (i, m) in self.messages.into_iter().enumerate() {
            let content = m.content.unwrap_or_default();
            match m.role {
                ChatRole::System | ChatRole::Developer => system.push(content.text()),
                ChatRole::User => turn.messages.push(Message {
                    role: Role::User,
                    parts: content.user_parts(i)?,
                }),
                ChatRole::Assistant => {
                    turn.messages
                        .push(assistant(content, m.reasoning_content, m.tool_calls))
                }
                ChatRole::Tool => turn.messages.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: m.tool_call_id.ok_or_else(|| {
                            ApiError::invalid_field(
                                format!("messages[{i}].tool_call_id"),
                                "required for role \"tool\"",
                            )
                        })?,
                        result: ToolResult::text(content.text()),
                    }],
                }),
            }
        }
        turn.system = Some(system.join("\n\n")).filter(|s| !s.is_empty());
        turn.tools = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let schema = t
                    .function
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                let description = t.function.description.unwrap_or_default();
                ToolDefinition::new(t.function.name, description, schema)
            })
            .collect();
        turn.tool_choice = self.tool_choice.map(|c| c.0).unwrap_or_default();
        turn.stream = self.stream.unwrap_or(false);
        // stream_options is read here and never forwarded: the upstream has no such parameter.
        turn.include_usage = turn.stream
            && self
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        Ok(turn)
    }
}

fn assistant(
    content: Content,
    reasoning: Option<String>,
    calls: Option<Vec<AssistantToolCall>>,
) -> Message {
    let mut parts = Vec::new();
    if let Some(r) = reasoning {
        parts.push(Part::Thinking(r));
    }
    let text = content.text();
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    for call in calls.unwrap_or_default() {
        let arguments = call.function.arguments.unwrap_or_else(|| "{}".to_owned());
        parts.push(Part::ToolCall(ToolCall::new(
            call.id,
            call.function.name,
            arguments,
        )));
    }
    Message {
        role: Role::Assistant,
        parts,
    }
}

impl TextOr<ContentPart> {
    /// The text of a string content, or of the text parts joined by newlines.
    fn text(self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(s) => s,
            Self::List(parts) => parts
                .into_iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text),
                    ContentPart::ImageUrl { .. } => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// A user message's parts; images must be base64 data URLs (Cursor fetches nothing).
    fn user_parts(self, i: usize) -> Result<Vec<Part>, ApiError> {
        let parts = match self {
            Self::Empty => return Ok(Vec::new()),
            Self::Text(s) => return Ok(vec![Part::Text(s)]),
            Self::List(parts) => parts,
        };
        let mut out = Vec::with_capacity(parts.len());
        for (j, p) in parts.into_iter().enumerate() {
            out.push(match p {
                ContentPart::Text { text } => Part::Text(text),
                ContentPart::ImageUrl { image_url } => {
                    let (ImageUrl::Object { url } | ImageUrl::Url(url)) = image_url;
                    Part::Image(data_url(&url).ok_or_else(|| {
                        ApiError::invalid_field(
                            format!("messages[{i}].content[{j}].image_url.url"),
                            "images must be base64 data URLs",
                        )
                    })?)
                }
            });
        }
        Ok(out)
    }
}

/// Decodes `data:<mime>;base64,<data>`.
fn data_url(url: &str) -> Option<ImageInput> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(ImageInput::new(mime, Bytes::from(data)))
}
