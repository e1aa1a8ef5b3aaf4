//! The admin API under `/admin/v1` and the status page at `/admin`.
//!
//! Every route needs the admin key (`Authorization: Bearer` or `x-api-key`), compared in
//! constant time; a caller key is refused with 403, anything else with 401. Without an admin key
//! configured the whole surface answers 404. JSON in, JSON out; every error is
//! `{"error": {"code": "...", "message": "..."}, "request_id": "..."}`.

mod accounts;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::keys::presented_key;
use crate::api::routes::AppState;

/// The status page.
const STATUS_HTML: &str = include_str!("status.html");
/// The status page's script.
const STATUS_JS: &str = include_str!("status.js");

/// An admin API error in the one shape every admin route uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl AdminError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A 404 for a missing named thing.
    pub fn not_found(what: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} named {name:?}"),
        )
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The admin routes and the status page (merged into the proxy's router).
pub fn router(state: Arc<AppState>) -> Router {
    let api = routes::api();
    Router::new()
        .route("/admin", get(status_page))
        .route("/admin/", get(status_page))
        .route("/admin/status.js", get(status_js))
        .nest("/admin/v1", api)
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// Refuses everything under `/admin` without the admin key; `/metrics` is open (it carries no
/// secrets, no keys and no conversation ids) unless the operator turned the admin API on, in
/// which case it needs the admin key too.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let page = path == "/admin" || path == "/admin/" || path == "/admin/status.js";
    let is_metrics = path == "/metrics";
    if !st.ops.admin_enabled() {
        if is_metrics {
            return next.run(req).await;
        }
        return AdminError::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "the admin API is off: start the proxy with --admin-key or CURSOR_PROXY_ADMIN_KEY",
        )
        .into_response();
    }
    // The page and its script hold no data; the script asks for the key and sends it with
    // each API call.
    if page {
        return next.run(req).await;
    }
    let refused = match presented_key(req.headers()) {
        Some(k) if st.ops.is_admin_key(k) => None,
        Some(k) if st.ops.keys.find(k).is_some() => Some(AdminError::new(
            StatusCode::FORBIDDEN,
            "caller_key",
            "a caller key cannot use the admin API; present the admin key",
        )),
        Some(_) => Some(AdminError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_key",
            "invalid admin key",
        )),
        None => Some(AdminError::new(
            StatusCode::UNAUTHORIZED,
            "missing_admin_key",
            "the admin key is required (Authorization: Bearer <admin key>)",
        )),
    };
    match refused {
        Some(e) => {
            tracing::info!(
                status = e.status.as_u16(),
                code = e.code,
                "admin request refused"
            );
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cursor-proxy admin\""),
            );
            resp
        }
        None => next.run(req).await,
    }
}

async fn status_page() -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        STATUS_HTML,
    )
        .into_response();
    no_store(&mut resp);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'",
        ),
    );
    resp
}

async fn status_js() -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        STATUS_JS,
    )
        .into_response();
    no_store(&mut resp);
    resp
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.ops.metrics.render(&st.engine),
    )
        .into_response()
}
