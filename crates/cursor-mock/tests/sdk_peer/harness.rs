//! Test helpers over `cursor_mock::sdk_peer`: a failure to run the SDK fails the test.
// Shared by two test binaries; each uses a part.
#![allow(dead_code)]

use cursor_mock::ReceivedCall;
use cursor_mock::sdk_peer::SdkPeer;
use cursor_proto::agent::v1 as pb;

/// The SDK pointed at a TLS mock built by `builder`.
pub(crate) async fn start(builder: cursor_mock::MockBuilder) -> SdkPeer {
    SdkPeer::start(builder)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The SDK pointed at a plain-`http://` mock built by `builder`.
pub(crate) async fn start_plain(builder: cursor_mock::MockBuilder) -> SdkPeer {
    SdkPeer::start_plain(builder)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one case and returns the SDK's report.
pub(crate) async fn run(peer: &SdkPeer, spec: serde_json::Value) -> serde_json::Value {
    peer.run(&spec)
        .await
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Fails with every violation the mock recorded (unexpected calls included).
pub(crate) fn assert_no_violations(peer: &SdkPeer) {
    let violations = peer.mock().violations();
    assert!(violations.is_empty(), "mock violations: {violations:#?}");
}

/// The exec results of a `Run` call.
pub(crate) fn exec_results(call: &ReceivedCall) -> Vec<pb::ExecClientMessage> {
    call.client_messages()
        .into_iter()
        .filter_map(|m| match m.message {
            Some(pb::agent_client_message::Message::ExecClientMessage(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// The one send of a single-prompt report.
pub(crate) fn only_send(report: &serde_json::Value) -> &serde_json::Value {
    assert!(report.get("thrown").is_none(), "the SDK threw: {report}");
    let sends = report["sends"].as_array().expect("sends");
    assert_eq!(sends.len(), 1, "{report}");
    &sends[0]
}

/// Fails unless the turn's text ends with the mock's echo of the SDK's `lookup` tool result
/// (the custom tool ran in the SDK and its result went back upstream).
pub(crate) fn assert_lookup_echoed(report: &serde_json::Value) {
    let result = only_send(report)["result"].as_str().unwrap_or_default();
    let echo = format!(
        "{}custom-user-tools-lookup: sdk ran lookup",
        cursor_mock::TOOL_ECHO_PREFIX
    );
    assert!(result.ends_with(&echo), "{report}");
}
