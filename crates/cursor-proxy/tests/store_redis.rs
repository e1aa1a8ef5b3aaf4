//! Two proxy processes on one private `redis-server`: a checkpoint made through one is used by
//! the other, a cooldown set by one holds on the other within a second, usage adds up, a key's
//! per-minute rate and daily token budget hold for both together. Redis
//! killed mid-run: the proxy keeps serving from memory, `/healthz` says `degraded` with the
//! reason, it reconnects when Redis is back, and each change of state is logged once.

use std::time::{Duration, Instant};

use cursor_mock::{ErrorSpec, MockServer, Scenario, Step, Usage};
use cursor_proxy::store::redis::RedisStore;
use cursor_proxy::store::{Limits, Store, caller_hash};
use cursor_test_support::proxy::http::{answer_text, chat_body, http_as, turn2_messages};
use cursor_test_support::proxy::process::{
    KEY, ProxyProcess, Redis, Scratch, config_file, http, run_requests,
};

const AEAD_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

async fn health(p: &ProxyProcess) -> serde_json::Value {
    let (status, body) = http(p.addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn chat(p: &ProxyProcess, model: &str, messages: &str) -> String {
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body(model, messages),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_checkpoints_cooldowns_and_usage() {
    let redis = Redis::start().await;
    let dir = Scratch::new("redis-two");
    let limited =
        Scenario::end_stream_error(ErrorSpec::rate_limited().with_metadata("retry-after", "600"));
    let a = MockServer::builder()
        .named("limited", limited)
        .start()
        .await
        .unwrap();
    let b = MockServer::start(Scenario::default()).await.unwrap();
    let c = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", a.url()), ("b", b.url()), ("c", c.url())]);
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--redis-key", AEAD_KEY];
    let one = ProxyProcess::spawn(&cfg, &args, dir.path("log1")).await;
    let two = ProxyProcess::spawn(&cfg, &args, dir.path("log2")).await;
    assert!(
        one.stdout
            .iter()
            .any(|l| l.contains("state: redis redis://127.0.0.1")),
        "{:?}",
        one.stdout
    );

    // Instance one: `a` cools down (the turn moves to `b`), the conversation lands on `c`.
    chat(&one, "limited", r#"[{"role":"user","content":"warm up"}]"#).await;
    let cooled_at = Instant::now();
    let answer = answer_text(
        &chat(
            &one,
            "composer-2.5",
            r#"[{"role":"user","content":"shared"}]"#,
        )
        .await,
    );
    let on_c = run_requests(&c);
    assert_eq!(on_c.len(), 1);
    let conv = on_c[0].conversation_id.clone().unwrap();
    let checkpoint = c.checkpoint(&conv).expect("a checkpoint");

    // Instance two sees the cooldown within a second.
    loop {
        let h = health(&two).await;
        if h["accounts"][0]["state"] == "cooldown" {
            break;
        }
        assert!(
            cooled_at.elapsed() < Duration::from_secs(1),
            "cooldown not shared in 1 s: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its rotation starts at `a`, which it now skips.
    chat(
        &two,
        "composer-2.5",
        r#"[{"role":"user","content":"fresh on two"}]"#,
    )
    .await;
    assert_eq!(
        run_requests(&a).len(),
        1,
        "only instance one's rate-limited turn reached a"
    );
    // Turn 2 of the conversation, through instance two: on `c`, with one's checkpoint, and the
    // blobs it refers to come from Redis (the mock fails the turn otherwise).
    let turn2 = turn2_messages("shared", &answer, "continue on two");
    chat(&two, "composer-2.5", &turn2).await;
    let on_c = run_requests(&c);
    assert_eq!(on_c.len(), 2, "turn 2 ran on c");
    assert_eq!(on_c[1].conversation_id.as_deref(), Some(conv.as_str()));
    assert_eq!(on_c[1].conversation_state.as_deref(), Some(&checkpoint[..]));

    // Usage from both instances adds up: four turns, one rate-limit error.
    let store = RedisStore::open(&url, None, Limits::default())
        .await
        .unwrap();
    let rows = store.usage().await.unwrap();
    let sum = |name: &str| -> u64 { rows.iter().filter_map(|(_, c)| c.get(name)).sum() };
    assert_eq!(sum("requests"), 4, "{rows:?}");
    assert_eq!(sum("errors.rate_limited"), 1, "{rows:?}");
    assert_eq!(
        sum("input_tokens"),
        4 * cursor_mock::DEFAULT_INPUT_TOKENS as u64
    );
    assert!(
        rows.iter().all(|(k, _)| k.caller == caller_hash(KEY)),
        "keyed by the hash"
    );
    for p in [&one, &two] {
        assert!(!p.log().contains(KEY), "the caller key is never logged");
    }
    // Instance one moved its rate-limited turn from `a` to `b`; its Redis calls are timed.
    let (status, metrics) = http(one.addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200, "{metrics}");
    for needle in [
        "cursor_proxy_upstream_failovers_total 1",
        r#"cursor_proxy_store_operation_seconds_bucket{backend="redis",operation="save_conversation""#,
        r#"cursor_proxy_store_operation_seconds_count{backend="redis",operation="add_usage"} 3"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in\n{metrics}");
    }
    one.kill9().await;
    two.kill9().await;
    redis.stop().await;
}

/// A streamed turn held open ~1.5 s, with a KV blob, a checkpoint and usage: each stream
/// writes to the store at its start and at its end.
fn held_open() -> Scenario {
    Scenario::new(vec![
        Step::Heartbeat,
        Step::KvSet(bytes::Bytes::from_static(b"held blob")),
        Step::TextDelta("Hello".into()),
        Step::Sleep(Duration::from_millis(1500)),
        Step::Text(" again.".into()),
        Step::Checkpoint,
        Step::TurnEnded(Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        }),
        Step::EndOk,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_50_streams_no_caller_sees_an_error() {
    let redis = Redis::start().await;
    let port = redis.port;
    let dir = Scratch::new("redis-down");
    let mock = MockServer::start(held_open()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);
    let url = redis.url();
    let p = ProxyProcess::spawn(&cfg, &["--redis", url.as_str()], dir.path("log")).await;
    assert_eq!(health(&p).await["status"], "ok");

    // 50 streams, started 40 ms apart, so that some are open across the kill, some start
    // during the outage and some span the restart.
    let mut streams = Vec::new();
    for i in 0..50u64 {
        let addr = p.addr;
        streams.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40 * i)).await;
            let body = format!(
                r#"{{"model":"composer-2.5","stream":true,"messages":[{{"role":"user","content":"stream {i}"}}]}}"#
            );
            http(addr, "POST", "/v1/chat/completions", &body).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let h = loop {
        let h = health(&p).await;
        if h["status"] == "degraded" {
            break h;
        }
        assert!(Instant::now() < deadline, "degraded within 3 s: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(h["store"]["health"]["status"], "degraded", "{h}");
    let reason = h["store"]["health"]["reason"].as_str().unwrap();
    assert!(reason.contains("redis unreachable"), "{h}");

    tokio::time::sleep(Duration::from_millis(600)).await;
    let redis = Redis::start_on(port).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(&p).await["status"] != "ok" {
        assert!(Instant::now() < deadline, "reconnected within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in streams {
        let (status, body) = s.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""finish_reason":"stop""#), "{body}");
        assert!(
            body.contains("[DONE]") && !body.contains(r#""error""#),
            "{body}"
        );
    }
    chat(&p, "composer-2.5", r#"[{"role":"user","content":"after"}]"#).await;
    let log = p.log();
    assert_eq!(
        log.matches("redis unreachable; serving from memory")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("redis reachable again").count(), 1, "{log}");
    p.kill9().await;
    redis.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_redis_only_encrypted_and_usage_only_hashed() {
    let redis = Redis::start().await;
    let url = redis.url();
    let key = cursor_proxy::ops::config::Secret::new(AEAD_KEY);
    let one = RedisStore::open(&url, Some(&key), Limits::default())
        .await
        .unwrap();
    let tokens = br#"{"access_token":"at-plain","refresh_token":"rt-plain"}"#.to_vec();
    one.save_credentials("acct", tokens.clone()).await.unwrap();

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: Vec<u8> = redis::cmd("GET")
        .arg("cursor-proxy:cred:acct")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert!(
        !raw.windows(8).any(|w| w == b"rt-plain" || w == b"at-plain"),
        "no token in clear"
    );
    // Another instance with the key reads them; one without the key does not see them; one
    // with another key gets a typed error, never garbage.
    let two = RedisStore::open(&url, Some(&key), Limits::default())
        .await
        .unwrap();
    assert_eq!(two.credentials("acct").await.unwrap(), Some(tokens));
    let keyless = RedisStore::open(&url, None, Limits::default())
        .await
        .unwrap();
    assert_eq!(keyless.credentials("acct").await.unwrap(), None);
    let other = cursor_proxy::ops::config::Secret::new("ab".repeat(32));
    let wrong = RedisStore::open(&url, Some(&other), Limits::default())
        .await
        .unwrap();
    assert!(wrong.credentials("acct").await.is_err());
    let bad = cursor_proxy::ops::config::Secret::new("too short");
    assert!(
        RedisStore::open(&url, Some(&bad), Limits::default())
            .await
            .is_err()
    );
    redis.stop().await;
}

/// Keys with limits, for the limits test: `rpm` may send 4 requests a minute, `daily` 1 token a
/// day (so its first turn uses up the day).
const LIMITED_KEYS: &str = r#"
[[keys]]
name = "rpm"
key = "sk-rpm-limited"
requests_per_minute = 4

[[keys]]
name = "daily"
key = "sk-daily-limited"
tokens_per_day = 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_enforce_one_rate_and_one_daily_budget() {
    let redis = Redis::start().await;
    let dir = Scratch::new("redis-limits");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str(LIMITED_KEYS);
    std::fs::write(&cfg, toml).unwrap();
    let url = redis.url();
    let args = ["--redis", url.as_str()];
    let one = ProxyProcess::spawn(&cfg, &args, dir.path("log1")).await;
    let two = ProxyProcess::spawn(&cfg, &args, dir.path("log2")).await;
    let send = |p: &ProxyProcess, key: &'static str, n: usize| {
        let addr = p.addr;
        async move {
            let body = chat_body(
                "composer-2.5",
                &format!(r#"[{{"role":"user","content":"limits {n}"}}]"#),
            );
            http_as(addr, key, "POST", "/v1/chat/completions", &body).await
        }
    };

    // The shared window is one wall-clock minute: stay clear of its end.
    let into_minute = cursor_proxy::store::now_ms() % 60_000;
    if into_minute > 50_000 {
        tokio::time::sleep(Duration::from_millis(60_500 - into_minute)).await;
    }
    // Each process alone would let 4 through (its own limiter has a burst of 4); together
    // they let 4 through in this minute, and refuse the rest naming the limit.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let p = if i % 2 == 0 { &one } else { &two };
        let (status, body) = send(p, "sk-rpm-limited", i).await;
        if status == 429 {
            assert!(body.contains("requests_per_minute"), "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "combined rate");

    // The daily budget: one's turn uses it up, two refuses the next (it reads the total from
    // Redis, not from its own memory).
    assert_eq!(send(&one, "sk-daily-limited", 10).await.0, 200);
    let (status, body) = send(&two, "sk-daily-limited", 11).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("tokens_per_day"), "{body}");
    assert_eq!(
        run_requests(&mock).len(),
        5,
        "refused requests never went upstream"
    );
    one.kill9().await;
    two.kill9().await;
    redis.stop().await;
}

const WEATHER_TOOLS: &str =
    r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]"#;

/// Turn 1 of a tool round through `p`: returns the model's tool call.
async fn tool_call(p: &ProxyProcess, question: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"model":"composer-2.5","messages":[{{"role":"user","content":"{question}"}}],"tools":{WEATHER_TOOLS}}}"#
    );
    let (status, body) = http(p.addr, "POST", "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{body}");
    v["choices"][0]["message"]["tool_calls"][0].clone()
}

/// Turn 2: the tool's result for `call`, through `p`.
async fn tool_result(p: &ProxyProcess, question: &str, call: &serde_json::Value) -> (u16, String) {
    let body = serde_json::json!({
        "model": "composer-2.5",
        "tools": serde_json::from_str::<serde_json::Value>(WEATHER_TOOLS).unwrap(),
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ]
    });
    http(p.addr, "POST", "/v1/chat/completions", &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_results_sent_to_the_other_instance_continue_the_same_run() {
    let redis = Redis::start().await;
    let dir = Scratch::new("redis-forward");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--instance-secret",
        "s3cret-instances",
    ];
    let one = ProxyProcess::spawn(&cfg, &args, dir.path("log1")).await;
    let two = ProxyProcess::spawn(&cfg, &args, dir.path("log2")).await;

    // The turn parks on one; its result reaches two, which forwards it to one: the same Run.
    let call = tool_call(&one, "weather?").await;
    let (status, body) = tool_result(&two, "weather?", &call).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("sunny"),
        "the mock echoes the tool result: {body}"
    );
    assert_eq!(
        run_requests(&mock).len(),
        1,
        "one upstream Run for both requests"
    );
    assert!(
        two.log()
            .contains("forwarded to the instance holding the parked turn")
    );

    // The owner dies with a turn parked: two continues from the stored checkpoint instead.
    let call = tool_call(&one, "weather in Oslo?").await;
    one.kill9().await;
    let (status, body) = tool_result(&two, "weather in Oslo?", &call).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(run_requests(&mock).len(), 3, "a new Run on two");
    assert!(
        two.log()
            .contains("is gone; continuing here from the checkpoint")
    );
    assert!(
        !two.log().contains("s3cret-instances"),
        "the secret is never logged"
    );
    two.kill9().await;
    redis.stop().await;
}
