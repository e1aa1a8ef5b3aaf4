//! The OpenAI Responses API end to end: the real `openai` Python SDK (the virtualenv made by
//! `tests/sdk/setup.sh`) calls `responses.create` and `responses.stream` on cursor-proxy over
//! cursor-mock, plus raw HTTP checks of the routes clients probe. Fails when the virtualenv is
//! missing.

use std::path::PathBuf;
use std::time::Duration;

use cursor_mock::{MockServer, Scenario};
use cursor_proxy::Proxy;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-responses-e2e";

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

async fn proxy() -> (MockServer, Proxy) {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let account = cursor_test_support::proxy::mock_account("mock", &mock.url(), "mock-token");
    let proxy =
        cursor_test_support::proxy::start(&cursor_test_support::proxy::config(KEY), vec![account])
            .await;
    (mock, proxy)
}

async fn case(proxy: &Proxy, name: &str) -> Value {
    let python = sdk_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "run crates/cursor-proxy/tests/sdk/setup.sh (expected {})",
        python.display()
    );
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(sdk_dir().join("responses_cases.py"))
        .arg(name)
        .env("PROXY_URL", format!("http://{}", proxy.addr()))
        .env("PROXY_KEY", KEY)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("case {name} timed out"))
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "case {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line");
    serde_json::from_str(line).unwrap()
}

fn run_calls(mock: &MockServer) -> usize {
    mock.received()
        .iter()
        .filter(|c| c.path.ends_with("/Run"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_create_and_stream_give_the_same_text_usage_and_reasoning() {
    let (_mock, proxy) = proxy().await;
    let v = case(&proxy, "text").await;
    assert_eq!(v["nonstream_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(v["stream_text"], cursor_mock::DEFAULT_TEXT);
    assert_eq!(v["status"], json!(["completed", "completed"]));
    assert_eq!(
        v["reasoning"],
        json!([
            [cursor_mock::DEFAULT_THINKING],
            [cursor_mock::DEFAULT_THINKING]
        ])
    );
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert_eq!(v["instructions"], "be brief");
    for u in [&v["usage"], &v["stream_usage"]] {
        assert_eq!(u["input_tokens"], cursor_mock::DEFAULT_INPUT_TOKENS);
        assert_eq!(
            u["input_tokens_details"]["cached_tokens"],
            cursor_mock::DEFAULT_CACHE_READ_TOKENS
        );
        assert_eq!(
            u["output_tokens_details"]["reasoning_tokens"],
            cursor_mock::DEFAULT_REASONING_TOKENS
        );
    }
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&events[..2], ["response.created", "response.in_progress"]);
    assert_eq!(events.last(), Some(&"response.completed"));
    for kind in [
        "response.output_item.added",
        "response.reasoning_summary_text.delta",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ] {
        assert!(events.contains(&kind), "{kind} missing from {events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tool_calls_false_shows_one_call_per_response_on_one_run() {
    let (mock, proxy) = proxy().await;
    let v = case(&proxy, "one_call_at_a_time").await;
    assert_eq!(v["calls"], json!([["get_weather"], ["get_time"]]));
    let text = v["final_text"].as_str().unwrap();
    let prefix = cursor_mock::TOOL_ECHO_PREFIX;
    assert!(
        text.contains(&format!("{prefix}get_weather: get_weather ok")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{prefix}get_time: get_time ok")),
        "{text}"
    );
    assert_eq!(
        run_calls(&mock),
        1,
        "every result went back on the open Run"
    );
    assert_eq!(proxy.state().engine.parked_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_for_some_calls_answer_the_rest_with_an_error_upstream() {
    let (mock, proxy) = proxy().await;
    let v = case(&proxy, "partial_results").await;
    assert_eq!(v["calls"], json!(["get_weather", "get_time"]));
    let text = v["final_text"].as_str().unwrap();
    let prefix = cursor_mock::TOOL_ECHO_PREFIX;
    assert!(
        text.contains(&format!("{prefix}get_weather: sunny")),
        "{text}"
    );
    assert!(
        text.contains(cursor_proxy::engine::MISSING_RESULT),
        "{text}"
    );
    assert_eq!(run_calls(&mock), 1, "the turn was continued, not dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_previous_response_and_builtin_tools() {
    let (_mock, proxy) = proxy().await;
    let v = case(&proxy, "errors").await;
    assert_eq!(v["previous"][0], "BadRequestError", "{v}");
    assert!(
        v["previous"][2].as_str().unwrap().contains("resp_nope"),
        "{v}"
    );
    assert_eq!(v["builtin_text"], cursor_mock::DEFAULT_TEXT);
}

async fn raw(proxy: &Proxy, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_probes_count_tokens_and_claude_code_system_messages() {
    let (_mock, proxy) = proxy().await;
    for method in ["GET", "HEAD"] {
        let r = raw(
            &proxy,
            &format!("{method} / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{method}: {r}");
    }
    let body = json!({"model": "composer-2.5", "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hello there"}, {"role": "system", "content": "mid"}, {"role": "user", "content": "more"}]})
    .to_string();
    let req = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\nanthropic-version: 2023-06-01\r\nanthropic-beta: some-future-beta-2099\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let r = raw(&proxy, &req("/v1/messages/count_tokens")).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("x-cursor-proxy-token-count: estimate") && r.contains("\"input_tokens\":"),
        "{r}"
    );
    let r = raw(&proxy, &req("/v1/messages")).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains(cursor_mock::DEFAULT_TEXT), "{r}");
}
