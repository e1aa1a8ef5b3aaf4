//! The production upstream: Cursor's agent service through `cursor-connect`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cursor_connect::auth::OAuthRefresh;
use cursor_connect::{
    AccessToken, BlobStore, Credentials, CursorClient, DEFAULT_STALL_TIMEOUT, Error, ModelInfo,
    Refresh, RunRequest, Secret, TokenSet,
};
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use super::{Upstream, UpstreamRun};
use crate::engine::pool::Account;
use crate::store::Store;

/// Runs turns with `cursor-connect`, one client (one HTTP/2 connection, one blob store) per
/// account, reused by every request on that account.
///
/// The client's deadlines are the proxy's only upstream deadlines: a run that receives nothing
/// for the stall timeout (opening included) fails as `deadline_exceeded`, which the engine
/// retries on another account while the caller has seen nothing.
#[derive(Debug)]
pub struct CursorUpstream {
    stall_timeout: Duration,
    first_output_timeout: Option<Duration>,
    blobs: Option<Arc<dyn BlobStore>>,
    /// Where refreshed credentials are written before they are used.
    store: Option<Arc<dyn Store>>,
    /// Credentials read back from the store at startup, by account.
    restored: Mutex<HashMap<String, TokenSet>>,
    clients: Mutex<HashMap<String, (Secret, CursorClient)>>,
}

impl Default for CursorUpstream {
    fn default() -> Self {
        Self::new()
    }
}

impl CursorUpstream {
    /// A new upstream with no clients yet (they are built on first use), on the client's
    /// default stall timeout.
    pub fn new() -> Self {
        Self::with_stall_timeout(DEFAULT_STALL_TIMEOUT)
    }

    /// A new upstream whose runs fail as stalled after `timeout` without an inbound frame.
    pub fn with_stall_timeout(timeout: Duration) -> Self {
        Self {
            stall_timeout: timeout,
            first_output_timeout: None,
            blobs: None,
            store: None,
            restored: Mutex::default(),
            clients: Mutex::default(),
        }
    }

    /// Runs that produce no output for `timeout` while the server only sends heartbeats fail
    /// as stalled (none by default).
    pub fn first_output_timeout(mut self, timeout: Duration) -> Self {
        self.first_output_timeout = Some(timeout);
        self
    }

    /// Every account's client keeps its KV blobs in `blobs` (default: one in-memory store per
    /// client), e.g. a [`StoreBlobs`](crate::store::blobs::StoreBlobs) so that checkpoints
    /// survive a restart.
    pub fn blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Renewed credentials (a new access token, a rotated refresh token) are written to
    /// `store` before the client uses them, so a restart never falls back to a refresh token
    /// the server already rotated away.
    pub fn persist_credentials(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Reads the stored credentials of each renewable account in `accounts`; its client then
    /// starts from them instead of the configured ones.
    pub async fn restore_credentials(&self, accounts: &[Account]) {
        let Some(store) = &self.store else {
            return;
        };
        for account in accounts.iter().filter(|a| a.config().renewable()) {
            match store.credentials(account.name()).await {
                // Cleared when the account was removed; what is configured now applies.
                Ok(Some(bytes)) if bytes == CLEARED => {}
                Ok(Some(bytes)) => match decode_tokens(&bytes) {
                    Some(set) => {
                        info!(
                            account = account.name(),
                            "using the credentials stored by the last refresh"
                        );
                        self.restored
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(account.name().to_owned(), set);
                    }
                    None => warn!(
                        account = account.name(),
                        "stored credentials do not decode; using the configured ones"
                    ),
                },
                Ok(None) => {}
                Err(e) => warn!(account = account.name(), error = %e,
                                "cannot read stored credentials; using the configured ones"),
            }
        }
    }

    fn client(&self, account: &Account) -> Result<CursorClient, Error> {
        let token = account.token();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, c)) = clients.get(account.name())
            && t == &token
        {
            return Ok(c.clone());
        }
        let mut builder = CursorClient::builder()
            .base_url(account.upstream())
            .credentials(self.credentials(account, &token)?)
            .stall_timeout(self.stall_timeout);
        if let Some(timeout) = self.first_output_timeout {
            builder = builder.first_output_timeout(timeout);
        }
        if let Some(blobs) = &self.blobs {
            builder = builder.blob_store(Arc::clone(blobs));
        }
        let client = builder.build()?;
        clients.insert(account.name().to_owned(), (token, client.clone()));
        Ok(client)
    }
}

