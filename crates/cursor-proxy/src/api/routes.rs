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
use cursor_connect::classify::Category;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::error::ApiError;
use super::models::ModelCache;
use super::{Anthropic, Dialect, OpenAiChat, OpenAiResponses, sse};
use crate::engine::pool::AccountHealth;
use crate::engine::turn::Turn;
use crate::engine::{Engine, collect};
use crate::ops::Ops;
use crate::ops::accounting::Running;
use crate::ops::auth::{Auth, Caller};
use crate::ops::limits;

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
    /// Keys and policies, usage, metrics, lifecycle.
    pub ops: Arc<Ops>,
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(serve::<OpenAiChat>))
        .route("/chat/completions", post(serve::<OpenAiChat>))
        .route("/v1/responses", post(serve::<OpenAiResponses>))
        .route("/responses", post(serve::<OpenAiResponses>))
        .route("/v1/messages", post(serve::<Anthropic>))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/", get(root).head(root))
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

/// The body; an unreadable one (over [`MAX_BODY`], cut off) is reported in the caller's API
/// shape like every other error, not as the framework's plain-text rejection.
fn read_body(body: &Result<Bytes, BytesRejection>) -> Result<&[u8], ApiError> {
    body.as_ref()
        .map(|b| &b[..])
        .map_err(|e| ApiError::new(e.status(), Category::BadRequest, e.body_text()))
}

/// One request in dialect `D`, end to end: caller key, parse, alias, policy, engine, response.
async fn serve<D: Dialect>(
    State(st): State<Arc<AppState>>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let parsed = st
        .auth
        .caller(&headers)
        .and_then(|caller| Ok((caller, D::parse(read_body(&body)?, &headers)?)));
    let (caller, mut turn) = match parsed {
        Ok(v) => v,
        Err(e) => return log_error::<D>(&st, None, started, e),
    };
    let aliases = st.ops.aliases();
    let model = aliases.resolve(&turn.model);
    if model != turn.model {
        debug!(requested = %turn.model, model, "model alias applied");
        turn.model = model.to_owned();
    }
    let mut running = match admit::<D>(&st, &caller, &turn, started).await {
        Ok(r) => r,
        Err(e) => return log_error::<D>(&st, Some(&turn), started, e),
    };
    // Tool results for a turn parked on another instance go there (shared store only).
    if let Ok(raw) = &body
        && let Some(resp) = st
            .engine
            .forward_to_owner(
                &caller.session_key,
                &turn,
                uri.path(),
                &headers,
                raw.clone(),
            )
            .await
    {
        return resp;
    }
    let id = new_id(D::ID_PREFIX);
    if turn.stream {
        // Streaming callers see output as it comes: only failures before the first event are
        // retried (inside `Engine::start`).
        let fallbacks = fallbacks(&aliases, &caller, &turn.model);
        return match start_with_fallbacks(&st, &caller, &mut turn, &fallbacks, false).await {
            Ok(rx) => {
                log_ok::<D>(&st, &turn, started);
                sse::response(running.tap(rx), D::stream(id, &turn))
            }
            Err(e) => log_error::<D>(&st, Some(&turn), started, e),
        };
    }
    // A non-streaming caller sees nothing until the end, so its whole turn can be retried.
    let fallbacks = fallbacks(&aliases, &caller, &turn.model);
    let items = match start_with_fallbacks(&st, &caller, &mut turn, &fallbacks, true).await {
        Ok(rx) => collect(rx).await,
        Err(e) => return log_error::<D>(&st, Some(&turn), started, e),
    };
    items.iter().for_each(|i| running.observe(i));
    match D::complete(&id, &turn, items) {
        Ok(v) => {
            log_ok::<D>(&st, &turn, started);
            axum::Json(v).into_response()
        }
        Err(e) => log_error::<D>(&st, Some(&turn), started, e),
    }
}

/// Applies the caller key's policy before anything goes upstream.
async fn admit<D: Dialect>(
    st: &Arc<AppState>,
    caller: &Caller,
    turn: &Turn,
    started: Instant,
) -> Result<Running, ApiError> {
    let admission = match &caller.key {
        Some(key) => match limits::admit(
            st.engine.store().as_ref(),
            key,
            &turn.model,
            D::MODEL_REFUSED,
        )
        .await
        {
            Ok(a) => Some(a),
            Err(refusal) => {
                st.ops.metrics.refusal(refusal.limit.as_str());
                info!(
                    key = key.name(),
                    limit = refusal.limit.as_str(),
                    "refused by the key's policy"
                );
                return Err(refusal.error);
            }
        },
        None => None,
    };
    Ok(Running::new(&st.ops, admission, D::NAME, started))
}

