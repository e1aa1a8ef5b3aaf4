//! The legacy `aiserver.v1.ChatService` call against cursor-mock, over HTTP/2
//! (`StreamUnifiedChatWithTools`) and both HTTP/1.1 forms (`…SSE`, `…Poll` + `BidiAppend`):
//! text and thinking, a streamed MCP tool call answered on the same call, the IDE header set
//! with its checksum, and the sunset answers classified as an outdated client/service that
//! points the user at the agent service.

mod common;

use std::time::Duration;

use common::*;
use cursor_connect::classify::{Category, LEGACY_CHAT_HINT};
use cursor_connect::{
    Credentials, CursorClient, Error, Event, LegacyChat, RunRequest, ToolResult, Transport,
};
use cursor_mock::{MessageKind, MockServer, ReceivedCall};
use cursor_proto::aiserver::v1 as ai;
use cursor_proto::paths;
use prost::Message as _;

const TRANSPORTS: [Transport; 3] = [
    Transport::Http2,
    Transport::Http1Stream,
    Transport::Http1Poll,
];

fn client(mock: &MockServer, transport: Transport) -> CursorClient {
    CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .transport(transport)
        .stall_timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

/// The call that carried the chat (the first poll, in poll mode).
fn chat_call(mock: &MockServer, transport: Transport) -> ReceivedCall {
    let path = match transport {
        Transport::Http1Stream => paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_SSE.path,
        Transport::Http1Poll => paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_POLL.path,
        _ => paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS.path,
    };
    let found = mock.received().into_iter().find(|c| c.path == path);
    found.expect("the chat call")
}

#[derive(Debug, Default)]
struct Answer {
    text: String,
    thinking: String,
    calls: usize,
    end: Option<Result<(), Error>>,
}

/// Reads a chat to its end, answering each tool call with `reply`.
async fn read(chat: &mut LegacyChat, reply: &str) -> Answer {
    let mut out = Answer::default();
    let fut = async {
        loop {
            match chat.next_event().await {
                Ok(Some(Event::TextDelta(t))) => out.text.push_str(&t),
                Ok(Some(Event::ThinkingDelta(t))) => out.thinking.push_str(&t),
                Ok(Some(Event::ToolCall(call))) => {
                    out.calls += 1;
                    assert_eq!(call.id, cursor_mock::LEGACY_TOOL_CALL_ID);
                    assert_eq!(call.name, "mock_echo");
                    assert_eq!(call.arguments, r#"{"query":"ping"}"#);
                    chat.respond(&call.id, ToolResult::text(reply))
                        .await
                        .unwrap();
                }
                Ok(Some(other)) => panic!("unexpected event {other:?}"),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    };
    out.end = Some(
        tokio::time::timeout(RUN_DEADLINE, fut)
            .await
            .expect("in time"),
    );
    out
}

#[tokio::test]
async fn text_and_thinking_with_the_ide_headers() {
    for transport in TRANSPORTS {
        let mock = MockServer::builder().start().await.unwrap();
        let req = RunRequest::new("claude-4-sonnet", "hello").system_prompt("be kind");
        let mut chat = client(&mock, transport)
            .legacy_chat()
            .chat(&req)
            .await
            .unwrap();
        assert_eq!(chat.transport(), transport);
        let out = read(&mut chat, "").await;
        assert!(
            matches!(out.end, Some(Ok(()))),
            "{transport}: {:?}",
            out.end
        );
        assert_eq!(out.text, cursor_mock::LEGACY_TEXT, "{transport}");
        assert_eq!(out.thinking, cursor_mock::LEGACY_THINKING);
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
        let call = chat_call(&mock, transport);
        assert_eq!(call.headers["x-cursor-client-type"], "ide");
        let checksum = call.headers["x-cursor-checksum"].to_str().unwrap();
        assert!(
            cursor_connect::checksum::decode_prefix(checksum).is_some(),
            "{checksum}"
        );
        assert!(call.headers.contains_key("x-session-id"));
        let first = &call.messages[0];
        assert_eq!(first.kind, MessageKind::LegacyChatRequest);
        let sent = ai::StreamUnifiedChatRequestWithTools::decode(first.payload.clone()).unwrap();
        let Some(ai::stream_unified_chat_request_with_tools::Request::StreamUnifiedChatRequest(r)) =
            sent.request
        else {
            panic!("request case");
        };
        assert_eq!(r.conversation.last().unwrap().text, "hello");
        assert_eq!(r.explicit_context.unwrap().context, "be kind");
        let model = r.model_details.unwrap().model_name;
        assert_eq!(model.as_deref(), Some("claude-4-sonnet"));
    }
}

#[tokio::test]
async fn a_streamed_tool_call_is_answered_on_the_same_call() {
    for transport in TRANSPORTS {
        let mock = MockServer::builder().start().await.unwrap();
        let req = RunRequest::new(cursor_mock::LEGACY_TOOL_SCENARIO, "use it")
            .tools(vec![tool("mock_echo")]);
        let mut chat = client(&mock, transport)
            .legacy_chat()
            .chat(&req)
            .await
            .unwrap();
        let out = read(&mut chat, "pong").await;
        assert!(
            matches!(out.end, Some(Ok(()))),
            "{transport}: {:?}",
            out.end
        );
        assert_eq!(out.calls, 1);
        assert_eq!(out.text, format!("{}pong", cursor_mock::LEGACY_TOOL_PREFIX));
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
        let call = chat_call(&mock, transport);
        let results: Vec<_> = call.messages_of(MessageKind::LegacyToolResult).collect();
        assert_eq!(results.len(), 1, "{transport}");
    }
}

#[tokio::test]
async fn sunset_answers_are_an_outdated_service_never_a_rate_limit() {
    for name in [
        cursor_mock::LEGACY_UPDATE_REQUIRED,
        cursor_mock::LEGACY_UNSUPPORTED_REGION,
        cursor_mock::LEGACY_OUTDATED_CLIENT,
    ] {
        for transport in TRANSPORTS {
            let mock = MockServer::builder().start().await.unwrap();
            let req = RunRequest::new(name, "hello");
            let mut chat = client(&mock, transport)
                .legacy_chat()
                .chat(&req)
                .await
                .unwrap();
            let out = read(&mut chat, "").await;
            let Some(Err(e)) = out.end else {
                panic!("{name} {transport}: {:?}", out.end)
            };
            let c = e.classification().expect("classified");
            assert_eq!(
                c.category(),
                Category::OutdatedClient,
                "{name} {transport}: {e}"
            );
            assert_ne!(c.category(), Category::RateLimited);
            assert_eq!(c.hint(), Some(LEGACY_CHAT_HINT));
            assert!(!c.advice().is_retryable());
            assert!(e.to_string().contains("use the agent service"), "{e}");
            assert!(e.is_before_output());
            assert!(e.error_details().is_some());
            // Sticky.
            assert!(chat.next_event().await.is_err());
        }
    }
}