impl CursorUpstream {
    /// The account's credentials; with a refresh token or API key they renew themselves
    /// through Cursor's token endpoints on the account's API host (stored credentials, when
    /// there are, win over the configured ones).
    fn credentials(&self, account: &Account, token: &Secret) -> Result<Credentials, Error> {
        let cfg = account.config();
        let mut set = TokenSet::default();
        if !token.expose().is_empty() {
            set.access_token = Some(AccessToken::new(token.expose()));
        }
        set.refresh_token = cfg.refresh_token.clone();
        set.api_key = cfg.cursor_api_key.clone();
        if cfg.renewable()
            && let Some(stored) = self
                .restored
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(account.name())
        {
            set.access_token = stored.access_token.clone().or(set.access_token);
            set.refresh_token = stored.refresh_token.clone().or(set.refresh_token);
        }
        let creds = Credentials::from_tokens(set);
        if !cfg.renewable() {
            return Ok(creds);
        }
        let inner = OAuthRefresh::new(account.upstream())?;
        Ok(match &self.store {
            Some(store) => creds.with_refresh(Persisting {
                inner,
                store: Arc::clone(store),
                account: account.name().to_owned(),
            }),
            None => creds.with_refresh(inner),
        })
    }
}

/// A refresher that writes what it got to the store before handing it to the client.
#[derive(Debug)]
struct Persisting {
    inner: OAuthRefresh,
    store: Arc<dyn Store>,
    account: String,
}

impl Refresh for Persisting {
    fn refresh<'a>(&'a self, current: &'a TokenSet) -> BoxFuture<'a, Result<TokenSet, Error>> {
        Box::pin(async move {
            let fresh = self.inner.refresh(current).await?;
            // What the client will hold: a refresh token the answer left out stays.
            let mut kept = TokenSet::default();
            kept.access_token = fresh.access_token.clone();
            kept.refresh_token = fresh
                .refresh_token
                .clone()
                .or_else(|| current.refresh_token.clone());
            if let Err(e) = self
                .store
                .save_credentials(&self.account, encode_tokens(&kept))
                .await
            {
                warn!(account = %self.account, error = %e,
                      "cannot store the refreshed credentials; they live in memory only");
            }
            Ok(fresh)
        })
    }
}

/// What is stored for an account whose credentials were dropped (it was removed).
pub(crate) const CLEARED: &[u8] = b"{}";

/// The stored form of credentials: JSON with the access and refresh tokens (never the API
/// key, which stays in the config).
pub(crate) fn encode_tokens(set: &TokenSet) -> Vec<u8> {
    serde_json::json!({
        "access_token": set.access_token.as_ref().map(|t| t.secret().expose()),
        "refresh_token": set.refresh_token.as_ref().map(|t| t.expose()),
    })
    .to_string()
    .into_bytes()
}

fn decode_tokens(bytes: &[u8]) -> Option<TokenSet> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut set = TokenSet::default();
    set.access_token = v["access_token"].as_str().map(AccessToken::new);
    set.refresh_token = v["refresh_token"].as_str().map(Secret::new);
    (set.access_token.is_some() || set.refresh_token.is_some()).then_some(set)
}

impl Upstream for CursorUpstream {
    fn run<'a>(
        &'a self,
        account: &'a Account,
        request: RunRequest,
    ) -> BoxFuture<'a, Result<Box<dyn UpstreamRun>, Error>> {
        Box::pin(async move {
            let run = self.client(account)?.agent().run(request).await?;
            Ok(Box::new(run) as Box<dyn UpstreamRun>)
        })
    }

    fn models<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<Vec<ModelInfo>, Error>> {
        Box::pin(async move { self.client(account)?.usable_models().await })
    }

    fn forget(&self, name: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.restored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    fn refresh<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            // Renewable credentials: drop the rejected access token and fetch a new one now.
            if account.config().renewable() {
                let client = self.client(account)?;
                client.credentials().invalidate().await;
                client.credentials().current().await?;
                return Ok(true);
            }
            // Otherwise re-read the token's source (a rotated file or variable).
            let token = account
                .config()
                .load_token()
                .map_err(|e| Error::credentials_with_source("cannot reload credentials", e))?;
            let changed = account.set_token(token);
            if changed {
                self.clients
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(account.name());
            }
            Ok(changed)
        })
    }
}
