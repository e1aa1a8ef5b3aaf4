//! Runs the minimal proxy's binary against `cursor-mock` and streams a chat completion through
//! it over a loopback socket.

use std::process::Stdio;
use std::time::Duration;

use cursor_mock::{DEFAULT_TEXT, MockServer, Scenario};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_mock_answer_as_chat_completion_chunks() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_minimal-proxy"))
        .env("CURSOR_ACCESS_TOKEN", "mock-token")
        .env("CURSOR_BASE_URL", mock.url())
        .env("MINIMAL_PROXY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the proxy starts")
        .unwrap()
        .unwrap();
    let addr = first
        .strip_prefix("minimal-proxy on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));

    let body = r#"{"model":"composer-2.5","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello!"}]}"#;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_string(&mut reply))
        .await
        .expect("the stream ends")
        .unwrap();

    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("text/event-stream"), "{reply}");
    // The text arrives in `delta.content` pieces; together they are the mock's answer.
    let text: String = reply
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, DEFAULT_TEXT);
    assert!(reply.contains(r#""finish_reason":"stop""#), "{reply}");
    let last = reply.lines().rfind(|l| l.starts_with("data: "));
    assert_eq!(last, Some("data: [DONE]"), "{reply}");

    // One upstream Run served the request.
    let runs: Vec<_> = mock
        .received()
        .into_iter()
        .filter(|c| c.path.ends_with("/Run"))
        .collect();
    assert_eq!(runs.len(), 1);
    child.kill().await.unwrap();
}
