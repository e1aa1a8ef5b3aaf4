//! The `POST /v1/messages` body as Anthropic documents it, and its translation into the neutral
//! [`Turn`]. Fields this proxy does not use are tolerated (and ignored); values it cannot honour
//! are refused with an error naming the field.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::api::body::TextOr;
use crate::api::error::ApiError;
use crate::engine::session::claude_code_session;
use crate::engine::turn::{Message, Part, Role, ToolChoice, Turn};
use cursor_connect::{ImageInput, ToolCall, ToolDefinition, ToolResult};

/// A messages request.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesRequest {
    model: String,
    messages: Vec<InputMessage>,
    #[serde(default)]
    system: TextOr<TextBlock>,
    #[serde(default)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    tool_choice: Option<AnthropicToolChoice>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    thinking: Option<Thinking>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize)]
struct InputMessage {
    role: InputRole,
    content: TextOr<Block>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InputRole {
    User,
    Assistant,
    /// Claude Code's mid-conversation system messages: folded into the system text.
    System,
}

/// A text block (`system` as a list; `cache_control` and citations are ignored).
#[derive(Debug, Deserialize)]
struct TextBlock {
    text: String,
}

/// One content block of a message.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    Thinking {
        thinking: String,
    },
    /// Encrypted reasoning from Anthropic's own models: nothing Cursor can use.
    RedactedThinking {},
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: TextOr<ResultBlock>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    /// Anthropic's server tools ran on Anthropic's side; their traces are not replayed.
    ServerToolUse {},
    /// See [`Block::ServerToolUse`].
    WebSearchToolResult {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 { media_type: String, data: String },
    Url {},
    File {},
}

/// A block inside a `tool_result`: its text is the result; images are not forwarded.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResultBlock {
    Text { text: String },
    Image {},
}

/// A tool. Server tools (web search and the like) carry no `input_schema` and cannot run
/// through Cursor: they are left out.
#[derive(Debug, Deserialize)]
struct Tool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AnthropicToolChoice {
    Auto {},
    Any {},
    Tool { name: String },
    None {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Thinking {
    Enabled {},
    Adaptive {},
    Disabled {},
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    user_id: Option<String>,
}

impl MessagesRequest {
    /// The neutral turn; `session_header` is Claude Code's session header, if sent.
    pub(crate) fn into_turn(self, session_header: Option<&str>) -> Result<Turn, ApiError> {
        let mut turn = Turn {
            model: self.model,
            stream: self.stream.unwrap_or(false),
            thinking: matches!(
                self.thinking,
                Some(Thinking::Enabled {} | Thinking::Adaptive {})
            ),
            ..Turn::default()
        };
        let mut system = vec![system_text(self.system)];
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role {
                InputRole::User => Role::User,
                InputRole::Assistant => Role::Assistant,
                InputRole::System => {
                    // Cursor has one system prompt: the messages' system text follows the
                    // top-level one, in the order the messages gave it.
                    system.push(message_text(m.content));
                    continue;
                }
            };
            turn.messages.push(Message {
                role,
                parts: parts(m.content, i)?,
            });
        }
        system.retain(|s| !s.is_empty());
        turn.system = Some(system.join("\n\n")).filter(|s| !s.is_empty());
        turn.tools = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| {
                let schema = t.input_schema?;
                Some(ToolDefinition::new(
                    t.name,
                    t.description.unwrap_or_default(),
                    schema,
                ))
            })
            .collect();
        turn.tool_choice = match self.tool_choice {
            None | Some(AnthropicToolChoice::Auto {}) => ToolChoice::Auto,
            Some(AnthropicToolChoice::Any {}) => ToolChoice::Required,
            Some(AnthropicToolChoice::Tool { name }) => ToolChoice::Named(name),
            Some(AnthropicToolChoice::None {}) => ToolChoice::None,
        };
        turn.client_session = session_header.map(str::to_owned).or_else(|| {
            self.metadata
                .and_then(|m| m.user_id)
                .and_then(|u| claude_code_session(&u))
        });
        Ok(turn)
    }
}

fn system_text(system: TextOr<TextBlock>) -> String {
    match system {
        TextOr::Empty => String::new(),
        TextOr::Text(s) => s,
        TextOr::List(blocks) => blocks
            .into_iter()
            .map(|b| b.text)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The text blocks of a message, joined.
fn message_text(content: TextOr<Block>) -> String {
    match content {
        TextOr::Empty => String::new(),
        TextOr::Text(s) => s,
        TextOr::List(blocks) => blocks
            .into_iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn parts(content: TextOr<Block>, i: usize) -> Result<Vec<Part>, ApiError> {
    let blocks = match content {
        TextOr::Empty => return Ok(Vec::new()),
        TextOr::Text(s) => return Ok(vec![Part::Text(s)]),
        TextOr::List(blocks) => blocks,
    };
    let mut out = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.into_iter().enumerate() {
        out.push(match b {
            Block::Text { text } => Part::Text(text),
            Block::Thinking { thinking } => Part::Thinking(thinking),
            Block::Image { source } => Part::Image(image(source, i, j)?),
            Block::ToolUse { id, name, input } => Part::ToolCall(ToolCall::new(
                id,
                name,
                input.map_or_else(|| "{}".to_owned(), |v| v.to_string()),
            )),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => Part::ToolResult {
                call_id: tool_use_id,
                result: if is_error.unwrap_or(false) {
                    ToolResult::error(result_text(content))
                } else {
                    ToolResult::text(result_text(content))
                },
            },
            Block::RedactedThinking {}
            | Block::ServerToolUse {}
            | Block::WebSearchToolResult {} => {
                continue;
            }
        });
    }
    Ok(out)
}

fn image(source: ImageSource, i: usize, j: usize) -> Result<ImageInput, ApiError> {
    let field = || format!("messages[{i}].content[{j}].source");
    match source {
        ImageSource::Base64 { media_type, data } => {
            let data = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| ApiError::invalid_field(field() + ".data", "not valid base64"))?;
            Ok(ImageInput::new(media_type, Bytes::from(data)))
        }
        ImageSource::Url {} | ImageSource::File {} => Err(ApiError::invalid_field(
            field() + ".type",
            "images must be base64 sources",
        )),
    }
}

fn result_text(content: TextOr<ResultBlock>) -> String {
    match content {
        TextOr::Empty => String::new(),
        TextOr::Text(t) => t,
        TextOr::List(blocks) => blocks
            .into_iter()
            .filter_map(|b| match b {
                ResultBlock::Text { text } => Some(text),
                ResultBlock::Image {} => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}
