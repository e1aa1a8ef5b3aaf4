//! Shutdown and reload: a drain lets a running stream finish while new requests get 503; the
//! drain deadline holds; the binary reloads on SIGHUP (refusing an invalid config) and exits 0
//! on SIGTERM, with no key or token in its debug-level log.

use std::path::Path;
use std::time::{Duration, Instant};

use cursor_mock::{DEFAULT_USAGE, MockServer, Step};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::Config;
use cursor_test_support::proxy::http::{bearer, chat, request};
use cursor_test_support::proxy::process::{ProxyProcess, Scratch};
use cursor_test_support::proxy::{config, mock_account, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-lifecycle-key";
const SLOW: &str = "slow-model";

async fn slow_mock(pause: Duration) -> MockServer {
    let steps = vec![
        Step::Heartbeat,
        Step::TextDelta("first ".into()),
        Step::Sleep(pause),
        Step::TextDelta("second".into()),
        Step::TurnEnded(DEFAULT_USAGE),
        Step::EndOk,
    ];
    MockServer::builder()
        .named(SLOW, cursor_mock::Scenario::new(steps))
        .start()
        .await
        .expect("mock")
}

/// Starts a streamed request and returns the connection once the first text arrived.
async fn open_stream(proxy: &Proxy) -> (tokio::net::TcpStream, Vec<u8>) {
    let body = chat(SLOW, true);
    let mut s = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("first ") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("first text in time")
            .unwrap();
        assert!(
            n > 0,
            "stream closed early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    (s, seen)
}

fn drain_config(deadline: Duration) -> Config {
    let mut cfg = config(KEY);
    cfg.ops.drain_timeout = deadline;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_running_streams_and_answers_new_requests_503() {
    let mock = slow_mock(Duration::from_millis(1500)).await;
    let proxy = start(
        &drain_config(Duration::from_secs(30)),
        vec![mock_account("a", &mock.url(), "tok")],
    )
    .await;
    let addr = proxy.addr();
    let (mut stream, mut seen) = open_stream(&proxy).await;
    let started = Instant::now();
    let drain = tokio::spawn(proxy.drain());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (h, v) = bearer(KEY);
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat("composer-2.5", false),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "draining");
    assert!(r.json()["request_id"].is_string());
    let health = request(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(health.status, 200, "probes still answered while draining");

    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen))
        .await
        .expect("stream ends")
        .unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("second") && text.contains("[DONE]"),
        "the running stream finished: {text}"
    );
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .expect("drain returns")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "closed after the drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_stops_at_its_deadline() {
    let mock = slow_mock(Duration::from_secs(60)).await;
    let proxy = start(
        &drain_config(Duration::from_millis(500)),
        vec![mock_account("a", &mock.url(), "tok")],
    )
    .await;
    let (_stream, _) = open_stream(&proxy).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), proxy.drain())
        .await
        .expect("drain returns");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

const ADMIN: &str = "admin-key-lifecycle-0123456789";
const SECOND: &str = "sk-lifecycle-second";

fn write_config(path: &Path, keys: &[(&str, &str)], extra: &str) {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN}\"\ndrain_timeout_secs = 5\n{extra}\n"
    );
    for (name, key) in keys {
        text.push_str(&format!(
            "[[keys]]\nname = \"{name}\"\nkey = \"{key}\"\nrequests_per_minute = 600\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

async fn chat_status(addr: std::net::SocketAddr, key: &str) -> u16 {
    let (h, v) = bearer(key);
    request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat("composer-2.5", false),
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reloads_on_sighup_exits_0_on_sigterm_and_logs_no_secret() {
    let dir = Scratch::new("lifecycle");
    let path = dir.path("proxy.toml");
    write_config(&path, &[("first", KEY)], "");
    // No saved account from the user's home: the binary runs on its embedded mock; never the
    // user's default state file either.
    let no_accounts = dir.path("no-accounts.json");
    let env = [
        ("RUST_LOG", "debug"),
        ("CURSOR_PROXY_ACCOUNTS_FILE", no_accounts.to_str().unwrap()),
    ];
    let args = ["--state", "memory"];
    let mut proxy = ProxyProcess::spawn_with(&path, &args, &env, dir.path("log")).await;
    let (pid, addr) = (proxy.child.id().unwrap(), proxy.addr);

    assert_eq!(chat_status(addr, KEY).await, 200);
    assert_eq!(chat_status(addr, SECOND).await, 401);
    let (h, v) = bearer(ADMIN);
    assert_eq!(
        request(addr, "GET", "/admin/v1/accounts", &[(h, &v)], "")
            .await
            .status,
        200
    );

    write_config(&path, &[("first", KEY), ("second", SECOND)], "");
    signal(pid, "HUP");
    let mut reloaded = false;
    for _ in 0..50 {
        if chat_status(addr, SECOND).await == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "SIGHUP applied the new key");

    // An invalid file is refused; both keys keep working.
    write_config(&path, &[("first", KEY), ("first", SECOND)], "");
    signal(pid, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(chat_status(addr, SECOND).await, 200);
    assert_eq!(chat_status(addr, KEY).await, 200);

    signal(pid, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), proxy.child.wait())
        .await
        .expect("exits within the drain deadline")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let log = strip_ansi(&proxy.log());
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        log.contains("reload refused") && log.contains("duplicate key name"),
        "{log}"
    );
    assert!(
        log.contains("request_id="),
        "request ids on log lines: {log}"
    );
    assert!(log.contains("DEBUG"), "debug level was on");
    for secret in [KEY, SECOND, ADMIN] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    // Not even the redactor had anything to hide: no code path logged a secret.
    assert!(!log.contains("[redacted]"), "{log}");
}

/// The log without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
