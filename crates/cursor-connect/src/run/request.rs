//! What the caller asks for in a turn, and how it becomes an `AgentRunRequest`.

use bytes::Bytes;
use cursor_proto::agent::v1 as pb;

use crate::config::HeaderStyle;
use crate::ids::uuid_v4;

/// The provider identifier our tool definitions carry (proxies use their own name here).
pub(crate) const PROVIDER: &str = "cursor-connect";

/// A tool the model may call (declared as an MCP tool).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolDefinition {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON schema of the arguments object.
    pub input_schema: serde_json::Value,
}

impl ToolDefinition {
    /// A tool definition.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
        }
    }

    pub(crate) fn to_proto(&self) -> pb::McpToolDefinition {
        pb::McpToolDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            input_schema: Some(cursor_proto::json::value_from_json(&self.input_schema)),
            provider_identifier: PROVIDER.to_owned(),
            tool_name: self.name.clone(),
            input_schema_json: Some(self.input_schema.to_string()),
        }
    }
}

/// An image attached to the user message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageInput {
    /// MIME type, e.g. `image/png`.
    pub mime: String,
    /// The encoded image bytes.
    pub data: Bytes,
}

impl ImageInput {
    /// An image of type `mime`.
    pub fn new(mime: impl Into<String>, data: Bytes) -> Self {
        Self {
            mime: mime.into(),
            data,
        }
    }
}

/// One earlier message of the conversation, for turns without a usable checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryMessage {
    /// A user message.
    User(String),
    /// An assistant answer (text only).
    Assistant(String),
    /// An assistant's tool call.
    ToolCall {
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
        /// The JSON arguments text.
        arguments: String,
    },
    /// A tool's result.
    ToolResult {
        /// The call id it answers.
        id: String,
        /// The tool name.
        name: String,
        /// The result text.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
}

/// How history is sent when there is no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HistoryMode {
    /// Flatten it into the user message text (what working proxies do; the default).
    #[default]
    Flatten,
    /// Send it as `UserMessageAction.conversation_history` (CLI behaviour per the spec notes,
    /// unverified by a working client).
    Structured,
}

/// One agent turn to run.
///
/// ```
/// use cursor_connect::{RunRequest, ToolDefinition};
/// let req = RunRequest::new("composer-2.5", "What is 2+2?")
///     .system_prompt("Be brief.")
///     .tools(vec![ToolDefinition::new("calc", "Evaluates arithmetic", serde_json::json!({"type": "object"}))])
///     .thinking(true);
/// assert_eq!(req.model(), "composer-2.5");
/// ```
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub(crate) model: String,
    pub(crate) user_text: String,
    pub(crate) system_prompt: Option<String>,
    pub(crate) tools: Vec<ToolDefinition>,
    pub(crate) conversation_id: Option<String>,
    pub(crate) checkpoint: Option<Bytes>,
    pub(crate) history: Vec<HistoryMessage>,
    pub(crate) history_mode: HistoryMode,
    pub(crate) images: Vec<ImageInput>,
    pub(crate) thinking: bool,
    pub(crate) max_mode: bool,
    pub(crate) ask_mode: bool,
}

