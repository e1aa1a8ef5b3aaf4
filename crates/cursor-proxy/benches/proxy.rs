//! Proxy overhead against cursor-mock on loopback, in one run:
//!
//! 1. Latency: time to the first answer text, through the proxy (HTTP request written -> first
//!    SSE bytes carrying text) and with `cursor-connect` used directly (run opened -> first
//!    `TextDelta`). Both paths keep their connection across requests (HTTP/1.1 keep-alive to
//!    the proxy, the client's HTTP/2 connection to the mock). Requests go in pairs, one per
//!    path, in alternating order; what the proxy adds is reported as percentiles of the
//!    per-pair differences.
//! 2. Load: 500 concurrent streaming requests through the proxy (a separate `cursor-proxy`
//!    process, so its memory is measured alone), each held open ~1 s by the mock; throughput,
//!    the proxy's peak RSS and RSS per stream; the same 500 turns with `cursor-connect`
//!    directly; then 2,000 concurrent streams through the proxy, with peak and after-run RSS.
//!
//! `cargo bench -p cursor-proxy --bench proxy` (`BENCH_N` sets the number of latency pairs).

use cursor_test_support::report::emit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cursor_connect::{Credentials, CursorClient, Event, RunRequest};
use cursor_mock::{MockServer, Scenario, Step, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "bench-key";
const CONCURRENT: usize = 500;
/// The larger run that must stay bounded.
const BOUNDED_RUN: usize = 2000;

fn quick() -> Scenario {
    Scenario::new(vec![
        Step::Heartbeat,
        Step::TextDelta("Hello".into()),
        Step::Text(" from the bench turn.".into()),
        Step::TurnEnded(Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        }),
        Step::EndOk,
    ])
}

fn held_open() -> Scenario {
    Scenario::new(vec![
        Step::Heartbeat,
        Step::TextDelta("Hello".into()),
        Step::Sleep(Duration::from_secs(1)),
        Step::Text(" and goodbye.".into()),
        Step::TurnEnded(Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        }),
        Step::EndOk,
    ])
}

