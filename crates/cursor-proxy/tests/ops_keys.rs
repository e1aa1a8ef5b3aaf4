//! Caller keys with policies against the proxy on cursor-mock: 429 with `retry-after` naming the
//! limit and recovery, models refused before any upstream call, aliases, request ids in error
//! bodies, and the Prometheus text at `/metrics`.

use std::time::Duration;

use cursor_mock::{MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{Config, Secret};
use cursor_proxy::ops::keys::{KeyPolicy, KeySpec};
use cursor_test_support::proxy::http::{bearer, chat, messages, request};
use cursor_test_support::proxy::{config, mock_account, start};

const PLAIN: &str = "sk-ops-plain-key";
const LIMITED: &str = "sk-ops-limited-key";
const MODELS: &str = "sk-ops-models-key";
const TOKENS: &str = "sk-ops-tokens-key";
const MODEL: &str = "composer-2.5";

fn key(name: &str, secret: &str, policy: KeyPolicy) -> KeySpec {
    KeySpec {
        name: name.into(),
        secret: Secret::new(secret),
        policy,
    }
}

fn ops_config() -> Config {
    let mut cfg = config(PLAIN);
    cfg.ops.keys = vec![
        key(
            "limited",
            LIMITED,
            KeyPolicy {
                // One request every 2 s: long enough that the first request has finished
                // before the window ends even on a loaded machine, short enough to wait out.
                requests_per_minute: Some(30),
                burst: Some(1),
                ..KeyPolicy::default()
            },
        ),
        key(
            "models",
            MODELS,
            KeyPolicy {
                models: vec!["composer-*".into()],
                ..KeyPolicy::default()
            },
        ),
        key(
            "tokens",
            TOKENS,
            KeyPolicy {
                tokens_per_day: Some(1),
                ..KeyPolicy::default()
            },
        ),
    ];
    cfg.ops
        .aliases
        .aliases
        .insert("claude-sonnet-4-5".into(), MODEL.into());
    cfg
}

async fn setup() -> (MockServer, Proxy) {
    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let proxy = start(
        &ops_config(),
        vec![mock_account("acct0", &mock.url(), "tok-ops-secret")],
    )
    .await;
    (mock, proxy)
}

async fn post(
    proxy: &Proxy,
    path: &str,
    key: &str,
    body: &str,
) -> cursor_test_support::proxy::http::Reply {
    let (h, v) = bearer(key);
    let headers = [
        (h, v.as_str()),
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
    ];
    request(proxy.addr(), "POST", path, &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rate_limit_gets_429_naming_the_limit_then_recovers() {
    let (_mock, proxy) = setup().await;
    let ok = post(&proxy, "/v1/chat/completions", LIMITED, &chat(MODEL, false)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let refused = post(&proxy, "/v1/chat/completions", LIMITED, &chat(MODEL, false)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let after: u64 = refused
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&after), "retry-after {after}");
    let body = refused.json();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("requests_per_minute") && message.contains("limited"),
        "{message}"
    );
    assert!(
        !refused.body.contains(LIMITED),
        "the key never appears in an error body"
    );
    let id = refused.header("x-request-id").expect("x-request-id");
    assert_eq!(body["request_id"], id);

    // Anthropic callers get their own shape.
    let refused = post(&proxy, "/v1/messages", LIMITED, &messages(MODEL)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["type"], "error");
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");

    // The key comes back after the advertised wait (bounded retries).
    tokio::time::sleep(Duration::from_secs(after)).await;
    let mut recovered = None;
    for _ in 0..20 {
        let r = post(&proxy, "/v1/chat/completions", LIMITED, &chat(MODEL, false)).await;
        if r.status == 200 {
            recovered = Some(r);
            break;
        }
        assert_eq!(r.status, 429);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered.is_some(), "the key recovers after retry-after");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_model_is_refused_before_any_upstream_call() {
    let (mock, proxy) = setup().await;
    let r = post(&proxy, "/v1/chat/completions", MODELS, &chat("gpt-5", true)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`gpt-5`")
    );

    let r = post(&proxy, "/v1/messages", MODELS, &messages("claude-opus-4")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "permission_error");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-opus-4")
    );

    let r = post(
        &proxy,
        "/v1/responses",
        MODELS,
        &serde_json::json!({"model": "o3", "input": "hi"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        mock.received().is_empty(),
        "no upstream call for a refused model"
    );

    // An alias resolves before the policy: the key may use what it stands for.
    let r = post(
        &proxy,
        "/v1/chat/completions",
        MODELS,
        &chat("claude-sonnet-4-5", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["model"], MODEL);
    assert_eq!(mock.received().len(), 1);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_day_refuses_after_the_budget_is_spent() {
    let (_mock, proxy) = setup().await;
    let r = post(&proxy, "/v1/chat/completions", TOKENS, &chat(MODEL, true)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&proxy, "/v1/chat/completions", TOKENS, &chat(MODEL, false)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens_per_day")
    );
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&after));
    // Other keys are not affected.
    let r = post(&proxy, "/v1/chat/completions", PLAIN, &chat(MODEL, false)).await;
    assert_eq!(r.status, 200);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_comes_from_the_caller_or_is_made_up() {
    let (_mock, proxy) = setup().await;
    let headers = [
        ("x-request-id", "bug-report-42"),
        ("authorization", "Bearer wrong-key"),
    ];
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &headers,
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some("bug-report-42"));
    assert_eq!(r.json()["request_id"], "bug-report-42");
    let r = post(&proxy, "/v1/chat/completions", PLAIN, &chat(MODEL, false)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_without_secrets() {
    let (_mock, proxy) = setup().await;
    assert_eq!(
        post(&proxy, "/v1/chat/completions", PLAIN, &chat(MODEL, true))
            .await
            .status,
        200
    );
    assert_eq!(
        post(
            &proxy,
            "/v1/chat/completions",
            MODELS,
            &chat("gpt-5", false)
        )
        .await
        .status,
        404
    );
    let r = request(proxy.addr(), "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    for needle in [
        "# TYPE cursor_proxy_requests_total counter",
        r#"cursor_proxy_requests_total{category="none",model="composer-2.5",route="openai_chat",status="200"} 1"#,
        r#"cursor_proxy_limit_refusals_total{limit="models"} 1"#,
        r#"cursor_proxy_accounts{state="healthy"} 1"#,
        r#"cursor_proxy_upstream_attempts_total{outcome="success"} 1"#,
        "cursor_proxy_time_to_first_token_seconds_count{route=\"openai_chat\"} 1",
        "cursor_proxy_request_duration_seconds_bucket",
        r#"cursor_proxy_tokens_total{kind="output"}"#,
        "cursor_proxy_active_streams 0",
        "cursor_proxy_parked_tool_turns 0",
        "cursor_proxy_upstream_failovers_total 0",
        r#"cursor_proxy_store_operation_seconds_count{backend="memory",operation="add_usage"} 1"#,
    ] {
        assert!(r.body.contains(needle), "missing {needle:?} in\n{}", r.body);
    }
    for secret in [PLAIN, MODELS, "tok-ops-secret"] {
        assert!(!r.body.contains(secret));
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_model_falls_back_and_the_response_names_the_model_that_answered() {
    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let mut cfg = ops_config();
    let retired = cursor_mock::names::ERROR_MODEL_RETIRED;
    cfg.ops
        .aliases
        .fallbacks
        .insert(retired.into(), vec![MODEL.into()]);
    let proxy = start(&cfg, vec![mock_account("acct0", &mock.url(), "tok")]).await;
    let r = post(&proxy, "/v1/chat/completions", PLAIN, &chat(retired, false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["model"], MODEL);
    let r = post(&proxy, "/v1/messages", PLAIN, &messages(retired)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["model"], MODEL);
    let models: Vec<_> = mock
        .received()
        .iter()
        .filter_map(|c| c.model.clone())
        .collect();
    assert!(
        models.iter().any(|m| m == retired) && models.iter().any(|m| m == MODEL),
        "{models:?}"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_over_the_limit_get_429() {
    let steps = vec![
        cursor_mock::Step::Heartbeat,
        cursor_mock::Step::TextDelta("a".into()),
        cursor_mock::Step::Sleep(Duration::from_secs(2)),
        cursor_mock::Step::TurnEnded(cursor_mock::DEFAULT_USAGE),
        cursor_mock::Step::EndOk,
    ];
    let mock = MockServer::builder()
        .named("slow-model", Scenario::new(steps))
        .start()
        .await
        .expect("mock");
    let mut cfg = ops_config();
    cfg.ops.keys.push(key(
        "one-at-a-time",
        "sk-ops-one-at-a-time",
        KeyPolicy {
            max_concurrent_streams: Some(1),
            ..KeyPolicy::default()
        },
    ));
    let proxy = start(&cfg, vec![mock_account("acct0", &mock.url(), "tok")]).await;
    let addr = proxy.addr();
    let first = tokio::spawn(async move {
        let (h, v) = bearer("sk-ops-one-at-a-time");
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[(h, v.as_str())],
            &chat("slow-model", false),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = post(
        &proxy,
        "/v1/chat/completions",
        "sk-ops-one-at-a-time",
        &chat("slow-model", false),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_streams")
    );
    assert_eq!(first.await.unwrap().status, 200);
    let r = post(
        &proxy,
        "/v1/chat/completions",
        "sk-ops-one-at-a-time",
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 200, "the slot came back");
    proxy.shutdown().await;
}
