//! A plain HTTP/1.1 caller for cursor-proxy's tests: one request per connection
//! (`Connection: close`), read to the end within [`DEADLINE`], chunked bodies joined; and the
//! request bodies the tests send.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest any exchange may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A reply: status, headers, body text.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers in order, as sent.
    pub headers: Vec<(String, String)>,
    /// Body text (de-chunked).
    pub body: String,
}

impl Reply {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection, read to the end within [`DEADLINE`].
///
/// # Panics
/// If the connection fails or the reply is late or not HTTP.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut raw))
        .await
        .expect("reply in time")
        .expect("read");
    parse(&raw)
}

/// A JSON request with `Authorization: Bearer <key>`; returns status and body.
///
/// # Panics
/// As [`request`].
pub async fn http_as(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let (h, v) = bearer(key);
    let headers = [(h, v.as_str()), ("content-type", "application/json")];
    let r = request(addr, method, path, &headers, body).await;
    (r.status, r.body)
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        let tail = &tail[n..];
        rest = tail.strip_prefix("\r\n").unwrap_or(tail);
    }
    out
}

/// An OpenAI chat body saying "hello".
pub fn chat(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string()
}

/// An Anthropic messages body saying "hello".
pub fn messages(model: &str) -> String {
    serde_json::json!({
        "model": model, "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string()
}

/// A non-streaming OpenAI chat body with `messages` (a JSON array's text) on `model`.
pub fn chat_body(model: &str, messages: &str) -> String {
    format!(r#"{{"model":"{model}","messages":{messages}}}"#)
}

/// The messages of turn 2: the first user message, the assistant's answer, the next one.
pub fn turn2_messages(first: &str, answer: &str, next: &str) -> String {
    serde_json::json!([
        {"role": "user", "content": first},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": next},
    ])
    .to_string()
}

/// The assistant text of a chat completion.
///
/// # Panics
/// If `body` is not one.
pub fn answer_text(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {body}"))
        .to_owned()
}

/// `Authorization: Bearer <key>` as a header pair.
pub fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}
