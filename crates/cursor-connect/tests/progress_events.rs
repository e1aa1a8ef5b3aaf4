//! Summarization, agent steps and tool-call progress reach the caller as events, in stream
//! order, between the text; updates the client does not surface are skipped, never errors.

mod common;

use bytes::Bytes;
use cursor_connect::proto::agent::v1 as pb;
use cursor_connect::{Event, RunRequest, ToolPhase};
use cursor_mock::{MockServer, Scenario, Step};
use prost::Message as _;

fn update(message: pb::interaction_update::Message) -> Step {
    let server = pb::AgentServerMessage {
        message: Some(pb::agent_server_message::Message::InteractionUpdate(
            pb::InteractionUpdate {
                message: Some(message),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    Step::RawMessage(Bytes::from(server.encode_to_vec()))
}

#[tokio::test]
async fn progress_updates_become_events_in_order() {
    use pb::interaction_update::Message as U;
    let mcp_call = pb::ToolCall {
        tool: Some(pb::tool_call::Tool::McpToolCall(pb::McpToolCall {
            args: Some(pb::McpArgs {
                tool_name: "lookup".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    let steps = vec![
        Step::Heartbeat,
        update(U::SummaryStarted(pb::SummaryStartedUpdate {})),
        update(U::Summary(pb::SummaryUpdate {
            summary: "earlier: greetings".into(),
        })),
        update(U::SummaryCompleted(pb::SummaryCompletedUpdate {
            failed: Some(false),
            ..Default::default()
        })),
        update(U::StepStarted(pb::StepStartedUpdate { step_id: 3 })),
        update(U::ToolCallStarted(pb::ToolCallStartedUpdate {
            call_id: "c1".into(),
            tool_call: Some(mcp_call.clone()),
            ..Default::default()
        })),
        update(U::ToolCallCompleted(pb::ToolCallCompletedUpdate {
            call_id: "c1".into(),
            tool_call: Some(mcp_call),
            ..Default::default()
        })),
        // A case the client does not surface: skipped.
        update(U::PromptSuggestion(Default::default())),
        Step::TextDelta("done".into()),
        update(U::StepCompleted(pb::StepCompletedUpdate {
            step_id: 3,
            step_duration_ms: 250,
        })),
        Step::TurnEnded(cursor_mock::DEFAULT_USAGE),
        Step::EndOk,
    ];
    let mock = MockServer::builder()
        .named("progress", Scenario::new(steps))
        .start()
        .await
        .expect("mock");
    let client = common::client(&mock.url());
    let mut run = client
        .agent()
        .run(RunRequest::new("progress", "hi"))
        .await
        .expect("run");
    // Compared as Debug text: `ToolActivity` is non-exhaustive, so tests cannot build one.
    let mut seen = Vec::new();
    while let Some(event) = run.next_event().await.expect("no error") {
        match event {
            Event::TurnEnded(_) | Event::Checkpoint(_) | Event::TokenDelta(_) => {}
            other => seen.push(format!("{other:?}")),
        }
    }
    let tool = |phase: ToolPhase| {
        format!(
            r#"ToolActivity(ToolActivity {{ call_id: "c1", tool: "mcp:lookup", phase: {phase:?} }})"#
        )
    };
    let expected = [
        format!("{:?}", Event::SummaryStarted),
        format!("{:?}", Event::Summary("earlier: greetings".into())),
        format!("{:?}", Event::SummaryCompleted { failed: false }),
        format!("{:?}", Event::StepStarted(3)),
        tool(ToolPhase::Started),
        tool(ToolPhase::Completed),
        format!("{:?}", Event::TextDelta("done".into())),
        format!(
            "{:?}",
            Event::StepCompleted {
                step: 3,
                duration_ms: 250
            }
        ),
    ];
    assert_eq!(seen, expected);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
