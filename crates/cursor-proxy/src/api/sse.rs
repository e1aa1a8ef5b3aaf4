//! Server-sent event framing and the streaming response body.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};
use tokio::sync::mpsc;

use crate::api::error::ApiError;
use crate::engine::TurnItem;

/// `data: <json>\n\n`.
pub fn data(value: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    push_data(&mut out, value);
    Bytes::from(out)
}

/// Appends `data: <json>\n\n` to `out`.
pub fn push_data(out: &mut Vec<u8>, value: &serde_json::Value) {
    out.extend_from_slice(b"data: ");
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// `event: <name>\ndata: <json>\n\n`.
pub fn event(name: &str, value: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    push_event(&mut out, name, value);
    Bytes::from(out)
}

/// Appends `event: <name>\ndata: <json>\n\n` to `out`.
pub fn push_event(out: &mut Vec<u8>, name: &str, value: &serde_json::Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// OpenAI's end-of-stream marker.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns engine items into one API's SSE bytes.
pub trait Render: Send + 'static {
    /// Bytes before the first item (e.g. Anthropic's `message_start`).
    fn start(&mut self) -> Vec<u8>;
    /// Bytes for one item; `true` once the stream is complete.
    fn item(&mut self, item: TurnItem, out: &mut Vec<u8>) -> bool;
}

struct State<R> {
    rx: mpsc::Receiver<TurnItem>,
    render: R,
    started: bool,
    finished: bool,
}

/// A `text/event-stream` response rendering the items on `rx` as they arrive. If the engine's
/// channel closes before a final item, the stream still ends with a well-formed error event.
pub fn response<R: Render>(rx: mpsc::Receiver<TurnItem>, render: R) -> Response {
    let state = State {
        rx,
        render,
        started: false,
        finished: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let mut out = Vec::new();
        if !st.started {
            st.started = true;
            out = st.render.start();
        }
        // Drain whatever is already queued into one write: fewer, larger body chunks.
        loop {
            let item = if out.is_empty() {
                st.rx.recv().await
            } else {
                match st.rx.try_recv() {
                    Ok(i) => Some(i),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            let item = item.unwrap_or_else(|| TurnItem::Failed(ApiError::no_result()));
            if st.render.item(item, &mut out) {
                st.finished = true;
                break;
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(out)), st))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
