//! Per-request plumbing around every route: the request id (`x-request-id`, the caller's if it
//! sent a sane one), the tracing span that puts it on every log line of the request, the id in
//! JSON error bodies, and the 503 answer while draining.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::Ops;

/// The header carrying the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest caller-sent id kept (longer ones are replaced).
const MAX_ID_LEN: usize = 128;
/// Largest error body the id is added to (error bodies are small; anything bigger passes as is).
const MAX_ERROR_BODY: usize = 64 << 10;

/// The id of a request, available to handlers as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The caller's id if it is 1 to 128 visible ASCII characters, else a fresh random one.
pub fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(fresh_id, str::to_owned)
}

fn fresh_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("req_{}", hex::encode(bytes))
}

/// Paths still served while draining (probes and the operator's views).
fn served_while_draining(path: &str) -> bool {
    path == "/healthz" || path == "/metrics" || path.starts_with("/admin")
}

/// The middleware: id, span, drain refusal, id in error bodies.
pub async fn layer(State(ops): State<Arc<Ops>>, mut req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestId(id.clone()));
    let resp = if ops.lifecycle.is_draining() && !served_while_draining(&path) {
        span.in_scope(|| tracing::info!("refused: draining"));
        draining()
    } else {
        next.run(req).instrument(span.clone()).await
    };
    let mut resp = if resp.status().is_client_error() || resp.status().is_server_error() {
        with_id_in_body(resp, &id).instrument(span).await
    } else {
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

fn draining() -> Response {
    let body = json!({"error": {
        "message": "the proxy is shutting down; retry on another instance",
        "type": "server_error", "param": null, "code": "draining",
    }});
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Adds `"request_id"` at the top level of a JSON error body (Anthropic's own place for it;
/// OpenAI clients ignore unknown fields).
async fn with_id_in_body(resp: Response, id: &str) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        tracing::warn!("error body too large or unreadable; sent without it");
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut map)) => {
            map.insert("request_id".into(), Value::String(id.to_owned()));
            Body::from(Value::Object(map).to_string())
        }
        _ => Body::from(bytes),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_kept_when_sane() {
        let mut h = http::HeaderMap::new();
        assert!(request_id(&h).starts_with("req_"));
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert!(request_id(&h).starts_with("req_"));
        let long = "x".repeat(200);
        h.insert(REQUEST_ID, HeaderValue::from_str(&long).unwrap());
        assert!(request_id(&h).starts_with("req_"));
    }
}
