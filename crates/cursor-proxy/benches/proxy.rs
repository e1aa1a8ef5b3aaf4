//! Proxy overhead against cursor-mock on loopback, in one run:
//!
//! 1. Latency: time to the first answer text, through the proxy (HTTP request written -> first SSE
//!    bytes carrying text) and with `cursor-connect` used directly (run opened -> first
//!    `TextDelta`), sequentially; the difference of the percentiles is what the proxy adds.
//! 2. Load: 500 concurrent streaming requests through the proxy (a separate `cursor-proxy`
//!    process, so its memory is measured alone), each held open ~1 s by the mock; throughput and
//!    the proxy's peak RSS; then the same 500 turns with `cursor-connect` directly.
//!
//! `cargo bench -p cursor-proxy --bench proxy` (set `BENCH_N` for the latency sample size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cursor_connect::{Credentials, CursorClient, Event, RunRequest};
use cursor_mock::{MockServer, Scenario, Step, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "bench-key";
const CONCURRENT: usize = 500;

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

/// One streaming request over a fresh connection; returns (time to first text bytes, total).
async fn proxy_request(addr: &str, model: &str) -> std::io::Result<(Duration, Duration)> {
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let start = Instant::now();
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut first = None;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("read timed out"))??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if first.is_none() && contains(&buf, b"\"content\":") {
            first = Some(start.elapsed());
        }
        if contains(&buf, b"data: [DONE]") {
            break;
        }
    }
    if !contains(&buf, b"data: [DONE]") {
        return Err(std::io::Error::other(format!(
            "incomplete stream: {}",
            String::from_utf8_lossy(&buf)
        )));
    }
    Ok((first.unwrap_or_default(), start.elapsed()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
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

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
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
        .unwrap_or(1000);
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
    latency(&addr, &client, n).await?;
    concurrent_via_proxy(Arc::new(addr), pid).await;
    concurrent_direct(&client).await;
    child.kill().await?;
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

/// Time to first text, `n` sequential requests through the proxy and directly, interleaved.
async fn latency(
    addr: &str,
    client: &CursorClient,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // Warm both paths (connections, allocator).
    for _ in 0..50 {
        proxy_request(addr, "bench-quick").await?;
        direct_request(client, "bench-quick").await?;
    }
    let (mut via, mut direct) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        // Interleaved so both see the same machine load.
        via.push(proxy_request(addr, "bench-quick").await?.0);
        direct.push(direct_request(client, "bench-quick").await?.0);
    }
    via.sort();
    direct.sort();
    println!("latency to first text, {n} sequential requests (microseconds)");
    println!("  {:<22} {:>10} {:>10} {:>10}", "", "p50", "p99", "max");
    for (name, v) in [
        ("cursor-connect direct", &direct),
        ("through cursor-proxy", &via),
    ] {
        println!(
            "  {name:<22} {:>10.0} {:>10.0} {:>10.0}",
            us(pct(v, 0.5)),
            us(pct(v, 0.99)),
            us(pct(v, 1.0))
        );
    }
    println!(
        "  {:<22} {:>10.0} {:>10.0}",
        "added by the proxy",
        us(pct(&via, 0.5).saturating_sub(pct(&direct, 0.5))),
        us(pct(&via, 0.99).saturating_sub(pct(&direct, 0.99)))
    );
    Ok(())
}

/// 500 concurrent streams through the proxy, held open about a second each, with the proxy's
/// memory sampled while they run.
async fn concurrent_via_proxy(addr: Arc<String>, pid: u32) {
    let idle_rss = rss_kib(pid, "VmRSS:");
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
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
    println!("\n{CONCURRENT} concurrent streams through cursor-proxy (each held ~1 s by the mock)");
    println!(
        "  completed {ok}/{CONCURRENT} in {:.2} s: {:.0} streams/s",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    );
    println!(
        "  proxy RSS idle {} KiB, peak {} KiB: {:.1} KiB per open stream",
        idle_rss,
        peak_rss,
        peak_rss.saturating_sub(idle_rss) as f64 / CONCURRENT as f64
    );
}

/// The same load on `cursor-connect` directly.
async fn concurrent_direct(client: &CursorClient) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { direct_request(&client, "bench-held").await })
        })
        .collect();
    let ok = count_ok(tasks).await;
    let wall = start.elapsed();
    println!(
        "  cursor-connect direct: {ok}/{CONCURRENT} in {:.2} s: {:.0} streams/s",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    );
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
