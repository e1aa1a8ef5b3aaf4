//! The `/admin/v1` handlers: accounts, caller keys, usage, reload.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use crate::api::routes::AppState;
use crate::ops::keys::{KeyError, KeyPolicy, KeySpec};
use crate::ops::keystore;
use crate::ops::metrics::health_name;
use crate::ops::usage;

type St = State<Arc<AppState>>;

/// The API routes (nested under `/admin/v1`).
pub(super) fn api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/accounts", get(accounts).post(super::accounts::add))
        .route(
            "/accounts/{name}",
            axum::routing::delete(super::accounts::remove),
        )
        .route("/accounts/{name}/disable", post(account_disable))
        .route("/accounts/{name}/enable", post(account_enable))
        .route("/accounts/{name}/clear-cooldown", post(account_clear))
        .route("/keys", get(keys).post(key_add))
        .route("/keys/{name}", axum::routing::delete(key_revoke))
        .route("/keys/{name}/limits", put(key_limits))
        .route("/usage", get(usage_report))
        .route("/reload", post(reload))
}

async fn accounts(State(st): St) -> Response {
    let pool = st.engine.pool();
    let list: Vec<Value> = pool
        .status(pool.now())
        .into_iter()
        .map(|a| {
            json!({
                "name": a.name,
                "state": health_name(a.state),
                "cooldown_remaining_ms": a.cooldown_remaining_ms,
                "consecutive_failures": a.consecutive_failures,
                "reason": a.last_error.map(|c| c.as_str()),
                "successes": a.successes,
                "failures": a.failures,
                "upstream": pool.get(&a.name).map(|x| x.upstream().to_owned()),
                "group": pool.get(&a.name).and_then(|x| x.group().map(str::to_owned)),
            })
        })
        .collect();
    axum::Json(json!({ "accounts": list })).into_response()
}

fn account_action(name: &str, done: bool, what: &str) -> Response {
    if !done {
        return AdminError::not_found("account", name).into_response();
    }
    tracing::info!(account = name, action = what, "admin account change");
    axum::Json(json!({ "account": name, "done": what })).into_response()
}

async fn account_disable(State(st): St, Path(name): Path<String>) -> Response {
    let done = st.engine.pool().set_disabled(&name, true);
    account_action(&name, done, "disabled")
}

async fn account_enable(State(st): St, Path(name): Path<String>) -> Response {
    let done = st.engine.pool().set_disabled(&name, false);
    account_action(&name, done, "enabled")
}

async fn account_clear(State(st): St, Path(name): Path<String>) -> Response {
    let done = st.engine.pool().clear_cooldown(&name);
    account_action(&name, done, "cooldown cleared")
}

async fn keys(State(st): St) -> Response {
    let store = st.engine.store().as_ref();
    let mut list = Vec::new();
    for k in st.ops.keys.list() {
        let tokens_today = match usage::tokens_today(store, k.caller_hash()).await {
            Ok(n) => n,
            Err(e) => return store_failed(&e).into_response(),
        };
        list.push(json!({
            "name": k.name(),
            "policy": k.policy(),
            "running": k.running(),
            "tokens_today": tokens_today,
        }));
    }
    axum::Json(json!({ "keys": list })).into_response()
}

/// The state store could not answer an admin read.
fn store_failed(e: &crate::store::StoreError) -> AdminError {
    AdminError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        format!("the state store failed: {}", crate::ops::chain(e)),
    )
}

/// `POST /admin/v1/keys`: a name, an optional secret (one is generated and returned once when
/// absent) and the policy fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    requests_per_minute: Option<u32>,
    #[serde(default)]
    burst: Option<u32>,
    #[serde(default)]
    tokens_per_day: Option<u64>,
    #[serde(default)]
    max_concurrent_streams: Option<u32>,
    #[serde(default)]
    account_group: Option<String>,
}

pub(super) fn json_body<T>(body: Result<axum::Json<T>, JsonRejection>) -> Result<T, AdminError> {
    body.map(|b| b.0)
        .map_err(|e| AdminError::bad_request(e.body_text()))
}