impl RunRequest {
    /// A turn with `model` and the user's message.
    pub fn new(model: impl Into<String>, user_text: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            user_text: user_text.into(),
            system_prompt: None,
            tools: Vec::new(),
            conversation_id: None,
            checkpoint: None,
            history: Vec::new(),
            history_mode: HistoryMode::default(),
            images: Vec::new(),
            thinking: false,
            max_mode: false,
            ask_mode: false,
        }
    }

    /// Sets a custom system prompt (`custom_system_prompt`).
    pub fn system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Declares the tools the model may call (sent both as `mcp_tools` and in the request
    /// context, as working clients do).
    pub fn tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// Continues conversation `id` (keep it stable across turns). A fresh UUID otherwise.
    pub fn conversation_id(mut self, id: impl Into<String>) -> Self {
        self.conversation_id = Some(id.into());
        self
    }

    /// The previous turn's checkpoint, sent back byte-exact as `conversation_state`.
    /// Checkpoints are account-specific: drop them when switching accounts.
    pub fn checkpoint(mut self, checkpoint: Bytes) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// The earlier messages, used only when no checkpoint is given.
    pub fn history(mut self, history: Vec<HistoryMessage>) -> Self {
        self.history = history;
        self
    }

    /// How history is sent (flattened text by default).
    pub fn history_mode(mut self, mode: HistoryMode) -> Self {
        self.history_mode = mode;
        self
    }

    /// Attaches an image to the user message.
    pub fn image(mut self, image: ImageInput) -> Self {
        self.images.push(image);
        self
    }

    /// Asks for reasoning (sets `thinking_details`).
    pub fn thinking(mut self, on: bool) -> Self {
        self.thinking = on;
        self
    }

    /// Asks for max mode.
    pub fn max_mode(mut self, on: bool) -> Self {
        self.max_mode = on;
        self
    }

    /// Uses ask mode (no edits) instead of agent mode.
    pub fn ask_mode(mut self, on: bool) -> Self {
        self.ask_mode = on;
        self
    }

    /// The model id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The tool definitions.
    pub fn tool_definitions(&self) -> &[ToolDefinition] {
        &self.tools
    }

    /// The conversation id set with [`RunRequest::conversation_id`], if any.
    pub fn conversation(&self) -> Option<&str> {
        self.conversation_id.as_deref()
    }

    /// The checkpoint set with [`RunRequest::checkpoint`], if any.
    pub fn conversation_state(&self) -> Option<&Bytes> {
        self.checkpoint.as_ref()
    }

    /// The earlier messages set with [`RunRequest::history`].
    pub fn history_messages(&self) -> &[HistoryMessage] {
        &self.history
    }

    /// The system prompt, if any.
    pub fn system(&self) -> Option<&str> {
        self.system_prompt.as_deref()
    }

    /// The images attached to the user message.
    pub fn images(&self) -> &[ImageInput] {
        &self.images
    }

    /// Whether reasoning was asked for.
    pub fn wants_thinking(&self) -> bool {
        self.thinking
    }

    /// The user text actually sent: the message itself, or, with history and no checkpoint in
    /// [`HistoryMode::Flatten`], the history flattened in front of it.
    pub fn effective_user_text(&self) -> String {
        if self.checkpoint.is_some()
            || self.history.is_empty()
            || self.history_mode != HistoryMode::Flatten
        {
            return self.user_text.clone();
        }
        flatten_history(&self.history, &self.user_text)
    }

    pub(crate) fn to_proto(
        &self,
        conversation_id: &str,
        request_context: pb::RequestContext,
    ) -> pb::AgentRunRequest {
        let selected_context = (!self.images.is_empty()).then(|| pb::SelectedContext {
            selected_images: self
                .images
                .iter()
                .map(|img| pb::SelectedImage {
                    uuid: uuid_v4(),
                    mime_type: img.mime.clone(),
                    data_or_blob_id: Some(pb::selected_image::DataOrBlobId::Data(img.data.clone())),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let mode = if self.ask_mode {
            pb::AgentMode::Ask
        } else {
            pb::AgentMode::Agent
        };
        let user_message = pb::UserMessage {
            text: self.effective_user_text(),
            message_id: uuid_v4(),
            selected_context,
            mode: mode as i32,
            ..Default::default()
        };
        let conversation_history = (self.checkpoint.is_none()
            && !self.history.is_empty()
            && self.history_mode == HistoryMode::Structured)
            .then(|| structured_history(&self.history));
        let action = pb::ConversationAction {
            action: Some(pb::conversation_action::Action::UserMessageAction(
                pb::UserMessageAction {
                    user_message: Some(user_message),
                    request_context: Some(request_context),
                    conversation_history,
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        pb::AgentRunRequest {
            // Always present, even empty: omitting it is rejected as invalid_argument.
            conversation_state: Some(self.checkpoint.clone().unwrap_or_default()),
            action: Some(action),
            model_details: Some(pb::ModelDetails {
                model_id: self.model.clone(),
                thinking_details: self.thinking.then_some(pb::ThinkingDetails {}),
                display_model_id: self.model.clone(),
                display_name: self.model.clone(),
                max_mode: self.max_mode.then_some(true),
                ..Default::default()
            }),
            // What Cursor's SDK sends (and all it sends about the model); the CLI's
            // `model_details` stays beside it for the CLI and IDE styles.
            requested_model: Some(pb::RequestedModel {
                model_id: self.model.clone(),
                max_mode: self.max_mode,
                ..Default::default()
            }),
            mcp_tools: Some(pb::McpTools {
                mcp_tools: self.tools.iter().map(ToolDefinition::to_proto).collect(),
            }),
            conversation_id: Some(conversation_id.to_owned()),
            custom_system_prompt: self.system_prompt.clone(),
            ..Default::default()
        }
    }

    /// The run request as a client of `style` sends it, with `run_id` (the SDK sends the
    /// call's original request id there).
    pub(crate) fn to_proto_as(
        &self,
        style: HeaderStyle,
        conversation_id: &str,
        request_context: pb::RequestContext,
        run_id: &str,
    ) -> pb::AgentRunRequest {
        let mut request = self.to_proto(conversation_id, request_context);
        request.run_id = Some(run_id.to_owned());
        if style == HeaderStyle::Sdk {
            // The SDK names the model only in `requested_model`, answers the request-context
            // exec instead of sending a context up front, and sends no message id.
            request.model_details = None;
            if let Some(pb::conversation_action::Action::UserMessageAction(action)) =
                request.action.as_mut().and_then(|a| a.action.as_mut())
            {
                action.request_context = None;
                if let Some(message) = action.user_message.as_mut() {
                    message.message_id.clear();
                    // Agent is the server's default mode; the SDK leaves it unset.
                    if message.mode == pb::AgentMode::Agent as i32 {
                        message.mode = pb::AgentMode::Unspecified as i32;
                    }
                }
            }
        }
        request
    }
}

/// Flattens earlier turns into one text block in front of the new message, as the Go proxy
/// does when a conversation moves to an account without its checkpoint.
pub fn flatten_history(history: &[HistoryMessage], user_text: &str) -> String {
    let mut out = String::from("<previous_conversation>\n");
    for m in history {
        match m {
            HistoryMessage::User(t) => {
                out.push_str("[user]\n");
                out.push_str(t);
            }
            HistoryMessage::Assistant(t) => {
                out.push_str("[assistant]\n");
                out.push_str(t);
            }
            HistoryMessage::ToolCall {
                id,
                name,
                arguments,
            } => {
                out.push_str(&format!(
                    "[assistant tool call {name} id={id}]\n{arguments}"
                ));
            }
            HistoryMessage::ToolResult {
                id,
                name,
                content,
                is_error,
            } => {
                let status = if *is_error { " error" } else { "" };
                out.push_str(&format!("[tool result{status} {name} id={id}]\n{content}"));
            }
        }
        out.push_str("\n\n");
    }
    out.push_str("</previous_conversation>\n\n");
    out.push_str(user_text);
    out
}

fn structured_history(history: &[HistoryMessage]) -> pb::ConversationHistory {
    use pb::conversation_history_assistant_content::Content as A;
    use pb::conversation_history_message::Message as M;
    let text = |t: &String| pb::ConversationHistoryTextContent { text: t.clone() };
    let messages = history
        .iter()
        .map(|m| {
            let message = match m {
                HistoryMessage::User(t) => M::User(pb::ConversationHistoryUserMessage {
                    content: vec![pb::ConversationHistoryUserContent {
                        content: Some(pb::conversation_history_user_content::Content::Text(text(
                            t,
                        ))),
                    }],
                }),
                HistoryMessage::Assistant(t) => {
                    M::Assistant(pb::ConversationHistoryAssistantMessage {
                        content: vec![pb::ConversationHistoryAssistantContent {
                            content: Some(A::Text(text(t))),
                        }],
                    })
                }
                HistoryMessage::ToolCall {
                    id,
                    name,
                    arguments,
                } => M::Assistant(pb::ConversationHistoryAssistantMessage {
                    content: vec![pb::ConversationHistoryAssistantContent {
                        content: Some(A::ToolCall(pb::ConversationHistoryToolCall {
                            tool_call_id: id.clone(),
                            tool_name: name.clone(),
                            args_json: arguments.clone(),
                        })),
                    }],
                }),
                HistoryMessage::ToolResult {
                    id,
                    name,
                    content,
                    is_error,
                } => M::Tool(pb::ConversationHistoryToolMessage {
                    tool_call_id: id.clone(),
                    tool_name: name.clone(),
                    content: vec![pb::ConversationHistoryToolResultContent {
                        content: Some(pb::conversation_history_tool_result_content::Content::Text(
                            text(content),
                        )),
                    }],
                    is_error: Some(*is_error),
                    hook_additional_contexts: Vec::new(),
                }),
            };
            pb::ConversationHistoryMessage {
                message: Some(message),
            }
        })
        .collect();
    pb::ConversationHistory { messages }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn ctx() -> pb::RequestContext {
        pb::RequestContext::default()
    }

    #[test]
    fn new_conversation_sends_empty_state() {
        let req = RunRequest::new("m", "hi").to_proto("conv", ctx());
        assert_eq!(req.conversation_state.as_deref(), Some(&b""[..]));
        let bytes = req.encode_to_vec();
        // Field 1, length-delimited, length 0: present on the wire.
        assert_eq!(&bytes[..2], &[0x0a, 0x00]);
        assert_eq!(req.conversation_id.as_deref(), Some("conv"));
        let md = req.model_details.unwrap();
        assert_eq!(
            (
                md.model_id.as_str(),
                md.display_model_id.as_str(),
                md.display_name.as_str()
            ),
            ("m", "m", "m")
        );
        assert!(md.thinking_details.is_none());
    }

    #[test]
    fn checkpoint_is_echoed_byte_exact_and_history_ignored() {
        let cp = Bytes::from_static(b"\x0a\x03abc\xff\x00unknown-fields");
        let req = RunRequest::new("m", "next")
            .checkpoint(cp.clone())
            .history(vec![HistoryMessage::User("old".into())])
            .to_proto("c", ctx());
        assert_eq!(req.conversation_state.as_ref(), Some(&cp));
        let decoded = pb::AgentRunRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.conversation_state.unwrap(), cp);
        let Some(pb::conversation_action::Action::UserMessageAction(uma)) =
            req.action.unwrap().action
        else {
            panic!()
        };
        assert_eq!(uma.user_message.unwrap().text, "next");
    }

    #[test]
    fn history_is_flattened_without_checkpoint() {
        let req = RunRequest::new("m", "and now?").history(vec![
            HistoryMessage::User("hello".into()),
            HistoryMessage::Assistant("hi there".into()),
            HistoryMessage::ToolCall {
                id: "c1".into(),
                name: "ls".into(),
                arguments: "{}".into(),
            },
            HistoryMessage::ToolResult {
                id: "c1".into(),
                name: "ls".into(),
                content: "a.txt".into(),
                is_error: false,
            },
        ]);
        let text = req.effective_user_text();
        let order = [
            "hello",
            "hi there",
            "ls id=c1",
            "a.txt",
            "</previous_conversation>",
            "and now?",
        ];
        let mut at = 0;
        for needle in order {
            let i = text[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} in {text}"));
            at += i + needle.len();
        }
        assert!(text.ends_with("and now?"));
    }

    #[test]
    fn structured_history_mode() {
        let req = RunRequest::new("m", "q")
            .history(vec![
                HistoryMessage::User("a".into()),
                HistoryMessage::Assistant("b".into()),
            ])
            .history_mode(HistoryMode::Structured)
            .to_proto("c", ctx());
        let Some(pb::conversation_action::Action::UserMessageAction(uma)) =
            req.action.unwrap().action
        else {
            panic!()
        };
        assert_eq!(uma.user_message.unwrap().text, "q");
        assert_eq!(uma.conversation_history.unwrap().messages.len(), 2);
    }

    #[test]
    fn tools_images_thinking() {
        let schema = serde_json::json!({"type":"object","properties":{"x":{"type":"number"}}});
        let req = RunRequest::new("m", "q")
            .tools(vec![ToolDefinition::new("add", "adds", schema.clone())])
            .image(ImageInput::new("image/png", Bytes::from_static(b"PNG")))
            .thinking(true)
            .system_prompt("sys")
            .to_proto("c", ctx());
        let tool = &req.mcp_tools.as_ref().unwrap().mcp_tools[0];
        assert_eq!(tool.name, "add");
        assert_eq!(tool.tool_name, "add");
        assert_eq!(
            cursor_proto::json::value_to_json(tool.input_schema.as_ref().unwrap()),
            schema
        );
        assert!(
            req.model_details
                .as_ref()
                .unwrap()
                .thinking_details
                .is_some()
        );
        assert_eq!(req.custom_system_prompt.as_deref(), Some("sys"));
        let Some(pb::conversation_action::Action::UserMessageAction(uma)) =
            req.action.unwrap().action
        else {
            panic!()
        };
        let img = &uma
            .user_message
            .unwrap()
            .selected_context
            .unwrap()
            .selected_images[0];
        assert_eq!(img.mime_type, "image/png");
    }
}
