//! Display-only progress the server reports while it works: context summarization, agent
//! steps, and tool calls (built-in tools the server runs, and the caller's own tools, which
//! also arrive as [`Event::ToolCall`](super::Event::ToolCall) to be answered).

use std::collections::HashMap;
use std::sync::OnceLock;

use cursor_proto::agent::v1 as pb;
use prost::Message as _;

use super::event::Event;

/// What a tool call is doing, as the server reports it (display only: answer tool calls from
/// [`Event::ToolCall`](super::Event::ToolCall), never from this).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolActivity {
    /// The server's id for the call.
    pub call_id: String,
    /// Which tool: the case of Cursor's `ToolCall` without its `_tool_call` suffix (`shell`,
    /// `read`, `edit`, ...), `mcp:<name>` for MCP tools, or `unknown` for a case this version
    /// of the schema does not name.
    pub tool: String,
    /// How far it got.
    pub phase: ToolPhase,
}

/// The phase of a [`ToolActivity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolPhase {
    /// The call began.
    Started,
    /// Its arguments or output grew (`partial_tool_call`, `tool_call_delta`).
    Progress,
    /// The call finished.
    Completed,
}

/// The event for a display-only update, or `None` for one a caller would not care about.
pub(crate) fn event(update: pb::interaction_update::Message) -> Option<Event> {
    use pb::interaction_update::Message as U;
    Some(match update {
        U::SummaryStarted(_) => Event::SummaryStarted,
        U::Summary(s) => Event::Summary(s.summary),
        U::SummaryCompleted(s) => Event::SummaryCompleted {
            failed: s.failed.unwrap_or(false),
        },
        U::StepStarted(s) => Event::StepStarted(s.step_id),
        U::StepCompleted(s) => Event::StepCompleted {
            step: s.step_id,
            duration_ms: u64::try_from(s.step_duration_ms).unwrap_or(0),
        },
        U::ToolCallStarted(t) => tool(t.call_id, t.tool_call.as_ref(), ToolPhase::Started),
        U::ToolCallCompleted(t) => tool(t.call_id, t.tool_call.as_ref(), ToolPhase::Completed),
        U::PartialToolCall(t) => tool(t.call_id, t.tool_call.as_ref(), ToolPhase::Progress),
        U::ToolCallDelta(t) => tool(t.call_id, None, ToolPhase::Progress),
        _ => return None,
    })
}

fn tool(call_id: String, call: Option<&pb::ToolCall>, phase: ToolPhase) -> Event {
    Event::ToolActivity(ToolActivity {
        call_id,
        tool: call.map_or_else(|| "unknown".to_owned(), tool_name),
        phase,
    })
}

/// The name of the `ToolCall` case that is set.
fn tool_name(call: &pb::ToolCall) -> String {
    if let Some(pb::tool_call::Tool::McpToolCall(mcp)) = &call.tool {
        let name = mcp.args.as_ref().map_or("", |a| a.tool_name.as_str());
        return format!("mcp:{name}");
    }
    // Every other case is read off the wire and named from the schema, so a case added to
    // `proto/` is named without code here.
    let bytes = call.encode_to_vec();
    let names = case_names();
    first_field_numbers(&bytes)
        .find_map(|n| names.get(&n))
        .map_or_else(|| "unknown".to_owned(), Clone::clone)
}

/// `ToolCall`'s `tool` oneof: field number to case name (suffix `_tool_call` dropped).
fn case_names() -> &'static HashMap<u32, String> {
    static NAMES: OnceLock<HashMap<u32, String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let Ok(set) = prost_types::FileDescriptorSet::decode(cursor_proto::FILE_DESCRIPTOR_SET)
        else {
            return HashMap::new();
        };
        let message = set
            .file
            .iter()
            .filter(|f| f.package() == "agent.v1")
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == "ToolCall");
        let Some(message) = message else {
            return HashMap::new();
        };
        let oneof = message.oneof_decl.iter().position(|o| o.name() == "tool");
        message
            .field
            .iter()
            .filter(|f| oneof.is_some() && f.oneof_index.map(|i| i as usize) == oneof)
            .filter_map(|f| {
                let number = u32::try_from(f.number()).ok()?;
                let name = f.name();
                let name = name.strip_suffix("_tool_call").unwrap_or(name);
                Some((number, name.to_owned()))
            })
            .collect()
    })
}

/// The field numbers of a message's top-level fields, in order (stops at malformed input,
/// which cannot happen for bytes prost just encoded).
fn first_field_numbers(mut buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    std::iter::from_fn(move || {
        let key = prost::encoding::decode_varint(&mut buf).ok()?;
        let wire = prost::encoding::WireType::try_from(key & 7).ok()?;
        let number = u32::try_from(key >> 3).ok()?;
        prost::encoding::skip_field(wire, number, &mut buf, Default::default()).ok()?;
        Some(number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_steps_become_events() {
        use pb::interaction_update::Message as U;
        let summary = pb::SummaryUpdate {
            summary: "short".into(),
        };
        assert_eq!(
            event(U::Summary(summary)),
            Some(Event::Summary("short".into()))
        );
        let done = pb::StepCompletedUpdate {
            step_id: 7,
            step_duration_ms: 1200,
        };
        assert_eq!(
            event(U::StepCompleted(done)),
            Some(Event::StepCompleted {
                step: 7,
                duration_ms: 1200
            })
        );
        assert_eq!(event(U::Heartbeat(pb::HeartbeatUpdate {})), None);
    }

    #[test]
    fn mcp_and_unnamed_tool_calls_are_named() {
        let mcp = pb::ToolCall {
            tool: Some(pb::tool_call::Tool::McpToolCall(pb::McpToolCall {
                args: Some(pb::McpArgs {
                    tool_name: "lookup".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(tool_name(&mcp), "mcp:lookup");
        assert_eq!(tool_name(&pb::ToolCall::default()), "unknown");
        // Built-in cases are named from the schema, suffix dropped.
        let shell = pb::ToolCall {
            tool: Some(pb::tool_call::Tool::ShellToolCall(pb::ShellToolCall {})),
            ..Default::default()
        };
        assert_eq!(tool_name(&shell), "shell");
        let todos = pb::ToolCall {
            tool: Some(pb::tool_call::Tool::UpdateTodosToolCall(
                pb::UpdateTodosToolCall {},
            )),
            ..Default::default()
        };
        assert_eq!(tool_name(&todos), "update_todos");
    }
}