fn key_error(e: &KeyError) -> AdminError {
    match e {
        KeyError::NotFound(n) => AdminError::not_found("key", n),
        KeyError::DuplicateName(_) | KeyError::DuplicateSecret(_) => {
            AdminError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        _ => AdminError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()),
    }
}

async fn key_add(State(st): St, body: Result<axum::Json<NewKey>, JsonRejection>) -> Response {
    let new = match json_body(body) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let generated = new.key.is_none();
    let secret = new.key.unwrap_or_else(|| {
        let bytes: [u8; 24] = rand::random();
        format!("sk-proxy-{}", hex::encode(bytes))
    });
    if secret.len() < 8 {
        return key_error(&KeyError::ShortSecret(new.name)).into_response();
    }
    let spec = KeySpec {
        name: new.name.clone(),
        secret: crate::ops::config::Secret::new(secret.clone()),
        policy: KeyPolicy {
            models: new.models,
            requests_per_minute: new.requests_per_minute,
            burst: new.burst,
            tokens_per_day: new.tokens_per_day,
            max_concurrent_streams: new.max_concurrent_streams,
            account_group: new.account_group,
        },
    };
    let persisted = match keystore::add(&st.ops.keys, st.engine.store().as_ref(), &spec).await {
        Ok(p) => p,
        Err(e) => return key_error(&e).into_response(),
    };
    tracing::info!(key = %new.name, "admin added a caller key");
    let mut body = json!({ "name": new.name, "policy": spec.policy, "persisted": persisted });
    // The secret is shown once, and only when the proxy made it up.
    if generated {
        body["key"] = Value::String(secret);
    }
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn key_revoke(State(st): St, Path(name): Path<String>) -> Response {
    match keystore::revoke(&st.ops.keys, st.engine.store().as_ref(), &name).await {
        Ok(persisted) => {
            tracing::info!(key = %name, "admin revoked a caller key");
            axum::Json(json!({ "name": name, "revoked": true, "persisted": persisted }))
                .into_response()
        }
        Err(e) => key_error(&e).into_response(),
    }
}

async fn key_limits(
    State(st): St,
    Path(name): Path<String>,
    body: Result<axum::Json<KeyPolicy>, JsonRejection>,
) -> Response {
    let policy = match json_body(body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let store = st.engine.store().as_ref();
    match keystore::set_policy(&st.ops.keys, store, &name, policy.clone()).await {
        Ok(persisted) => {
            tracing::info!(key = %name, "admin changed a key's limits");
            axum::Json(json!({ "name": name, "policy": policy, "persisted": persisted }))
                .into_response()
        }
        Err(e) => key_error(&e).into_response(),
    }
}

/// Filters of `GET /admin/v1/usage`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    day: Option<String>,
    key: Option<String>,
    account: Option<String>,
    model: Option<String>,
}

async fn usage_report(
    State(st): St,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return AdminError::bad_request(e.body_text()).into_response(),
    };
    let rows = match usage::rows(st.engine.store().as_ref(), &st.ops.keys).await {
        Ok(rows) => rows,
        Err(e) => return store_failed(&e).into_response(),
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| q.day.as_ref().is_none_or(|d| &r.day == d))
        .filter(|r| q.key.as_ref().is_none_or(|k| &r.key == k))
        .filter(|r| q.account.as_ref().is_none_or(|a| &r.account == a))
        .filter(|r| q.model.as_ref().is_none_or(|m| &r.model == m))
        .collect();
    let pool = st.engine.pool();
    let accounts: Vec<Value> = pool
        .status(pool.now())
        .into_iter()
        .map(|a| json!({"name": a.name, "successes": a.successes, "failures": a.failures}))
        .collect();
    axum::Json(json!({ "today": usage::today(), "rows": rows, "accounts": accounts }))
        .into_response()
}

async fn reload(State(st): St) -> Response {
    match st.ops.reload() {
        Ok(()) => axum::Json(json!({ "reloaded": true })).into_response(),
        Err(reason) => AdminError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_refused",
            format!("the new configuration was refused and the old one stays: {reason}"),
        )
        .into_response(),
    }
}
