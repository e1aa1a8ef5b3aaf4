//! The HTTP side: routes, handlers and the request log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tracing::info;

use crate::auth::Auth;
use crate::chat::ChatRequest;
use crate::engine::Engine;
use crate::errors::{Api, ApiError};
use crate::models::ModelCache;
use crate::{anthropic, openai, sse};

/// Largest request body accepted (images arrive inline as base64).
pub const MAX_BODY: usize = 32 << 20;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// The request engine.
    pub engine: Arc<Engine>,
    /// Caller authentication.
    pub auth: Auth,
    /// Model list cache.
    pub models: ModelCache,
    /// What `/healthz` says the upstream is.
    pub upstream_label: String,
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{prefix}{t:x}{n:06x}")
}

/// The body as JSON; an unreadable body (over [`MAX_BODY`], cut off) is reported in the caller's
/// API shape like every other error, not as the framework's plain-text rejection.
fn parse_json(body: &Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.as_ref().map_err(|e| {
        let category = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "request_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(e.status(), category, e.body_text())
    })?;
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

async fn chat_completions(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let caller = st.auth.check(&headers)?;
        let req = openai::parse_request(&parse_json(&body)?)?;
        Ok::<_, ApiError>((caller, req))
    }
    .await;
    let (caller, req) = match result {
        Ok(v) => v,
        Err(e) => return log_error(Api::OpenAi, None, started, e),
    };
    let id = new_id("chatcmpl-");
    match start(&st.engine, &caller, &req).await {
        Err(e) => log_error(Api::OpenAi, Some(&req), started, e),
        Ok(rx) if req.stream => {
            log_ok(Api::OpenAi, &req, started);
            sse::response(
                rx,
                openai::StreamRender::new(id, req.model.clone(), req.include_usage),
            )
        }
        Ok(rx) => match openai::collect(&id, &req.model, rx).await {
            Ok(v) => {
                log_ok(Api::OpenAi, &req, started);
                axum::Json(v).into_response()
            }
            Err(e) => log_error(Api::OpenAi, Some(&req), started, e),
        },
    }
}

async fn messages(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let caller = st.auth.check(&headers)?;
        let session = headers
            .get("x-claude-code-session-id")
            .and_then(|v| v.to_str().ok());
        let req = anthropic::parse_request(&parse_json(&body)?, session)?;
        Ok::<_, ApiError>((caller, req))
    }
    .await;
    let (caller, req) = match result {
        Ok(v) => v,
        Err(e) => return log_error(Api::Anthropic, None, started, e),
    };
    let id = new_id("msg_");
    match start(&st.engine, &caller, &req).await {
        Err(e) => log_error(Api::Anthropic, Some(&req), started, e),
        Ok(rx) if req.stream => {
            log_ok(Api::Anthropic, &req, started);
            sse::response(rx, anthropic::StreamRender::new(id, req.model.clone()))
        }
        Ok(rx) => match anthropic::collect(&id, &req.model, rx).await {
            Ok(v) => {
                log_ok(Api::Anthropic, &req, started);
                axum::Json(v).into_response()
            }
            Err(e) => log_error(Api::Anthropic, Some(&req), started, e),
        },
    }
}

/// Streaming callers see output as it comes, so only failures before the first event can be
/// retried; a non-streaming caller sees nothing until the end, so its whole turn can be.
async fn start(
    engine: &Arc<Engine>,
    caller: &str,
    req: &ChatRequest,
) -> Result<tokio::sync::mpsc::Receiver<crate::engine::TurnItem>, ApiError> {
    if req.stream {
        engine.start(caller, req).await
    } else {
        engine.start_complete(caller, req).await
    }
}

fn log_ok(api: Api, req: &ChatRequest, started: Instant) {
    info!(api = ?api, model = %req.model, stream = req.stream, first_event_ms = started.elapsed().as_millis() as u64, "request accepted");
}

fn log_error(api: Api, req: Option<&ChatRequest>, started: Instant, e: ApiError) -> Response {
    info!(
        api = ?api, model = req.map(|r| r.model.as_str()), status = e.status.as_u16(), category = %e.category,
        elapsed_ms = started.elapsed().as_millis() as u64, "request failed"
    );
    e.response(api)
}

async fn models(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let api = if anthropic {
        Api::Anthropic
    } else {
        Api::OpenAi
    };
    if let Err(e) = st.auth.check(&headers) {
        return e.response(api);
    }
    let list = match st.models.list(&st.engine).await {
        Ok(l) => l,
        Err(e) => return e.response(api),
    };
    let body = if anthropic {
        let data: Vec<Value> = list
            .iter()
            .map(|m| json!({"type": "model", "id": m.id, "display_name": m.display_name, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        json!({"data": data, "has_more": false, "first_id": list.first().map(|m| &m.id), "last_id": list.last().map(|m| &m.id)})
    } else {
        let data: Vec<Value> = list
            .iter()
            .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": "cursor"}))
            .collect();
        json!({"object": "list", "data": data})
    };
    axum::Json(body).into_response()
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let accounts = st.engine.pool().status(st.engine.pool().now());
    let healthy = accounts.iter().filter(|a| a.state == "healthy").count();
    let body = json!({
        "status": if healthy > 0 { "ok" } else { "degraded" },
        "upstream": st.upstream_label,
        "accounts": accounts,
        "parked_tool_waits": st.engine.parked_count(),
    });
    axum::Json(body).into_response()
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").response(Api::OpenAi)
}