/// One HTTP/1.1 connection to the proxy, kept alive across requests (as the direct path keeps
/// its HTTP/2 connection), so both paths are measured without connection setup.
struct Conn {
    s: TcpStream,
    addr: String,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            s,
            addr: addr.to_owned(),
            buf: Vec::with_capacity(8192),
        })
    }

    /// One streaming chat completion; returns (time to the first text bytes, total). The
    /// response is chunked, so it ends at the `0` chunk after `data: [DONE]`.
    async fn request(&mut self, model: &str) -> std::io::Result<(Duration, Duration)> {
        let body = format!(
            r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.buf.clear();
        let start = Instant::now();
        self.s.write_all(req.as_bytes()).await?;
        let mut chunk = [0u8; 4096];
        let mut first = None;
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), self.s.read(&mut chunk))
                .await
                .map_err(|_| std::io::Error::other("read timed out"))??;
            if n == 0 {
                return Err(std::io::Error::other(format!(
                    "connection closed mid-response: {}",
                    String::from_utf8_lossy(&self.buf)
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if first.is_none() && contains(&self.buf, b"\"content\":") {
                first = Some(start.elapsed());
            }
            if self.buf.ends_with(b"\r\n0\r\n\r\n") && contains(&self.buf, b"data: [DONE]") {
                break;
            }
        }
        Ok((first.unwrap_or_default(), start.elapsed()))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One request on its own connection (for the concurrency runs, where every stream needs one).
async fn proxy_request(addr: &str, model: &str) -> std::io::Result<(Duration, Duration)> {
    Conn::open(addr).await?.request(model).await
}

async fn direct_request(
    client: &CursorClient,
    model: &str,
) -> Result<(Duration, Duration), cursor_connect::Error> {
    let start = Instant::now();
    let mut run = client.agent().run(RunRequest::new(model, "hi")).await?;
    let mut first = None;
    while let Some(ev) = run.next_event().await? {
        if first.is_none() && matches!(ev, Event::TextDelta(_)) {
            first = Some(start.elapsed());
        }
    }
    Ok((first.unwrap_or_default(), start.elapsed()))
}

/// Nearest-rank percentile `p` (0..=100) of sorted `v`.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mock = MockServer::builder()
        .named("bench-quick", quick())
        .named("bench-held", held_open())
        .start()
        .await?;
    let (mut child, addr) = spawn_proxy(&mock.url()).await?;
    let pid = child.id().ok_or("proxy exited")?;
    let client = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token("bench-token"))
        .build()?;
    let mut out = vec![
        "\n## Proxy (`crates/cursor-proxy/benches/proxy.rs`)\n".to_string(),
        "cursor-proxy as its own process in front of cursor-mock on loopback, against `cursor-connect` used directly on the same mock.".into(),
    ];
    latency(&mut out, &addr, &client, n).await?;
    concurrent_via_proxy(&mut out, Arc::new(addr.clone()), pid, CONCURRENT).await;
    concurrent_direct(&mut out, &client).await;
    concurrent_via_proxy(&mut out, Arc::new(addr), pid, BOUNDED_RUN).await;
    child.kill().await?;
    emit(&out);
    Ok(())
}

/// The proxy as its own process, on Cursor's protocol to the mock; returns it and its address
/// once it accepts connections.
async fn spawn_proxy(
    upstream: &str,
) -> Result<(tokio::process::Child, String), Box<dyn std::error::Error>> {
    let bin = env!("CARGO_BIN_EXE_cursor-proxy");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let addr = format!("127.0.0.1:{port}");
    let child = tokio::process::Command::new(bin)
        .args(["--listen", &addr, "--upstream", upstream, "--api-key", KEY])
        .env("CURSOR_ACCESS_TOKEN", "bench-token")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let ready = Instant::now();
    while TcpStream::connect(&addr).await.is_err() {
        if ready.elapsed() > Duration::from_secs(20) {
            return Err("proxy did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, addr))
}

/// Time to first text over persistent connections on both paths: `n` pairs of sequential
/// requests, one through the proxy and one direct, in alternating order; the proxy's cost is
/// the per-pair difference, whose percentiles are reported (not a difference of percentiles).
async fn latency(
    out: &mut Vec<String>,
    addr: &str,
    client: &CursorClient,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = Conn::open(addr).await?;
    // Warm both paths (connections, allocator).
    for _ in 0..50 {
        conn.request("bench-quick").await?;
        direct_request(client, "bench-quick").await?;
    }
    let (mut via, mut direct) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        if i % 2 == 0 {
            via.push(conn.request("bench-quick").await?);
            direct.push(direct_request(client, "bench-quick").await?);
        } else {
            direct.push(direct_request(client, "bench-quick").await?);
            via.push(conn.request("bench-quick").await?);
        }
    }
    let pick = |v: &[(Duration, Duration)], total: bool| -> Vec<f64> {
        v.iter()
            .map(|(f, t)| us(if total { *t } else { *f }))
            .collect()
    };
    let diff = |total: bool| -> Vec<f64> {
        let (a, b) = (pick(&via, total), pick(&direct, total));
        sorted(a.iter().zip(&b).map(|(x, y)| x - y).collect())
    };
    out.push(format!(
        "\n### Latency: {n} request pairs, persistent connections on both paths\n"
    ));
    out.push("Microseconds. Time to first token: request written → first SSE bytes carrying text (proxy); run opened → first `TextDelta` (direct). \"Added\" rows are percentiles of the per-pair differences (proxy − direct, each pair adjacent in time, order alternating). Target: added p99 < 250 µs.\n".into());
    out.push("| measure | p50 | p99 | p99.9 |".into());
    out.push("|---|---|---|---|".into());
    let rows = [
        ("direct, time to first token", sorted(pick(&direct, false))),
        ("proxy, time to first token", sorted(pick(&via, false))),
        ("added by the proxy, time to first token", diff(false)),
        ("direct, whole turn", sorted(pick(&direct, true))),
        ("proxy, whole turn", sorted(pick(&via, true))),
        ("added by the proxy, whole turn", diff(true)),
    ];
    for (name, v) in rows {
        out.push(format!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            pct(&v, 50.0),
            pct(&v, 99.0),
            pct(&v, 99.9)
        ));
    }
    Ok(())
}

/// `streams` concurrent streams through the proxy, each on its own connection and held open
/// about a second by the mock, with the proxy's RSS sampled while they run and read again
/// once they are done (a bounded run returns to near idle).
async fn concurrent_via_proxy(out: &mut Vec<String>, addr: Arc<String>, pid: u32, streams: usize) {
    let idle_rss = rss_kib(pid, "VmRSS:");
    let start = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let addr = Arc::clone(&addr);
            tokio::spawn(async move { proxy_request(&addr, "bench-held").await })
        })
        .collect();
    let mut peak_rss = idle_rss;
    while !tasks.iter().all(|t| t.is_finished()) {
        peak_rss = peak_rss.max(rss_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ok = count_ok(tasks).await;
    let wall = start.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(pid, "VmRSS:");
    if streams == CONCURRENT {
        out.push("\n### Concurrent streams (each held ~1 s by the mock)\n".into());
        out.push(format!("Targets: < 32 KiB per stream at {CONCURRENT} streams; the {BOUNDED_RUN}-stream run completes with a bounded peak RSS.\n"));
        out.push("| run | completed | wall | streams/s | proxy RSS idle | peak | after | peak − idle per stream |".into());
        out.push("|---|---|---|---|---|---|---|---|".into());
    }
    out.push(format!(
        "| {streams} streams through cursor-proxy | {ok}/{streams} | {:.2} s | {:.0} | {idle_rss} KiB | {peak_rss} KiB | {after} KiB | {:.1} KiB |",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64(),
        peak_rss.saturating_sub(idle_rss) as f64 / streams as f64
    ));
}

/// The same load on `cursor-connect` directly.
async fn concurrent_direct(out: &mut Vec<String>, client: &CursorClient) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { direct_request(&client, "bench-held").await })
        })
        .collect();
    let ok = count_ok(tasks).await;
    let wall = start.elapsed();
    out.push(format!(
        "| {CONCURRENT} streams on cursor-connect directly | {ok}/{CONCURRENT} | {:.2} s | {:.0} | – | – | – | – |",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    ));
}

/// How many of `tasks` finished with `Ok`.
async fn count_ok<T, E>(tasks: Vec<tokio::task::JoinHandle<Result<T, E>>>) -> usize {
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(_))) {
            ok += 1;
        }
    }
    ok
}
