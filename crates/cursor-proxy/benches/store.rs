//! What the state store adds per request, in one run: three proxies (state in memory, in a
//! SQLite file, in a private `redis-server`) in front of one cursor-mock, each serving the
//! same two-turn conversations (turn 1 saves a checkpoint and its KV blobs and counts usage;
//! turn 2 reads them back). The requests go round robin over the three proxies so that
//! machine noise hits them alike; per-request latency p50 / p99 for each, and the difference
//! to memory ("added") with the ratio.
//!
//! `cargo bench -p cursor-proxy --bench store` (`BENCH_N` conversations, default 300).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cursor_mock::{MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{AccountConfig, Config, Secret, StateConfig, UpstreamMode};
use cursor_test_support::proxy::process::Redis;
use cursor_test_support::report::emit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "bench-key";

/// One non-streaming request on a fresh connection; returns its latency.
async fn request(addr: SocketAddr, body: &str) -> std::io::Result<Duration> {
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(req.as_bytes()).await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut reply))
        .await
        .map_err(std::io::Error::other)??;
    let took = start.elapsed();
    if !reply.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&reply).into_owned(),
        ));
    }
    Ok(took)
}

fn turn1(i: usize) -> String {
    format!(
        r#"{{"model":"composer-2.5","messages":[{{"role":"user","content":"conversation {i}"}}]}}"#
    )
}

fn turn2(i: usize) -> String {
    serde_json::json!({
        "model": "composer-2.5",
        "messages": [
            {"role": "user", "content": format!("conversation {i}")},
            {"role": "assistant", "content": cursor_mock::DEFAULT_TEXT},
            {"role": "user", "content": "and then?"},
        ]
    })
    .to_string()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn proxy(mock: &MockServer, state: StateConfig) -> Result<Proxy, Box<dyn std::error::Error>> {
    let account = AccountConfig {
        upstream: Some(mock.url()),
        ..AccountConfig::named("bench")
    };
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        upstream: UpstreamMode::Remote(mock.url()),
        api_keys: vec![Secret::new(KEY)],
        accounts: vec![(account, Secret::new("tok"))],
        state,
        ..Config::default()
    };
    Ok(Proxy::start(config).await?)
}

/// The markdown table: each backend's p50 / p99 and what it adds over memory (the first).
fn report(n: usize, backends: &[(&str, StateConfig)], samples: &[Vec<Duration>]) -> Vec<String> {
    let mut out = vec![
        "\n## State store (`crates/cursor-proxy/benches/store.rs`)\n".to_owned(),
        format!(
            "Per-request latency through the proxy, {n} two-turn conversations per backend ({} \
             requests each), requests round robin over the three proxies in one run. Target: \
             SQLite and Redis each add < 1 ms at p99 over memory.\n",
            2 * n
        ),
        "| backend | p50 ms | p99 ms | added p50 ms | added p99 ms | p50 ratio |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    let (m50, m99) = (pct(&samples[0], 0.5), pct(&samples[0], 0.99));
    for ((name, _), s) in backends.iter().zip(samples) {
        let (p50, p99) = (pct(s, 0.5), pct(s, 0.99));
        out.push(format!(
            "| {name} | {:.3} | {:.3} | {:+.3} | {:+.3} | {:.2}x |",
            ms(p50),
            ms(p99),
            ms(p50) - ms(m50),
            ms(p99) - ms(m99),
            p50.as_secs_f64() / m50.as_secs_f64()
        ));
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mock = MockServer::start(Scenario::default()).await?;
    let dir = std::env::temp_dir().join(format!("cursor-proxy-store-bench-{}", std::process::id()));
    let redis = Redis::start().await;
    let backends = [
        ("memory", StateConfig::Memory),
        ("sqlite", StateConfig::Sqlite(dir.join("state.sqlite3"))),
        (
            "redis",
            StateConfig::Redis {
                url: redis.url(),
                key: None,
            },
        ),
    ];
    let mut proxies = Vec::new();
    for (_, state) in &backends {
        proxies.push(proxy(&mock, state.clone()).await?);
    }
    // Warm-up: connections to the mock, SQLite statement cache, Redis connection.
    for (k, p) in proxies.iter().enumerate() {
        for i in 0..20 {
            request(p.addr(), &turn1(1_000_000 + k * 100 + i)).await?;
        }
    }
    let mut samples = vec![Vec::with_capacity(2 * n); proxies.len()];
    for i in 0..n {
        for (k, p) in proxies.iter().enumerate() {
            samples[k].push(request(p.addr(), &turn1(i)).await?);
            samples[k].push(request(p.addr(), &turn2(i)).await?);
        }
    }
    for s in &mut samples {
        s.sort();
    }
    emit(&report(n, &backends, &samples));
    for p in proxies {
        p.shutdown().await;
    }
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
