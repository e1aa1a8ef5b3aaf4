//! The real `cursor-proxy` binary as a child process, a private `redis-server`, scratch
//! directories, and the run requests a cursor-mock recorded: what the tests that restart or
//! kill proxies, or run two on one Redis, need.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cursor_connect::proto::agent::v1::{AgentRunRequest, agent_client_message};
use cursor_mock::MockServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::http::http_as;

/// The caller key every spawned proxy accepts (`--api-key`; it is named `key-1`).
pub const KEY: &str = "sk-store-test";

/// One HTTP/1.1 exchange with [`KEY`]; returns status and body.
///
/// # Panics
/// As [`super::http::request`].
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_as(addr, KEY, method, path, body).await
}

/// A scratch directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new, empty one whose name starts with `name`.
    ///
    /// # Panics
    /// If it cannot be created.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cursor-proxy-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    /// `file` inside it.
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config file with one account per `(name, mock URL)` (token `tok-<name>`).
///
/// # Panics
/// If it cannot be written.
pub fn config_file(dir: &Scratch, accounts: &[(&str, String)]) -> PathBuf {
    let mut toml = String::new();
    for (name, url) in accounts {
        toml.push_str(&format!(
            "[[accounts]]\nname = \"{name}\"\ntoken = \"tok-{name}\"\nupstream = \"{url}\"\n"
        ));
    }
    let path = dir.path("proxy.toml");
    std::fs::write(&path, toml).expect("config file");
    path
}

/// The `cursor-proxy` binary cargo built for this test run: `CURSOR_PROXY_BIN` if set, else
/// next to the running test's directory (`target/<profile>/deps/<test>` →
/// `target/<profile>/cursor-proxy`), as cargo lays them out.
///
/// # Panics
/// If it is not there.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CURSOR_PROXY_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join(format!("cursor-proxy{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "cursor-proxy binary missing at {}: run the test through cargo in the cursor-proxy \
         package (which builds it), or set CURSOR_PROXY_BIN",
        bin.display()
    );
    bin
}

/// The proxy binary running as a child process (killed on drop).
#[derive(Debug)]
pub struct ProxyProcess {
    /// The child.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout up to the listening banner.
    pub stdout: Vec<String>,
    stderr: PathBuf,
}

impl ProxyProcess {
    /// Starts `cursor-proxy --config <config>` with `args` (plus a loopback port and [`KEY`]),
    /// logging to `log`, and waits (bounded) for its banner.
    ///
    /// # Panics
    /// If it does not start listening within 30 s.
    pub async fn spawn(config: &Path, args: &[&str], log: PathBuf) -> Self {
        Self::spawn_with(config, args, &[], log).await
    }

    /// [`ProxyProcess::spawn`] with environment variables `env` set (after the default
    /// `RUST_LOG=info`, so `RUST_LOG` may be among them).
    ///
    /// # Panics
    /// As [`ProxyProcess::spawn`].
    pub async fn spawn_with(
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Self {
        let mut child = Self::command(config, args, &log)
            .envs(env.iter().copied())
            .spawn()
            .expect("the cursor-proxy binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("stdout") {
                seen.push(line.clone());
                if let Some(rest) = line.strip_prefix("cursor-proxy on http://") {
                    let addr = rest.split_whitespace().next().expect("an address");
                    return addr.parse::<SocketAddr>().expect("a socket address");
                }
            }
            panic!(
                "cursor-proxy exited before listening: {seen:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        })
        .await
        .expect("cursor-proxy listens within 30 s");
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addr,
            stdout: seen,
            stderr: log,
        }
    }

    /// Runs `cursor-proxy` expecting it to fail at startup; returns its stderr.
    ///
    /// # Panics
    /// If it succeeds or does not exit within 30 s.
    pub async fn fail(config: &Path, args: &[&str], log: PathBuf) -> String {
        let mut child = Self::command(config, args, &log)
            .spawn()
            .expect("the cursor-proxy binary starts");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("cursor-proxy exits within 30 s")
            .expect("exit status");
        assert!(!status.success(), "cursor-proxy was expected to fail");
        std::fs::read_to_string(&log).expect("its log")
    }

    fn command(config: &Path, args: &[&str], log: &Path) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--api-key", KEY])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .kill_on_drop(true);
        // The environment must not add keys, accounts or state the test did not ask for.
        for var in [
            "CURSOR_ACCESS_TOKEN",
            "CURSOR_ACCESS_TOKENS",
            "CURSOR_API_KEY",
            "CURSOR_PROXY_STATE",
            "CURSOR_PROXY_REDIS",
            "CURSOR_PROXY_REDIS_KEY",
            "CURSOR_PROXY_API_KEYS",
            "CURSOR_PROXY_CONFIG",
            "CURSOR_PROXY_LISTEN",
            "CURSOR_PROXY_ADMIN_KEY",
            "CURSOR_PROXY_UPSTREAM",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `kill -9` and reap.
    ///
    /// # Panics
    /// If the child is not reaped within 10 s.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("killed child is reaped")
            .expect("exit status");
    }

    /// What the proxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// The run requests a mock received, in order.
pub fn run_requests(mock: &MockServer) -> Vec<AgentRunRequest> {
    mock.received()
        .iter()
        .filter(|c| c.path.ends_with("/Run"))
        .filter_map(|c| c.messages.first()?.decode().ok())
        .filter_map(|m| match m.message {
            Some(agent_client_message::Message::RunRequest(r)) => Some(r),
            _ => None,
        })
        .collect()
}

/// A free loopback port (bound then released; the caller binds it next).
///
/// # Panics
/// If no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A private `redis-server` on a free loopback port, without persistence; killed on drop.
#[derive(Debug)]
pub struct Redis {
    /// The server process.
    pub child: Child,
    /// Its port.
    pub port: u16,
}

impl Redis {
    /// Starts one and waits (bounded) until it answers.
    ///
    /// # Panics
    /// If `redis-server` is missing or does not answer within 10 s.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts one on `port` (a restart on the same port).
    ///
    /// # Panics
    /// As [`Redis::start`].
    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (.ci/peers installs it)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let _ = s.write_all(b"PING\r\n").await;
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n" {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server answers within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, port }
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
