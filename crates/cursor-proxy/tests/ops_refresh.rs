//! Credentials renewed ahead of their JWT expiry against cursor-mock, whose `/oauth/token`
//! mints access tokens that expire soon: the refresh happens before the Run that would use the
//! expiring token (no turn fails), concurrent turns share one refresh, the rotated token set is
//! in the state store, and a restarted proxy starts from the stored set rather than the config.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cursor_mock::{MessageKind, MockServer, OAUTH_TOKEN_PATH, RUN_PATH};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{AccountConfig, Config, Secret, StateConfig, UpstreamMode};
use cursor_test_support::proxy::http::{bearer, chat, request};
use cursor_test_support::proxy::process::Scratch;

const CALLER: &str = "sk-refresh-test-caller";
const MODEL: &str = "composer-2.5";
const CONFIG_REFRESH: &str = "rt-from-the-config";
/// The mock's tokens expire one second past the client's five-minute margin: fresh when
/// issued, due for renewal a second later.
const LIFETIME: Duration = Duration::from_secs(301);

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An unsigned JWT with `claims` (what the client reads; nothing verifies the signature).
fn jwt(claims: &serde_json::Value) -> String {
    let b = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.sig",
        b(&serde_json::json!({"alg": "none"})),
        b(claims)
    )
}

/// The claims of a JWT (test side: the tokens are the mock's or ours).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

fn proxy_config(mock: &MockServer, state: &std::path::Path, token: &str) -> Config {
    let account = AccountConfig {
        upstream: Some(mock.url()),
        refresh_token: Some(Secret::new(CONFIG_REFRESH)),
        ..AccountConfig::named("acct")
    };
    Config {
        listen: "127.0.0.1:0".parse().expect("loopback"),
        upstream: UpstreamMode::Remote(mock.url()),
        api_keys: vec![Secret::new(CALLER)],
        accounts: vec![(account, Secret::new(token))],
        state: StateConfig::Sqlite(state.to_owned()),
        ..Config::default()
    }
}

/// What reached the mock, in order: `("refresh", presented refresh token)` for each grant and
/// `("run", bearer token)` for each `Run`.
fn upstream_log(mock: &MockServer) -> Vec<(&'static str, String)> {
    let mut log = Vec::new();
    for call in mock.received() {
        if call.path == OAUTH_TOKEN_PATH {
            let body = call
                .messages_of(MessageKind::UnaryRequest)
                .next()
                .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).expect("json"))
                .expect("grant body recorded");
            let presented = body["refresh_token"].as_str().unwrap_or("").to_owned();
            log.push(("refresh", presented));
        } else if call.path == RUN_PATH {
            let auth = call.headers.get("authorization").expect("authorization");
            let token = auth.to_str().unwrap().trim_start_matches("Bearer ");
            log.push(("run", token.to_owned()));
        }
    }
    log
}

async fn turn(proxy: &Proxy) -> u16 {
    let (h, v) = bearer(CALLER);
    let headers = [("content-type", "application/json"), (h, v.as_str())];
    let body = chat(MODEL, false);
    request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &headers,
        &body,
    )
    .await
    .status
}

async fn stored(proxy: &Proxy) -> serde_json::Value {
    let bytes = proxy
        .state()
        .engine
        .store()
        .credentials("acct")
        .await
        .expect("store answers")
        .expect("credentials stored");
    serde_json::from_slice(&bytes).expect("stored credentials are json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_ahead_of_expiry_stored_before_use_and_restored() {
    let dir = Scratch::new("refresh-ahead");
    let state = dir.path("state.sqlite3");
    let mock = MockServer::builder()
        .token_lifetime(LIFETIME)
        .start()
        .await
        .expect("mock");
    // Valid for 200 s more: the server would still take it, but it is inside the margin.
    let configured = jwt(&serde_json::json!({"sub": "u", "exp": now_unix() + 200}));
    let proxy = Proxy::start(proxy_config(&mock, &state, &configured))
        .await
        .expect("proxy starts");

    assert_eq!(turn(&proxy).await, 200);
    let log = upstream_log(&mock);
    assert_eq!(log[0], ("refresh", CONFIG_REFRESH.to_owned()), "{log:?}");
    assert_eq!(log[1].0, "run", "{log:?}");
    let first = log[1].1.clone();
    assert_ne!(first, configured, "the expiring token was sent");
    assert_eq!(claims(&first)["jti"], 1);
    let st = stored(&proxy).await;
    assert_eq!(st["access_token"], first.as_str());
    assert_eq!(st["refresh_token"], "mock-refresh-1");

    // A second on, the minted token is inside the margin too: four turns at once share one
    // refresh, which presents the rotated refresh token, and none of them fails.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let turns: Vec<_> = (0..4).map(|_| turn(&proxy)).collect();
    for status in futures_util::future::join_all(turns).await {
        assert_eq!(status, 200);
    }
    let log = upstream_log(&mock);
    let refreshes: Vec<_> = log.iter().filter(|(k, _)| *k == "refresh").collect();
    assert_eq!(refreshes.len(), 2, "{log:?}");
    assert_eq!(refreshes[1].1, "mock-refresh-1");
    let second_at = log.iter().rposition(|(k, _)| *k == "refresh").unwrap();
    let runs_after: Vec<_> = log[second_at + 1..].iter().collect();
    assert_eq!(runs_after.len(), 4, "{log:?}");
    assert!(
        runs_after
            .iter()
            .all(|(k, t)| *k == "run" && claims(t)["jti"] == 2)
    );
    let st = stored(&proxy).await;
    assert_eq!(st["refresh_token"], "mock-refresh-2");
    assert_eq!(claims(st["access_token"].as_str().unwrap())["jti"], 2);
    // No Run ever carried a token past its expiry.
    for (kind, token) in &log {
        if *kind == "run" {
            assert!(claims(token)["exp"].as_u64().unwrap() > now_unix());
        }
    }
    proxy.shutdown().await;

    // Restarted with the same config: the stored (rotated) refresh token is the one presented.
    let proxy = Proxy::start(proxy_config(&mock, &state, &configured))
        .await
        .expect("proxy restarts");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(turn(&proxy).await, 200);
    let log = upstream_log(&mock);
    let last_refresh = log.iter().rev().find(|(k, _)| *k == "refresh").unwrap();
    assert_eq!(last_refresh.1, "mock-refresh-2", "{log:?}");
    assert!(!log.iter().any(|(k, t)| *k == "run" && *t == configured));
    assert_eq!(stored(&proxy).await["refresh_token"], "mock-refresh-3");
    proxy.shutdown().await;
}

/// A malformed access token means "expiry unknown": it is used as is (the server judges it),
/// never a panic or a refresh loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_is_not_a_jwt_is_used_without_refresh() {
    let dir = Scratch::new("refresh-opaque");
    let mock = MockServer::builder()
        .token_lifetime(LIFETIME)
        .start()
        .await
        .expect("mock");
    let opaque = "opaque.!!not-base64!!.token";
    let proxy = Proxy::start(proxy_config(&mock, &dir.path("state.sqlite3"), opaque))
        .await
        .expect("proxy starts");
    assert_eq!(turn(&proxy).await, 200);
    assert_eq!(upstream_log(&mock), vec![("run", opaque.to_owned())]);
    proxy.shutdown().await;
}
