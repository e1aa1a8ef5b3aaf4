//! Cursor's own SDK on its HTTP/1.1 path: pointed at the mock over plain `http://` with a server
//! config that does not force bidi, it streams the turn with `RunSSE` and sends every client
//! message in a `BidiAppend` call. A text turn and a tool turn complete, asserted from both ends.

mod sdk_peer {
    pub(crate) mod harness;
}

use cursor_mock::*;
use cursor_proto::aiserver::v1::Http2Config;
use sdk_peer::harness::*;
use serde_json::json;

fn http1_mock() -> MockBuilder {
    MockServer::builder().http2_config(Http2Config::ForceAllDisabled)
}

/// Every turn went over RunSSE, fed by BidiAppend calls numbered from 0 without gaps.
fn assert_http1_path(peer: &cursor_mock::sdk_peer::SdkPeer) {
    let calls = peer.mock().received();
    assert!(
        calls.iter().all(|c| c.path != RUN_PATH),
        "no HTTP/2 Run on this path"
    );
    let sse = calls
        .iter()
        .filter(|c| c.path == cursor_proto::paths::AGENT_RUN_SSE.path)
        .count();
    let appends = calls
        .iter()
        .filter(|c| c.path == cursor_proto::paths::AISERVER_BIDI_APPEND.path)
        .count();
    assert_eq!(sse, 1, "one RunSSE stream");
    let run = &peer.runs()[0];
    assert!(
        run.run_request().is_some(),
        "the run request came in an append"
    );
    // Appends may be retried (same seqno); each message reached the stream once.
    assert!(
        appends >= run.messages.len(),
        "{appends} appends, {} messages",
        run.messages.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_turn_completes_over_runsse_and_bidiappend() {
    let peer = start_plain(http1_mock()).await;
    let report = run(&peer, json!({"name": "h1-text", "prompts": ["hello"]})).await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    assert_eq!(send["result"], DEFAULT_TEXT, "{report}");
    assert_no_violations(&peer);
    assert_http1_path(&peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_turn_completes_over_runsse_and_bidiappend() {
    let peer = start_plain(http1_mock()).await;
    let report = run(&peer, json!({"name": "h1-tool", "tools": ["lookup"]})).await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    // ...and the mock echoed the result it got back into the text after the call.
    assert_lookup_echoed(&report);
    assert_no_violations(&peer);
    assert_http1_path(&peer);
}
