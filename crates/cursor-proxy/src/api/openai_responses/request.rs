//! The `POST /v1/responses` body as OpenAI documents it, and its translation into the neutral
//! [`Turn`]. Fields this proxy does not use are tolerated (and ignored); values it cannot honour
//! are refused with an error naming the field.
//!
//! Rules for what Cursor cannot do:
//! * Built-in tool types (`web_search`, `file_search`, `code_interpreter`, `computer_use`,
//!   `image_generation`, `mcp`, `local_shell`, `custom`, ...) run on OpenAI's side or need a
//!   grammar Cursor has no field for: they are left out of the tools offered upstream (like
//!   Anthropic's server tools), never refused. A `tool_choice` naming one reads as `auto`.
//! * Input items other than messages, function calls and their outputs and reasoning
//!   (`item_reference`, `web_search_call`, ...) carry nothing Cursor can use and are skipped.
//! * `max_output_tokens`, `temperature`, `top_p`, `text` and `truncation` have no upstream
//!   field; they are accepted and echoed, not enforced.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::body::TextOr;
use crate::api::error::ApiError;
use crate::engine::turn::{Message, Part, Role, ToolChoice, Turn};
use cursor_connect::{ImageInput, ToolCall, ToolDefinition, ToolResult};

/// A responses request. Input items and tools are kept as JSON and decoded one by one, so an
/// unknown type can be skipped and an error names its index.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponsesRequest {
    model: String,
    #[serde(default)]
    input: TextOr<Value>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    reasoning: Option<Reasoning>,
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    prompt_cache_key: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    user: Option<String>,
}

/// `reasoning`.
#[derive(Debug, Deserialize)]
struct Reasoning {
    #[serde(default)]
    effort: Option<Effort>,
    #[serde(default)]
    summary: Option<String>,
}

/// `reasoning.effort`; anything but `none` asks for visible reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

impl Effort {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Xhigh => "xhigh",
        }
    }
}

/// One input item, by its `type` (a message without `type` is a message).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    Message {
        role: ItemRole,
        #[serde(default)]
        content: TextOr<ContentPart>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
    },
    FunctionCallOutput {
        call_id: String,
        #[serde(default)]
        output: TextOr<ContentPart>,
    },
    Reasoning {
        #[serde(default)]
        summary: Vec<SummaryPart>,
    },
    /// Anything else (see the module rules).
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ItemRole {
    User,
    Assistant,
    System,
    Developer,
}

/// A content part of a message or of a function call's output.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    Refusal {
        refusal: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
    },
    /// Files are not forwarded.
    InputFile {},
}

#[derive(Debug, Deserialize)]
struct SummaryPart {
    #[serde(default)]
    text: String,
}

/// A function tool (top level or inside a namespace).
#[derive(Debug, Deserialize)]
struct FunctionTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// A namespace group of tools.
#[derive(Debug, Deserialize)]
struct NamespaceTool {
    name: String,
    #[serde(default)]
    tools: Vec<Value>,
}

/// What the parse leaves for the dialect: the turn, and the stored conversation it continues.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) turn: Turn,
    pub(crate) previous_response_id: Option<String>,
}

