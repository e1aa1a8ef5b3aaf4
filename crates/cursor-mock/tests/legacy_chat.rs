//! The legacy ChatService's strictness over HTTP/2 (the happy paths and sunset answers are
//! played by `cursor-connect`'s `tests/legacy_chat.rs`): a first message that is not a chat
//! request is refused with `invalid_argument` and recorded as a violation.

mod common;

use common::{In, connect, open};
use cursor_mock::{MessageKind, MockServer};
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;

const PATH: &str = "/aiserver.v1.ChatService/StreamUnifiedChatWithTools";

#[tokio::test]
async fn a_first_message_that_is_not_a_chat_request_is_refused() {
    let mock = MockServer::builder().start().await.expect("mock");
    let mut client = connect(mock.addr()).await;
    let mut call = open(&mut client, PATH, &[]).await;
    assert_eq!(call.status, 200);
    let result = ai::StreamUnifiedChatRequestWithTools {
        request: Some(
            ai::stream_unified_chat_request_with_tools::Request::ClientSideToolV2Result(
                ai::ClientSideToolV2Result::default(),
            ),
        ),
    };
    call.send_msg(&result.encode_to_vec());
    let In::End(json, _) = call.next_msg().await else {
        panic!("expected only an end-stream");
    };
    assert_eq!(json["error"]["code"], "invalid_argument", "{json}");
    let violations = mock.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0]
            .message
            .contains("stream_unified_chat_request")
    );
    let recorded = mock
        .received()
        .into_iter()
        .find(|c| c.path == PATH)
        .unwrap();
    assert_eq!(recorded.messages[0].kind, MessageKind::LegacyToolResult);
}