/// The configured fallbacks of `model` that the caller's key may use.
fn fallbacks(aliases: &crate::ops::aliases::Aliases, caller: &Caller, model: &str) -> Vec<String> {
    let policy = caller.key.as_ref().map(|k| k.policy());
    aliases
        .fallbacks(model)
        .iter()
        .filter(|m| policy.as_ref().is_none_or(|p| p.allows(m)))
        .cloned()
        .collect()
}

/// Starts the turn; when Cursor says the model is unavailable or retired, tries the configured
/// fallbacks in order (the response then names the model that answered).
async fn start_with_fallbacks(
    st: &AppState,
    caller: &Caller,
    turn: &mut Turn,
    fallbacks: &[String],
    complete: bool,
) -> Result<tokio::sync::mpsc::Receiver<crate::engine::TurnItem>, ApiError> {
    let mut next = fallbacks.iter();
    turn.account_group = caller.key.as_ref().and_then(|k| k.policy().account_group);
    loop {
        let result = if complete {
            st.engine.start_complete(&caller.session_key, turn).await
        } else {
            st.engine.start(&caller.session_key, turn).await
        };
        match result {
            Err(e) if e.category == Category::ModelUnavailable => match next.next() {
                Some(fallback) => {
                    warn!(model = %turn.model, fallback = %fallback, "model unavailable; using the configured fallback");
                    fallback.clone_into(&mut turn.model);
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

fn log_ok<D: Dialect>(st: &AppState, req: &Turn, started: Instant) {
    st.ops
        .metrics
        .request(D::NAME, Some(&req.model), 200, "none");
    info!(api = D::NAME, model = %req.model, stream = req.stream, first_event_ms = started.elapsed().as_millis() as u64, "request accepted");
}

fn log_error<D: Dialect>(
    st: &AppState,
    req: Option<&Turn>,
    started: Instant,
    e: ApiError,
) -> Response {
    st.ops.metrics.request(
        D::NAME,
        req.map(|r| r.model.as_str()),
        e.status.as_u16(),
        e.category.as_str(),
    );
    info!(
        api = D::NAME, model = req.map(|r| r.model.as_str()), status = e.status.as_u16(), category = %e.category,
        elapsed_ms = started.elapsed().as_millis() as u64, "request failed"
    );
    D::error_response(&e)
}

async fn models(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let error = |e: ApiError| {
        if anthropic {
            Anthropic::error_response(&e)
        } else {
            OpenAiChat::error_response(&e)
        }
    };
    if let Err(e) = st.auth.check(&headers) {
        return error(e);
    }
    let list = match st.models.list(&st.engine).await {
        Ok(l) => l,
        Err(e) => return error(e),
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
    let healthy = accounts
        .iter()
        .filter(|a| a.state == AccountHealth::Healthy)
        .count();
    let store = st.engine.store_health();
    let store_ok = store == crate::store::StoreHealth::Ok;
    let body = json!({
        "status": if healthy > 0 && store_ok { "ok" } else { "degraded" },
        "store": { "kind": st.engine.store_kind(), "health": store },
        "upstream": st.upstream_label,
        "accounts": accounts,
        "parked_tool_waits": st.engine.parked_count(),
    });
    axum::Json(body).into_response()
}

/// `GET /` and `HEAD /`: clients probe the base URL; it answers 200.
async fn root() -> Response {
    axum::Json(json!({"service": "cursor-proxy", "status": "ok"})).into_response()
}

/// `POST /v1/messages/count_tokens`. Cursor has no counting call, so this is an estimate
/// (about four characters per token over the system text, the messages and the tool
/// definitions), marked as such by the `x-cursor-proxy-token-count: estimate` header.
async fn count_tokens(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let turn = st
        .auth
        .check(&headers)
        .and_then(|_| Anthropic::parse(read_body(&body)?, &headers));
    match turn {
        Ok(turn) => {
            let mut resp =
                axum::Json(json!({"input_tokens": super::anthropic::estimate_tokens(&turn)}))
                    .into_response();
            resp.headers_mut().insert(
                "x-cursor-proxy-token-count",
                http::HeaderValue::from_static("estimate"),
            );
            resp
        }
        Err(e) => Anthropic::error_response(&e),
    }
}

async fn not_found() -> Response {
    OpenAiChat::error_response(&ApiError::new(
        StatusCode::NOT_FOUND,
        Category::BadRequest,
        "no such route",
    ))
}
