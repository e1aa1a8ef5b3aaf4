//! End to end over loopback: the real `openai` and `anthropic` Python SDKs (from the virtualenv
//! made by `tests/sdk/setup.sh`) talk to cursor-proxy, which talks HTTP/2 to cursor-mock through
//! `cursor-connect`. These tests fail when the virtualenv is missing: run `tests/sdk/setup.sh`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cursor_connect::classify::Category;
use cursor_connect::proto::agent::v1::AgentRunRequest;
use cursor_mock::{ErrorSpec, MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_proxy::engine::pool::{Account, AccountHealth};
use cursor_test_support::proxy::process::run_requests;
use serde_json::Value;

const PROXY_KEY: &str = "sk-proxy-SECRET-e2e-7f3a";
const TOKEN_PREFIX: &str = "cursor-token-SECRET-e2e";

// ---- log capture: everything every test logs, at debug level, unredacted ----

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Capture(Arc::clone(&buf));
        // The raw capture (no redacting writer): it proves no code path logs a secret at all.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,h2=info,hyper=info,hyper_util=info")
            .with_writer(move || w.clone())
            .with_ansi(false)
            .try_init();
        buf
    })
}

fn assert_log_has_no_secret() -> String {
    let text = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    for secret in [PROXY_KEY, TOKEN_PREFIX, "SECRET"] {
        assert!(!text.contains(secret), "log contains {secret:?}:\n{text}");
    }
    text
}

// ---- harness ----

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

fn python() -> PathBuf {
    let p = sdk_dir().join(".venv/bin/python");
    assert!(
        p.exists(),
        "the SDK virtualenv is missing: run crates/cursor-proxy/tests/sdk/setup.sh (expected {})",
        p.display()
    );
    p
}

fn account(name: &str, url: &str) -> Account {
    cursor_test_support::proxy::mock_account(name, url, &format!("{TOKEN_PREFIX}-{name}"))
}

async fn proxy_over(accounts: Vec<Account>) -> Proxy {
    log();
    let config = cursor_test_support::proxy::config(PROXY_KEY);
    cursor_test_support::proxy::start(&config, accounts).await
}

async fn case(proxy: &Proxy, name: &str, model: Option<&str>, key: &str) -> Value {
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(sdk_dir().join("cases.py"))
        .arg(name)
        .env("PROXY_URL", format!("http://{}", proxy.addr()))
        .env("PROXY_KEY", key)
        .kill_on_drop(true);
    if let Some(m) = model {
        cmd.env("PROXY_MODEL", m);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("case {name} timed out"))
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "case {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    let v: Value = serde_json::from_str(line).unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "{name} ({} ms): {v}",
        started.elapsed().as_millis()
    );
    v
}

fn run_calls(mock: &MockServer) -> usize {
    mock.received()
        .iter()
        .filter(|c| c.path.ends_with("/Run"))
        .count()
}