impl ResponsesRequest {
    /// The neutral turn.
    pub(crate) fn into_turn(self) -> Result<Parsed, ApiError> {
        let effort = self.reasoning.as_ref().and_then(|r| r.effort);
        let mut turn = Turn {
            thinking: self.reasoning.is_some() && effort != Some(Effort::None)
                || self.model.contains("thinking"),
            model: self.model.clone(),
            stream: self.stream.unwrap_or(false),
            one_tool_call: self.parallel_tool_calls == Some(false),
            client_session: self.prompt_cache_key.clone().filter(|k| !k.is_empty()),
            ..Turn::default()
        };
        let mut system: Vec<String> = self.instructions.iter().cloned().collect();
        let items = match self.input {
            TextOr::Empty => Vec::new(),
            TextOr::Text(s) => vec![json!({"type": "message", "role": "user", "content": s})],
            TextOr::List(items) => items,
        };
        for (i, raw) in items.into_iter().enumerate() {
            add_item(&mut turn, &mut system, raw, i)?;
        }
        turn.system = Some(system.join("\n\n")).filter(|s| !s.is_empty());
        for (i, tool) in self.tools.iter().flatten().enumerate() {
            add_tool(&mut turn, tool, &format!("tools[{i}]"), None)?;
        }
        turn.tool_choice = tool_choice(self.tool_choice.as_ref(), &turn)?;
        turn.echo = Some(json!({
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "metadata": self.metadata.unwrap_or_default(),
            "parallel_tool_calls": self.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": self.previous_response_id,
            "prompt_cache_key": self.prompt_cache_key,
            "reasoning": {
                "effort": effort.map(Effort::as_str),
                "summary": self.reasoning.and_then(|r| r.summary),
            },
            "store": self.store.unwrap_or(true),
            "temperature": self.temperature.unwrap_or(1.0),
            "text": self.text.unwrap_or_else(|| json!({"format": {"type": "text"}})),
            "tool_choice": self.tool_choice.unwrap_or_else(|| json!("auto")),
            "tools": self.tools.unwrap_or_default(),
            "top_p": self.top_p.unwrap_or(1.0),
            "truncation": "disabled",
            "user": self.user,
        }));
        Ok(Parsed {
            turn,
            previous_response_id: self.previous_response_id,
        })
    }
}

/// Adds input item `i` to the turn (system and developer messages to the system text).
fn add_item(
    turn: &mut Turn,
    system: &mut Vec<String>,
    mut raw: Value,
    i: usize,
) -> Result<(), ApiError> {
    if let Value::Object(o) = &mut raw
        && !o.contains_key("type")
    {
        o.insert("type".into(), json!("message"));
    }
    let item: Item = decode(raw, &format!("input[{i}]"))?;
    match item {
        Item::Message { role, content } => {
            let role = match role {
                ItemRole::System | ItemRole::Developer => {
                    system.push(text_of(content));
                    return Ok(());
                }
                ItemRole::User => Role::User,
                ItemRole::Assistant => Role::Assistant,
            };
            let parts = parts(content, i)?;
            push(turn, role, parts);
        }
        Item::FunctionCall {
            call_id,
            name,
            arguments,
            namespace,
        } => {
            let name = match namespace {
                Some(ns) => flat_name(&ns, &name),
                None => name,
            };
            let args = arguments.unwrap_or_else(|| "{}".to_owned());
            push(
                turn,
                Role::Assistant,
                vec![Part::ToolCall(ToolCall::new(call_id, name, args))],
            );
        }
        Item::FunctionCallOutput { call_id, output } => {
            let result = ToolResult::text(text_of(output));
            turn.messages.push(Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult { call_id, result }],
            });
        }
        Item::Reasoning { summary } => {
            let text: Vec<String> = summary.into_iter().map(|s| s.text).collect();
            if !text.is_empty() {
                push(
                    turn,
                    Role::Assistant,
                    vec![Part::Thinking(text.join("\n\n"))],
                );
            }
        }
        Item::Other => {}
    }
    Ok(())
}

/// Appends parts, merging consecutive assistant items (text, reasoning and calls of one
/// response arrive as separate items) into one message.
fn push(turn: &mut Turn, role: Role, parts: Vec<Part>) {
    match turn.messages.last_mut() {
        Some(m) if role == Role::Assistant && m.role == Role::Assistant => m.parts.extend(parts),
        _ => turn.messages.push(Message { role, parts }),
    }
}

/// The name a namespace member is offered under upstream.
pub(crate) fn flat_name(namespace: &str, name: &str) -> String {
    format!("{namespace}__{name}")
}

