//! `POST /admin/v1/accounts` and `DELETE /admin/v1/accounts/{name}`: accounts added to and
//! removed from the running pool, and saved to (removed from) the accounts file, so the change
//! survives a restart.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::AdminError;
use super::routes::json_body;
use crate::api::routes::AppState;
use crate::engine::pool::Account;
use crate::ops::accounts::{AccountBook, SavedAccount, email_claim};
use crate::ops::config::{AccountConfig, CURSOR_UPSTREAM, Secret};
use crate::store::AccountRecord;
use crate::upstream::cursor::{CLEARED, encode_tokens};
use cursor_connect::{AccessToken, TokenSet};

/// The longest account or group name accepted.
const MAX_NAME: usize = 64;

/// The body of `POST /admin/v1/accounts`. Secrets arrive here once and are kept only in the
/// pool and the (owner-only) accounts file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    name: String,
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    cursor_api_key: Option<Secret>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

/// Names go into logs, metrics-free JSON and file keys: a short, plain alphabet.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

fn invalid(message: impl Into<String>) -> Response {
    AdminError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).into_response()
}

impl NewAccount {
    /// Why the request cannot become an account, if it cannot.
    fn problem(&self) -> Option<String> {
        if !valid_name(&self.name) {
            return Some(format!(
                "account name must be 1 to {MAX_NAME} characters of letters, digits, '-', '_', \
                 '.', '@'"
            ));
        }
        if let Some(g) = &self.group
            && !valid_name(g)
        {
            return Some(format!(
                "group must be 1 to {MAX_NAME} characters of letters, digits, '-', '_', '.', '@'"
            ));
        }
        let has = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.expose().trim().is_empty());
        if !has(&self.token) && !has(&self.refresh_token) && !has(&self.cursor_api_key) {
            return Some("give a token, a refresh_token or a cursor_api_key".into());
        }
        if let Some(u) = &self.upstream
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Some("upstream must be an http:// or https:// URL".into());
        }
        None
    }
}

impl NewAccount {
    /// The account as the pool takes it.
    fn config(&self, upstream: &str) -> AccountConfig {
        AccountConfig {
            refresh_token: self.refresh_token.clone(),
            cursor_api_key: self.cursor_api_key.clone(),
            upstream: Some(upstream.to_owned()),
            group: self.group.clone(),
            ..AccountConfig::named(&self.name)
        }
    }

    /// The tokens as the state store keeps renewed credentials.
    fn token_set(&self) -> TokenSet {
        let mut set = TokenSet::default();
        set.access_token = self.token.as_ref().map(|t| AccessToken::new(t.expose()));
        set.refresh_token = self.refresh_token.clone();
        set
    }

    /// The account as the accounts file keeps it.
    fn saved(&self, upstream: &str) -> SavedAccount {
        SavedAccount {
            name: self.name.clone(),
            email: self.token.as_ref().and_then(|t| email_claim(t.expose())),
            access_token: self.token.clone().unwrap_or_default(),
            refresh_token: self.refresh_token.clone(),
            source: "admin".into(),
            upstream: Some(upstream.to_owned()),
            cursor_api_key: self.cursor_api_key.clone(),
            group: self.group.clone(),
            disabled: false,
            added_unix: 0,
        }
    }
}

/// `POST /admin/v1/accounts`: the account joins the pool at once (new turns may pick it) and is
/// saved to the accounts file when the proxy has one.
pub(super) async fn add(
    State(st): State<Arc<AppState>>,
    body: Result<axum::Json<NewAccount>, JsonRejection>,
) -> Response {
    let new = match json_body(body) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    if let Some(problem) = new.problem() {
        return invalid(problem);
    }
    let pool = st.engine.pool();
    // Without an explicit upstream: the proxy's, or on the embedded mock the mock's.
    let upstream = new
        .upstream
        .clone()
        .or_else(|| st.ops.default_upstream.clone())
        .or_else(|| pool.accounts().first().map(|a| a.upstream().to_owned()))
        .unwrap_or_else(|| CURSOR_UPSTREAM.to_owned());
    let account = Account::new(
        new.config(&upstream),
        new.token.clone().unwrap_or_default(),
        &upstream,
    );
    if pool.add(account).is_err() {
        return AdminError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("an account named {:?} exists", new.name),
        )
        .into_response();
    }
    // Whatever an earlier account of this name left behind (its client) goes.
    st.engine.upstream().forget(&new.name);
    let token_set = new.token_set();
    let saved = new.saved(&upstream);
    let persisted = change_book(&st, move |book| book.upsert(saved).map(|()| true)).await;
    // Credentials stored by an earlier account of this name would win at the next start.
    remember_credentials(&st, &new.name, &token_set).await;
    tracing::info!(account = %new.name, group = ?new.group, persisted, "admin added an account");
    let body = json!({
        "name": new.name,
        "group": new.group,
        "upstream": upstream,
        "persisted": persisted,
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `DELETE /admin/v1/accounts/{name}`: new turns no longer use the account; a turn running on
/// it finishes; its health, stored cooldown and client are dropped (conversations bound to it
/// move to another account at their next request), and it leaves the accounts file.
pub(super) async fn remove(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if st.engine.pool().remove(&name).is_none() {
        return AdminError::not_found("account", &name).into_response();
    }
    st.engine.upstream().forget(&name);
    remember_credentials(&st, &name, &TokenSet::default()).await;
    // A cleared record, so that an account added again under this name does not inherit the
    // old cooldown (here, after a restart, or on another instance).
    if let Err(e) = st
        .engine
        .store()
        .save_account(&name, AccountRecord::default())
        .await
    {
        tracing::warn!(account = %name, error = %crate::ops::chain(&e),
                       "cannot clear the removed account's stored state");
    }
    let owned = name.clone();
    let in_file = change_book(&st, move |book| book.remove(&owned)).await;
    tracing::info!(account = %name, in_file, "admin removed an account");
    axum::Json(json!({ "name": name, "removed": true, "persisted": in_file })).into_response()
}

/// Applies `change` to the accounts file (one change at a time); false when there is no file,
/// it failed (logged), or `change` said nothing changed.
async fn change_book<F>(st: &AppState, change: F) -> bool
where
    F: FnOnce(&mut AccountBook) -> Result<bool, crate::ops::accounts::BookError> + Send + 'static,
{
    let file = st.ops.accounts_file.lock().await;
    let Some(path) = file.clone() else {
        return false;
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let mut book = AccountBook::open(&path)?;
        change(&mut book)
    })
    .await;
    match outcome {
        Ok(Ok(changed)) => changed,
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::ops::chain(&e),
                           "cannot update the accounts file; the change lasts until restart");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "accounts file update did not finish");
            false
        }
    }
}

/// Stores `set` as the account's renewed credentials (an empty set clears them), so that what
/// the store holds for the name never predates the account the admin just added or removed.
async fn remember_credentials(st: &AppState, name: &str, set: &TokenSet) {
    let bytes = if set.access_token.is_none() && set.refresh_token.is_none() {
        CLEARED.to_vec()
    } else {
        encode_tokens(set)
    };
    if let Err(e) = st.engine.store().save_credentials(name, bytes).await {
        tracing::warn!(account = %name, error = %crate::ops::chain(&e),
                       "cannot update the account's stored credentials");
    }
}
