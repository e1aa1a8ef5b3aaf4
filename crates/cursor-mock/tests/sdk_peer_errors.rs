//! Every scripted failure, run through Cursor's own SDK (`@cursor/sdk`): what the SDK reports
//! for each, asserted as observed with 1.0.32 so a change in the SDK shows up here. The local
//! agent runs with `enableAgentRetries: false`, so each failure is one `Run`.

mod sdk_peer {
    pub(crate) mod harness;
}

use cursor_mock::*;
use sdk_peer::harness::*;
use serde_json::json;

/// Runs `model`'s scenario once and returns the SDK's single send.
async fn failed_send(model: &str) -> serde_json::Value {
    let peer = start(MockServer::builder()).await;
    let report = run(&peer, json!({"name": model, "model": model})).await;
    let send = only_send(&report).clone();
    // Neither a throw nor a stray rejection: the failure is the run's result.
    assert!(send.get("thrown").is_none(), "{report}");
    assert!(send.get("streamThrown").is_none(), "{report}");
    assert_eq!(report["unhandled"], json!([]), "{report}");
    assert_eq!(send["status"], "error", "{report}");
    assert!(send["usage"].is_null(), "{report}");
    assert_no_violations(&peer);
    assert_eq!(peer.runs().len(), 1, "retries are off: one Run");
    send
}

fn message(send: &serde_json::Value) -> &str {
    send["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e01_not_logged_in_is_an_authentication_error() {
    let send = failed_send(names::ERROR_UNAUTHENTICATED).await;
    assert!(message(&send).starts_with("Authentication error"), "{send}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e02_model_no_longer_supported_shows_the_details_title() {
    let send = failed_send(names::ERROR_MODEL_RETIRED).await;
    assert!(message(&send).contains("is retired"), "{send}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_exhausted_with_details_shows_the_details_text() {
    let send = failed_send(names::ERROR_RATE_LIMITED).await;
    // The SDK reports the ErrorDetails title and detail, not the Connect code.
    assert!(message(&send).contains("unpaid invoice"), "{send}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_data_is_an_internal_stream_error() {
    let send = failed_send(names::RESET_AFTER_DATA).await;
    assert!(message(&send).contains("[internal]"), "{send}");
    assert!(message(&send).contains("INTERNAL_ERROR"), "{send}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_after_data_is_a_canceled_stream() {
    let send = failed_send(names::GOAWAY).await;
    assert!(message(&send).contains("[canceled]"), "{send}");
}

/// Seed 003 (`@cursor/sdk` 1.0.13 swallowed this): one data frame, then an `unauthenticated`
/// end-stream. 1.0.32 delivers the text, then ends the run with status `error` and the
/// authentication message, with no unhandled rejection. `cursor-connect` ends the same bytes
/// with a typed `Unauthenticated` error (crates/cursor-connect/tests/errors.rs,
/// `unauthenticated_after_one_data_frame_is_an_error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_error_after_one_data_frame_is_not_swallowed() {
    let send = failed_send(names::ERROR_AFTER_DATA).await;
    assert!(message(&send).starts_with("Authentication error"), "{send}");
    let deltas = send["deltas"].as_array().expect("deltas");
    assert_eq!(deltas, &[json!("text-delta")], "{send}");
}