/// Adds a tool (or a namespace group's functions) to the turn; other types are left out.
fn add_tool(
    turn: &mut Turn,
    tool: &Value,
    field: &str,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {
            let f: FunctionTool = decode(tool.clone(), field)?;
            let schema = f
                .parameters
                .filter(|p| !p.is_null())
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let name = match namespace {
                Some(ns) => {
                    let flat = flat_name(ns, &f.name);
                    turn.tool_namespaces
                        .push((flat.clone(), ns.to_owned(), f.name));
                    flat
                }
                None => f.name,
            };
            turn.tools.push(ToolDefinition::new(
                name,
                f.description.unwrap_or_default(),
                schema,
            ));
        }
        Some("namespace") if namespace.is_none() => {
            let ns: NamespaceTool = decode(tool.clone(), field)?;
            for (j, t) in ns.tools.iter().enumerate() {
                add_tool(turn, t, &format!("{field}.tools[{j}]"), Some(&ns.name))?;
            }
        }
        Some(_) => {}
        None => {
            return Err(ApiError::invalid_field(
                format!("{field}.type"),
                "missing field `type`",
            ));
        }
    }
    Ok(())
}

/// `tool_choice`: `"none" | "auto" | "required"`, `{"type": "function", "name"}`, or a built-in
/// or `allowed_tools` choice (read as `auto`).
fn tool_choice(v: Option<&Value>, turn: &Turn) -> Result<ToolChoice, ApiError> {
    Ok(match v {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::invalid_field(
                    "tool_choice",
                    format!(
                        "unsupported value \"{other}\", expected \"none\", \"auto\", \"required\" or a named function"
                    ),
                ));
            }
        },
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid_field("tool_choice.name", "missing field `name`")
            })?;
            let flat = match o.get("namespace").and_then(Value::as_str) {
                Some(ns) => flat_name(ns, name),
                None => name.to_owned(),
            };
            if !turn.tools.iter().any(|t| t.name == flat) {
                return Err(ApiError::invalid_field(
                    "tool_choice.name",
                    format!("no function named `{name}` among the tools"),
                ));
            }
            ToolChoice::Named(flat)
        }
        Some(Value::Object(_)) => ToolChoice::Auto,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "tool_choice",
                format!(
                    "invalid type: {}, expected a string or an object",
                    kind(other)
                ),
            ));
        }
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decodes a part of the body kept as JSON, naming `field` in errors.
fn decode<T: serde::de::DeserializeOwned>(v: Value, field: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let full = if path == "." {
            field.to_owned()
        } else {
            format!("{field}.{path}")
        };
        ApiError::invalid_field(full, e.into_inner().to_string())
    })
}

fn text_of(content: TextOr<ContentPart>) -> String {
    match content {
        TextOr::Empty => String::new(),
        TextOr::Text(s) => s,
        TextOr::List(parts) => parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::InputText { text } | ContentPart::OutputText { text } => Some(text),
                ContentPart::Refusal { refusal } => Some(refusal),
                ContentPart::InputImage { .. } | ContentPart::InputFile {} => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A message's parts; images must be base64 data URLs (Cursor fetches nothing).
fn parts(content: TextOr<ContentPart>, i: usize) -> Result<Vec<Part>, ApiError> {
    let list = match content {
        TextOr::Empty => return Ok(Vec::new()),
        TextOr::Text(s) => return Ok(vec![Part::Text(s)]),
        TextOr::List(list) => list,
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, p) in list.into_iter().enumerate() {
        out.push(match p {
            ContentPart::InputText { text } | ContentPart::OutputText { text } => Part::Text(text),
            ContentPart::Refusal { refusal } => Part::Text(refusal),
            ContentPart::InputImage { image_url } => {
                Part::Image(image_url.as_deref().and_then(data_url).ok_or_else(|| {
                    ApiError::invalid_field(
                        format!("input[{i}].content[{j}].image_url"),
                        "images must be base64 data URLs",
                    )
                })?)
            }
            ContentPart::InputFile {} => continue,
        });
    }
    Ok(out)
}

/// Decodes `data:<mime>;base64,<data>`.
fn data_url(url: &str) -> Option<ImageInput> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(ImageInput::new(mime, Bytes::from(data)))
}
