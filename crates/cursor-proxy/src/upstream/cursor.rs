//! The production upstream: Cursor's agent service through `cursor-connect`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cursor_connect::auth::OAuthRefresh;
use cursor_connect::{
    AccessToken, BlobStore, Credentials, CursorClient, DEFAULT_STALL_TIMEOUT, Error, ModelInfo,
    RunRequest, TokenSet,
};
use futures_util::future::BoxFuture;

use super::{Upstream, UpstreamRun};
use crate::engine::pool::Account;

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
    clients: Mutex<HashMap<String, (crate::ops::config::Secret, CursorClient)>>,
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
            .credentials(credentials(account, &token)?)
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

/// The account's credentials; with a refresh token or API key they renew themselves through
/// Cursor's token endpoints on the account's API host.
fn credentials(
    account: &Account,
    token: &crate::ops::config::Secret,
) -> Result<Credentials, Error> {
    let cfg = account.config();
    let mut set = TokenSet::default();
    if !token.expose().is_empty() {
        set.access_token = Some(AccessToken::new(token.expose()));
    }
    set.refresh_token = cfg.refresh_token.clone();
    set.api_key = cfg.cursor_api_key.clone();
    let creds = Credentials::from_tokens(set);
    if !cfg.renewable() {
        return Ok(creds);
    }
    let refresher = OAuthRefresh::new(account.upstream())?;
    Ok(creds.with_refresh(refresher))
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
