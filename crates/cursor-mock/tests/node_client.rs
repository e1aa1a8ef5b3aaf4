//! A third-party client: @connectrpc/connect-node (npm), with message types built at run time
//! from the FileDescriptorSet of our `proto/`, completes a Run against the mock and receives a
//! scripted error. Needs `tests/node-client/setup.sh` (npm ci) first; fails without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use cursor_mock::*;

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-client")
}

/// Runs `node run.mjs` against `url` and returns its JSON line.
async fn run_node(
    descriptors: &Path,
    url: &str,
    model: &str,
    tool: Option<&str>,
) -> serde_json::Value {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/@connectrpc/connect-node").is_dir(),
        "node_modules missing: run crates/cursor-mock/tests/node-client/setup.sh (npm ci) first"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(&dir)
        .arg("run.mjs")
        .arg(descriptors)
        .arg(url)
        .arg(model)
        .kill_on_drop(true);
    if let Some(tool) = tool {
        command.arg(tool);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("node finished within 60 s")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed: {stderr}\n{stdout}");
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("bad JSON from node ({e}): {stdout}\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_node_completes_a_run_and_receives_a_scripted_error() {
    let scratch = std::env::temp_dir().join(format!("cursor-mock-node-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let descriptors = scratch.join("cursor.fds");
    std::fs::write(&descriptors, cursor_proto::FILE_DESCRIPTOR_SET).expect("write descriptors");

    let mock = MockServer::builder()
        .heartbeat_interval(Duration::from_millis(200))
        .start()
        .await
        .expect("start");

    // A full default turn, with one declared tool answered inline.
    let ok = run_node(&descriptors, &mock.url(), "composer-2.5", Some("lookup")).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(
        ok["text"],
        format!("{DEFAULT_TEXT}{TOOL_ECHO_PREFIX}lookup: node ran lookup")
    );
    assert_eq!(ok["thinking"], DEFAULT_THINKING);
    assert_eq!(ok["toolCalls"], serde_json::json!(["lookup"]));
    assert_eq!(ok["checkpoints"], 3);
    assert_eq!(
        ok["usage"],
        serde_json::json!([
            DEFAULT_INPUT_TOKENS,
            DEFAULT_OUTPUT_TOKENS,
            DEFAULT_CACHE_READ_TOKENS,
            DEFAULT_CACHE_WRITE_TOKENS,
            DEFAULT_REASONING_TOKENS
        ])
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    // The scripted error after data: text first, then a typed error with the real details.
    let err = run_node(&descriptors, &mock.url(), names::ERROR_AFTER_DATA, None).await;
    assert_eq!(err["ok"], false, "{err}");
    assert_eq!(err["code"], "Unauthenticated");
    assert_eq!(err["message"], "Error");
    assert_eq!(err["textBefore"], PARTIAL_TEXT);
    assert_eq!(err["details"][0]["type"], ERROR_DETAILS_TYPE);
    let value = base64::engine::general_purpose::STANDARD
        .decode(err["details"][0]["value"].as_str().expect("value"))
        .expect("base64");
    let expected = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(NOT_LOGGED_IN_DETAILS_B64)
        .expect("E01");
    assert_eq!(value, expected);

    let calls = mock.received();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.path == RUN_PATH));
    assert_eq!(calls[0].messages[0].kind, MessageKind::RunRequest);
    let _ = std::fs::remove_dir_all(&scratch);
}