// ---- cases ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_text_streaming_and_not_with_usage_and_reasoning() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "openai_text", None, PROXY_KEY).await;
    assert_eq!(v["stream_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(v["nonstream_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(v["stream_reasoning"], cursor_mock::DEFAULT_THINKING);
    assert_eq!(v["nonstream_reasoning"], cursor_mock::DEFAULT_THINKING);
    for u in [&v["usage"], &v["nonstream_usage"]] {
        assert_eq!(u["prompt_tokens"], cursor_mock::DEFAULT_INPUT_TOKENS);
        assert_eq!(u["completion_tokens"], cursor_mock::DEFAULT_OUTPUT_TOKENS);
        assert_eq!(
            u["total_tokens"],
            cursor_mock::DEFAULT_INPUT_TOKENS + cursor_mock::DEFAULT_OUTPUT_TOKENS
        );
        assert_eq!(
            u["prompt_tokens_details"]["cached_tokens"],
            cursor_mock::DEFAULT_CACHE_READ_TOKENS
        );
        assert_eq!(
            u["completion_tokens_details"]["reasoning_tokens"],
            cursor_mock::DEFAULT_REASONING_TOKENS
        );
    }
    assert!(
        v["chunks"].as_u64().unwrap() > 10,
        "the answer streamed in many chunks"
    );
    // The second turn of the conversation went to the same account with the mock's checkpoint.
    let states = run_requests(&mock);
    assert_eq!(
        states.len(),
        5,
        "stream, non-stream, turn 2, image, plain stream"
    );
    let empty = |r: &AgentRunRequest| r.conversation_state.as_ref().is_none_or(|s| s.is_empty());
    assert!(
        empty(&states[0]) && empty(&states[1]),
        "first turn, then the same first turn again"
    );
    let turn2 = &states[2];
    assert!(
        turn2
            .conversation_state
            .as_ref()
            .is_some_and(|s| !s.is_empty()),
        "turn 2 resumed a checkpoint"
    );
    assert_eq!(turn2.conversation_id, states[0].conversation_id);
    assert_ne!(
        states[3].conversation_id, states[0].conversation_id,
        "another first message, another conversation"
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_text_event_sequence_usage_and_thinking() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "anthropic_text", None, PROXY_KEY).await;
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(
        &events[events.len() - 2..],
        ["message_delta", "message_stop"]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "content_block_start")
            .count(),
        2
    );
    assert_eq!(v["block_types"], serde_json::json!(["thinking", "text"]));
    assert_eq!(v["stream_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(v["stream_thinking"], cursor_mock::DEFAULT_THINKING);
    assert_eq!(v["nonstream_text"], cursor_mock::DEFAULT_TEXT);
    let uncached = cursor_mock::DEFAULT_INPUT_TOKENS
        - cursor_mock::DEFAULT_CACHE_READ_TOKENS
        - cursor_mock::DEFAULT_CACHE_WRITE_TOKENS;
    for u in [&v["usage"], &v["nonstream_usage"]] {
        assert_eq!(u["input_tokens"], uncached);
        assert_eq!(u["output_tokens"], cursor_mock::DEFAULT_OUTPUT_TOKENS);
        assert_eq!(
            u["cache_read_input_tokens"],
            cursor_mock::DEFAULT_CACHE_READ_TOKENS
        );
        assert_eq!(
            u["cache_creation_input_tokens"],
            cursor_mock::DEFAULT_CACHE_WRITE_TOKENS
        );
    }
    let t = case(
        &proxy,
        "anthropic_thinking",
        Some(cursor_mock::names::THINKING),
        PROXY_KEY,
    )
    .await;
    assert_eq!(t["thinking"], cursor_mock::LONG_THINKING);
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tool_call_round_trip_continues_the_same_upstream_stream() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "openai_tools", None, PROXY_KEY).await;
    assert_eq!(v["first_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(
        v["final_text"].as_str().map(str::trim_end),
        Some(format!("{}get_weather: sunny, 21C", cursor_mock::TOOL_ECHO_PREFIX).as_str())
    );
    assert_eq!(
        v["usage"]["completion_tokens"],
        cursor_mock::DEFAULT_OUTPUT_TOKENS
    );
    assert_eq!(
        run_calls(&mock),
        1,
        "the tool result went back on the open Run stream"
    );
    assert_eq!(proxy.state().engine.parked_count(), 0);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_tool_use_round_trip_continues_the_same_upstream_stream() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "anthropic_tools", None, PROXY_KEY).await;
    assert_eq!(
        v["final_text"].as_str().map(str::trim_end),
        Some(format!("{}get_weather: sunny, 21C", cursor_mock::TOOL_ECHO_PREFIX).as_str())
    );
    assert_eq!(
        v["usage"]["output_tokens"],
        cursor_mock::DEFAULT_OUTPUT_TOKENS
    );
    assert_eq!(run_calls(&mock), 1);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proxy_key_is_refused_in_both_apis() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "wrong_key", None, PROXY_KEY).await;
    assert_eq!(v["openai"], 401);
    assert_eq!(
        v["anthropic"],
        serde_json::json!([401, "authentication_error"])
    );
    assert_eq!(run_calls(&mock), 0, "nothing reached the upstream");
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_mid_stream_ends_in_an_sse_error_event() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = proxy_over(vec![account("a", &mock.url())]).await;
    let v = case(&proxy, "reset_mid_stream", None, PROXY_KEY).await;
    for api in ["openai", "anthropic"] {
        assert!(v[api].is_object(), "{api} must raise, got {}", v[api]);
        assert_eq!(v[api]["text_before"], cursor_mock::PARTIAL_TEXT, "{api}");
    }
    assert_eq!(v["openai"]["error"], "APIError");
    assert_eq!(v["anthropic"]["type"], "api_error");
    assert_log_has_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_three_hides_bad_accounts_from_callers() {
    let good = MockServer::start(Scenario::default()).await.unwrap();
    let quota = MockServer::start(Scenario::end_stream_error(ErrorSpec::rate_limited()))
        .await
        .unwrap();
    let unauth = MockServer::start(Scenario::end_stream_error(ErrorSpec::not_logged_in()))
        .await
        .unwrap();
    let proxy = proxy_over(vec![
        account("good", &good.url()),
        account("quota", &quota.url()),
        account("unauth", &unauth.url()),
    ])
    .await;
    let v = case(&proxy, "pool_50", None, PROXY_KEY).await;
    assert_eq!(v["ok"], 50);
    let status = proxy.state().engine.pool().status(Instant::now());
    let by = |n: &str| status.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(by("good").state, AccountHealth::Healthy);
    assert_eq!(by("good").successes, 50);
    assert_eq!(
        by("quota").state,
        AccountHealth::Cooldown,
        "{:?}",
        by("quota")
    );
    assert_eq!(by("quota").last_error, Some(Category::RateLimited));
    assert_eq!(
        by("unauth").state,
        AccountHealth::Refresh,
        "{:?}",
        by("unauth")
    );
    assert!(
        run_calls(&quota) >= 1 && run_calls(&unauth) >= 1,
        "both bad accounts were tried"
    );
    let text = assert_log_has_no_secret();
    assert!(
        text.contains("upstream attempt failed") && text.contains("category=rate_limited"),
        "attempts are logged with their classification"
    );
}

#[cfg(feature = "embedded-mock")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mock_default_serves_any_key_on_loopback() {
    log();
    let config = cursor_proxy::ops::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    assert!(config.open_mode_allowed());
    let proxy = Proxy::start(config).await.unwrap();
    assert!(proxy.is_embedded_mock());
    assert!(proxy.curl_line().contains(&proxy.addr().to_string()));
    let v = case(&proxy, "openai_text", None, "any-key-at-all").await;
    assert_eq!(v["stream_text"], cursor_mock::DEFAULT_TEXT);
    let m = case(&proxy, "models", None, "whatever").await;
    assert!(
        m["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == "composer-2.5"),
        "{m}"
    );
}
