//! Raw HTTP/1.1 over loopback against the proxy on cursor-mock: exact error shapes, statuses,
//! `retry-after`, SSE bytes of a mid-stream failure, `/healthz` and `/v1/models`. No SDK needed.

use std::time::Duration;

use cursor_mock::{ErrorSpec, MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_test_support::proxy::http::{self, Reply};
use cursor_test_support::proxy::{config, mock_account, start};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-http-test";

/// One request to `proxy` on a fresh connection (see [`http::request`]).
async fn request(
    proxy: &Proxy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    http::request(proxy.addr(), method, path, headers, body).await
}

async fn proxy(urls: &[String]) -> Proxy {
    cursor_test_support::proxy::on_mocks(KEY, urls).await
}

const AUTH: (&str, &str) = ("authorization", "Bearer sk-http-test");
const CHAT: &str = r#"{"model":"composer-2.5","messages":[{"role":"user","content":"hi"}]}"#;
const MSGS: &str =
    r#"{"model":"composer-2.5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_answers_429_with_retry_after_in_each_shape() {
    let a = MockServer::start(Scenario::end_stream_error(ErrorSpec::rate_limited()))
        .await
        .unwrap();
    let b = MockServer::start(Scenario::end_stream_error(ErrorSpec::rate_limited()))
        .await
        .unwrap();
    let p = proxy(&[a.url(), b.url()]).await;
    let r = request(&p, "POST", "/v1/chat/completions", &[AUTH], CHAT).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "{:?} {}",
        r.headers,
        r.body
    );
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    // Both accounts now cool down: the pool answers without calling upstream.
    let r = request(&p, "POST", "/v1/messages", &[("x-api-key", KEY)], MSGS).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let j = r.json();
    assert_eq!(
        (j["type"].as_str(), j["error"]["type"].as_str()),
        (Some("error"), Some("rate_limit_error"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_bad_json_and_unknown_route() {
    let m = MockServer::start(Scenario::default()).await.unwrap();
    let p = proxy(&[m.url()]).await;
    let r = request(&p, "POST", "/v1/chat/completions", &[], CHAT).await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let r = request(&p, "POST", "/v1/messages", &[AUTH], "{not json").await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let r = request(&p, "GET", "/nope", &[AUTH], "").await;
    assert_eq!(r.status, 404);
    // A value the proxy cannot honour is refused in the API's shape, naming the field.
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x/i.png"}}]}]}"#;
    let r = request(&p, "POST", "/v1/messages", &[AUTH], body).await;
    let j = r.json();
    assert_eq!(
        (r.status, j["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert_eq!(
        j["error"]["message"],
        "messages[0].content[0].source.type: images must be base64 sources"
    );
    let body =
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"extreme"}"#;
    let r = request(&p, "POST", "/v1/chat/completions", &[AUTH], body).await;
    let j = r.json();
    assert_eq!(
        (r.status, j["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("reasoning_effort: unknown variant `extreme`"),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_after_data_ends_the_sse_stream_with_an_error_event() {
    let m = MockServer::start(Scenario::default()).await.unwrap();
    let p = proxy(&[m.url()]).await;
    let body = r#"{"model":"mock-error-after-data","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(&p, "POST", "/v1/chat/completions", &[AUTH], body).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(cursor_mock::PARTIAL_TEXT), "{}", r.body);
    let last = r.body.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\":"), "last event: {last}");
    assert!(
        !r.body.contains("[DONE]"),
        "a failed stream must not look finished"
    );

    // The failure was `unauthenticated`: that account now waits for a credential refresh, so the
    // Anthropic half runs on a fresh proxy.
    let p = proxy(&[m.url()]).await;
    let body = r#"{"model":"mock-error-after-data","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(&p, "POST", "/v1/messages", &[AUTH], body).await;
    let last = r.body.trim_end().rsplit("\n\n").next().unwrap();
    let data = last
        .strip_prefix("event: error\ndata: ")
        .unwrap_or_else(|| panic!("last event: {last}"));
    let err: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (err["type"].as_str(), err["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    assert!(!r.body.contains("message_stop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_models_in_both_shapes() {
    let m = MockServer::start(Scenario::default()).await.unwrap();
    let p = proxy(&[m.url()]).await;
    let h = request(&p, "GET", "/healthz", &[], "").await.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["accounts"][0]["name"], "acct0");
    assert!(!h.to_string().contains("tok\""), "no token in /healthz");
    let o = request(&p, "GET", "/v1/models", &[AUTH], "").await.json();
    assert_eq!(o["object"], "list");
    assert!(
        o["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "composer-2.5")
    );
    let a = request(
        &p,
        "GET",
        "/v1/models",
        &[AUTH, ("anthropic-version", "2023-06-01")],
        "",
    )
    .await
    .json();
    assert_eq!(a["data"][0]["type"], "model");
    assert_eq!(a["has_more"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_tool_wait_closes_the_upstream_stream() {
    let m = MockServer::start(Scenario::default()).await.unwrap();
    let mut config = config(KEY);
    config.tool_wait_timeout = Duration::from_millis(300);
    let p = start(&config, vec![mock_account("a", &m.url(), "tok")]).await;
    let body = r#"{"model":"composer-2.5","messages":[{"role":"user","content":"weather?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#;
    let r = request(&p, "POST", "/v1/chat/completions", &[AUTH], body).await;
    assert_eq!(
        r.json()["choices"][0]["finish_reason"],
        "tool_calls",
        "{}",
        r.body
    );
    assert_eq!(p.state().engine.parked_count(), 1);
    let run_finished = || {
        m.received()
            .iter()
            .any(|c| c.path.ends_with("/Run") && c.finished)
    };
    assert!(
        !run_finished(),
        "the upstream turn stays open while the caller runs the tool"
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while p.state().engine.parked_count() > 0 || !run_finished() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the abandoned wait is reaped and the upstream stream closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_in_the_api_shape() {
    let m = MockServer::start(Scenario::default()).await.unwrap();
    let p = proxy(&[m.url()]).await;
    for (path, shape) in [
        ("/v1/chat/completions", "openai"),
        ("/v1/messages", "anthropic"),
    ] {
        let len = cursor_proxy::api::routes::MAX_BODY + 1;
        let mut s = tokio::net::TcpStream::connect(p.addr()).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // The proxy may answer (and close) before it has read everything: write errors are fine.
        let chunk = vec![b' '; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if s.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            left -= n;
        }
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 413"), "{shape}: {text}");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{shape}: not JSON ({e}): {body}"));
        let kind = if shape == "openai" {
            json["error"]["type"].as_str()
        } else {
            assert_eq!(json["type"], "error");
            json["error"]["type"].as_str()
        };
        let want = if shape == "openai" {
            "invalid_request_error"
        } else {
            "request_too_large"
        };
        assert_eq!(kind, Some(want), "{shape}: {body}");
    }
}
