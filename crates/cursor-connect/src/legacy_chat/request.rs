//! A [`RunRequest`] as the legacy ChatService's `StreamUnifiedChatRequest`
//! (reference/cursor-protocol.md §2.1): history as conversation messages with tool results,
//! tools as MCP tools, the system prompt as explicit context.

use cursor_proto::aiserver::v1 as ai;

use crate::ids::uuid_v4;
use crate::run::{HistoryMessage, PROVIDER, RunRequest};

use ai::conversation_message::MessageType;
use ai::stream_unified_chat_request::{ThinkingLevel, UnifiedMode};

fn message(kind: MessageType, text: &str, agentic: bool) -> ai::ConversationMessage {
    ai::ConversationMessage {
        text: text.to_owned(),
        r#type: kind as i32,
        bubble_id: uuid_v4(),
        is_agentic: agentic,
        ..Default::default()
    }
}

/// The last message if it is the assistant's, else a new empty assistant message.
fn assistant(
    out: &mut Vec<ai::ConversationMessage>,
    agentic: bool,
) -> &mut ai::ConversationMessage {
    if out
        .last()
        .is_none_or(|m| m.r#type != MessageType::Ai as i32)
    {
        out.push(message(MessageType::Ai, "", agentic));
    }
    let last = out.len() - 1;
    &mut out[last]
}

/// Adds one history message to the conversation.
fn push_history(out: &mut Vec<ai::ConversationMessage>, h: &HistoryMessage, agentic: bool) {
    match h {
        HistoryMessage::User(text) => out.push(message(MessageType::Human, text, agentic)),
        HistoryMessage::Assistant(text) => assistant(out, agentic).text.push_str(text),
        HistoryMessage::ToolCall {
            id,
            name,
            arguments,
        } => {
            let call = ai::conversation_message::ToolResult {
                tool_call_id: id.clone(),
                tool_name: name.clone(),
                raw_args: arguments.clone(),
                args: arguments.clone(),
                ..Default::default()
            };
            assistant(out, agentic).tool_results.push(call);
        }
        HistoryMessage::ToolResult {
            id,
            content,
            is_error,
            ..
        } => {
            let found = out
                .iter_mut()
                .rev()
                .flat_map(|m| m.tool_results.iter_mut())
                .find(|r| &r.tool_call_id == id);
            if let Some(r) = found {
                r.content = Some(content.clone());
                r.error = is_error.then(|| ai::ToolResultError {
                    model_visible_error_message: content.clone(),
                    ..Default::default()
                });
            }
        }
    }
}

/// The conversation, oldest first: the history, then the user's message. A tool call and its
/// result become a `tool_results` entry of the assistant message that made the call.
fn conversation(req: &RunRequest, agentic: bool) -> Vec<ai::ConversationMessage> {
    let mut out: Vec<ai::ConversationMessage> = Vec::new();
    for h in req.history_messages() {
        push_history(&mut out, h, agentic);
    }
    let mut user = message(MessageType::Human, &req.user_text, agentic);
    user.images = req
        .images()
        .iter()
        .map(|img| ai::ImageProto {
            data: img.data.clone(),
            uuid: uuid_v4(),
            ..Default::default()
        })
        .collect();
    out.push(user);
    out
}

/// The request's tools as MCP tools.
fn mcp_tools(req: &RunRequest) -> Vec<ai::mcp_params::Tool> {
    req.tool_definitions()
        .iter()
        .map(|t| ai::mcp_params::Tool {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.input_schema.to_string(),
            server_name: PROVIDER.to_owned(),
            ..Default::default()
        })
        .collect()
}

/// The first (and only request) message of a legacy chat call.
pub(crate) fn build(
    req: &RunRequest,
    conversation_id: &str,
    os: &str,
) -> ai::StreamUnifiedChatRequestWithTools {
    let agentic = !req.tool_definitions().is_empty();
    let conversation = conversation(req, agentic);
    let headers = conversation
        .iter()
        .map(|m| ai::ConversationMessageHeader {
            bubble_id: m.bubble_id.clone(),
            r#type: m.r#type,
            ..Default::default()
        })
        .collect();
    let mcp_tools = mcp_tools(req);
    let (mode, mode_name) = if agentic {
        (UnifiedMode::Agent, "Agent")
    } else {
        (UnifiedMode::Chat, "Ask")
    };
    let request = ai::StreamUnifiedChatRequest {
        conversation,
        full_conversation_headers_only: headers,
        explicit_context: req.system().map(|s| ai::ExplicitContext {
            context: s.to_owned(),
            ..Default::default()
        }),
        model_details: Some(ai::ModelDetails {
            model_name: Some(req.model().to_owned()),
            max_mode: Some(req.max_mode),
            ..Default::default()
        }),
        conversation_id: conversation_id.to_owned(),
        environment_info: Some(ai::EnvironmentInfo {
            exthost_platform: Some(os.to_owned()),
            ..Default::default()
        }),
        is_agentic: agentic,
        supported_tools: if agentic {
            vec![ai::ClientSideToolV2::Mcp as i32]
        } else {
            Vec::new()
        },
        mcp_tools,
        unified_mode: Some(mode as i32),
        unified_mode_name: Some(mode_name.to_owned()),
        should_disable_tools: Some(!agentic),
        thinking_level: req.wants_thinking().then_some(ThinkingLevel::High as i32),
        ..Default::default()
    };
    ai::StreamUnifiedChatRequestWithTools {
        request: Some(
            ai::stream_unified_chat_request_with_tools::Request::StreamUnifiedChatRequest(request),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::ToolDefinition;

    #[test]
    fn history_tools_and_system_prompt() {
        let req = RunRequest::new("claude-4-sonnet", "and now?")
            .system_prompt("be brief")
            .tools(vec![ToolDefinition::new(
                "calc",
                "adds",
                serde_json::json!({"type": "object"}),
            )])
            .history(vec![
                HistoryMessage::User("2+2?".into()),
                HistoryMessage::ToolCall {
                    id: "c1".into(),
                    name: "calc".into(),
                    arguments: "{}".into(),
                },
                HistoryMessage::ToolResult {
                    id: "c1".into(),
                    name: "calc".into(),
                    content: "4".into(),
                    is_error: false,
                },
                HistoryMessage::Assistant("4".into()),
            ]);
        let msg = build(&req, "conv", "linux");
        let Some(ai::stream_unified_chat_request_with_tools::Request::StreamUnifiedChatRequest(r)) =
            msg.request
        else {
            panic!("request case");
        };
        let types: Vec<i32> = r.conversation.iter().map(|m| m.r#type).collect();
        let (h, a) = (MessageType::Human as i32, MessageType::Ai as i32);
        assert_eq!(types, [h, a, h]);
        assert_eq!(r.conversation[1].text, "4");
        assert_eq!(
            r.conversation[1].tool_results[0].content.as_deref(),
            Some("4")
        );
        assert_eq!(r.conversation[2].text, "and now?");
        assert_eq!(r.explicit_context.unwrap().context, "be brief");
        assert_eq!(r.mcp_tools[0].name, "calc");
        assert_eq!(r.supported_tools, [ai::ClientSideToolV2::Mcp as i32]);
        assert_eq!(r.full_conversation_headers_only.len(), 3);
        assert_eq!(r.conversation_id, "conv");
    }
}
