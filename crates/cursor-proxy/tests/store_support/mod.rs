//! Shared by the `store_*` tests: the real `cursor-proxy` binary as a child process, a plain
//! HTTP/1.1 caller, a private `redis-server`, and the mock's recorded run requests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cursor_connect::proto::agent::v1::{AgentRunRequest, agent_client_message};
use cursor_mock::MockServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The caller key every store test uses.
pub const KEY: &str = "sk-store-test";

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cursor-proxy-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config file with one account per `(name, mock URL)`.
pub fn config_file(dir: &Scratch, accounts: &[(&str, String)]) -> PathBuf {
    let mut toml = String::new();
    for (name, url) in accounts {
        toml.push_str(&format!(
            "[[accounts]]\nname = \"{name}\"\ntoken = \"tok-{name}\"\nupstream = \"{url}\"\n"
        ));
    }
    let path = dir.path("proxy.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The proxy binary running as a child process.
pub struct ProxyProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: Vec<String>,
    stderr: PathBuf,
}

impl ProxyProcess {
    /// Starts `cursor-proxy` with `args` (plus a loopback port and the test key) and waits
    /// (bounded) for its banner.
    pub async fn spawn(config: &Path, args: &[&str], log: PathBuf) -> Self {
        let mut child = Self::command(config, args, &log)
            .spawn()
            .expect("the cursor-proxy binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                seen.push(line.clone());
                if let Some(rest) = line.strip_prefix("cursor-proxy on http://") {
                    let addr = rest.split_whitespace().next().unwrap();
                    return addr.parse::<SocketAddr>().unwrap();
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
    pub async fn fail(config: &Path, args: &[&str], log: PathBuf) -> String {
        let mut child = Self::command(config, args, &log).spawn().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("cursor-proxy exits within 30 s")
            .unwrap();
        assert!(!status.success(), "cursor-proxy was expected to fail");
        std::fs::read_to_string(&log).unwrap()
    }

    fn command(config: &Path, args: &[&str], log: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cursor-proxy"));
        cmd.arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--api-key", KEY])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true);
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
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `kill -9` and reap.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("killed child is reaped")
            .unwrap();
    }

    /// What the proxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// One HTTP/1.1 exchange with the test key; returns status and (de-chunked) body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_as(addr, KEY, method, path, body).await
}

/// [`http`] with caller key `key`.
pub async fn http_as(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("reply within 30 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A non-streaming chat request with `messages` (JSON array text) on `model`.
pub fn chat_body(model: &str, messages: &str) -> String {
    format!(r#"{{"model":"{model}","messages":{messages}}}"#)
}

/// The first turn of conversation `first` and the second turn after `answer`.
pub fn turn2_messages(first: &str, answer: &str, next: &str) -> String {
    serde_json::json!([
        {"role": "user", "content": first},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": next},
    ])
    .to_string()
}

/// The assistant text of a chat completion.
pub fn answer_text(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {body}"))
        .to_owned()
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

/// A free loopback port (bound then released; the redis-server below binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts one and waits (bounded) until it answers.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts one on `port` (a restart on the same port).
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and reaps it.
    pub async fn stop(mut self) {
        self.child.start_kill().unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
