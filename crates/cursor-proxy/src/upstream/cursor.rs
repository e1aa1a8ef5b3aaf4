//! The production upstream: Cursor's agent service through `cursor-connect`.

use std::collections::HashMap;
use std::sync::Mutex;

use cursor_connect::auth::OAuthRefresh;
use cursor_connect::{
    AccessToken, Credentials, CursorClient, Error as ClientError, ErrorKind, Event, ImageInput,
    Run, RunRequest, Secret as ClientSecret, TokenSet, ToolDefinition, ToolResult,
};
use futures_util::future::BoxFuture;
use http::StatusCode;
use tracing::debug;

use super::{
    FailureAdvice, ModelEntry, TokenUsage, ToolCall, ToolOutput, TurnRequest, UpEvent, UpResult,
    Upstream, UpstreamError, UpstreamRun,
};
use crate::engine::pool::Account;

/// Runs turns with `cursor-connect`, one client (one HTTP/2 connection, one blob store) per
/// account, reused by every request on that account.
#[derive(Debug, Default)]
pub struct CursorUpstream {
    clients: Mutex<HashMap<String, (crate::ops::config::Secret, CursorClient)>>,
}

impl CursorUpstream {
    /// A new upstream with no clients yet (they are built on first use).
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self, account: &Account) -> UpResult<CursorClient> {
        let token = account.token();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, c)) = clients.get(account.name())
            && t == &token
        {
            return Ok(c.clone());
        }
        let client = CursorClient::builder()
            .base_url(account.upstream())
            .credentials(credentials(account, &token)?)
            .build()
            .map_err(|e| convert(&e))?;
        clients.insert(account.name().to_owned(), (token, client.clone()));
        Ok(client)
    }
}

/// The account's credentials; with a refresh token or API key they renew themselves through
/// Cursor's token endpoints on the account's API host.
fn credentials(account: &Account, token: &crate::ops::config::Secret) -> UpResult<Credentials> {
    let cfg = account.config();
    let mut set = TokenSet::default();
    if !token.expose().is_empty() {
        set.access_token = Some(AccessToken::new(token.expose()));
    }
    set.refresh_token = cfg
        .refresh_token
        .as_ref()
        .map(|t| ClientSecret::new(t.expose()));
    set.api_key = cfg
        .cursor_api_key
        .as_ref()
        .map(|k| ClientSecret::new(k.expose()));
    let creds = Credentials::from_tokens(set);
    if !cfg.renewable() {
        return Ok(creds);
    }
    let refresher = OAuthRefresh::new(account.upstream()).map_err(|e| convert(&e))?;
    Ok(creds.with_refresh(refresher))
}

/// Turns a client error into the proxy's classified failure.
pub fn convert(e: &ClientError) -> UpstreamError {
    let message = e
        .connect_error()
        .map_or_else(|| e.to_string(), |c| c.message().to_owned());
    let (status, category, advice) = match e.classification() {
        Some(c) => {
            let a = c.advice();
            let advice = FailureAdvice {
                retry_other_account: a.retry_other_account(),
                retry_same_account: a.retry_same_account(),
                cooldown: a.cooldown(),
                retry_after: a.retry_after(),
                refresh_credentials: a.refresh_credentials(),
                disable_account: a.disable_account(),
            };
            (c.status(), c.category().as_str(), advice)
        }
        None => {
            let other = FailureAdvice {
                retry_other_account: true,
                ..FailureAdvice::default()
            };
            match e.kind() {
                ErrorKind::Stalled => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", other),
                ErrorKind::MissingTurnEnded | ErrorKind::Protocol => {
                    (StatusCode::BAD_GATEWAY, "transport", other)
                }
                ErrorKind::Credentials => (
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    FailureAdvice {
                        refresh_credentials: true,
                        ..other
                    },
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    FailureAdvice::default(),
                ),
            }
        }
    };
    UpstreamError {
        status,
        category,
        message,
        code: e.connect_error().map(|c| c.code().as_str()),
        advice,
        source: Some(Box::new(e.clone())),
    }
}

fn to_request(r: TurnRequest) -> RunRequest {
    let mut req = RunRequest::new(r.model, r.user_text)
        .conversation_id(r.conversation_id)
        .thinking(r.thinking)
        .tools(
            r.tools
                .into_iter()
                .map(|t| ToolDefinition::new(t.name, t.description, t.input_schema))
                .collect(),
        );
    if let Some(s) = r.system_prompt {
        req = req.system_prompt(s);
    }
    if let Some(cp) = r.checkpoint {
        req = req.checkpoint(cp);
    }
    for i in r.images {
        req = req.image(ImageInput::new(i.mime, i.data));
    }
    req
}

impl Upstream for CursorUpstream {
    fn run<'a>(
        &'a self,
        account: &'a Account,
        request: TurnRequest,
    ) -> BoxFuture<'a, UpResult<Box<dyn UpstreamRun>>> {
        Box::pin(async move {
            let client = self.client(account)?;
            let run = client
                .agent()
                .run(to_request(request))
                .await
                .map_err(|e| convert(&e))?;
            Ok(Box::new(CursorRun(run)) as Box<dyn UpstreamRun>)
        })
    }

    fn models<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, UpResult<Vec<ModelEntry>>> {
        Box::pin(async move {
            let list = self
                .client(account)?
                .usable_models()
                .await
                .map_err(|e| convert(&e))?;
            Ok(list
                .into_iter()
                .map(|m| ModelEntry {
                    id: m.id,
                    display_name: m.display_name,
                })
                .collect())
        })
    }

    fn refresh<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, UpResult<bool>> {
        Box::pin(async move {
            // Renewable credentials: drop the rejected access token and fetch a new one now.
            if account.config().renewable() {
                let client = self.client(account)?;
                client.credentials().invalidate().await;
                client
                    .credentials()
                    .current()
                    .await
                    .map_err(|e| convert(&e))?;
                return Ok(true);
            }
            // Otherwise re-read the token's source (a rotated file or variable).
            let token = account.config().load_token().map_err(|e| {
                UpstreamError::local(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    format!("cannot reload credentials: {e}"),
                )
            })?;
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

/// One `cursor-connect` run.
#[derive(Debug)]
struct CursorRun(Run);

impl UpstreamRun for CursorRun {
    fn next_event(&mut self) -> BoxFuture<'_, UpResult<Option<UpEvent>>> {
        Box::pin(async move {
            loop {
                let ev = match self.0.next_event().await {
                    Ok(Some(ev)) => ev,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(convert(&e)),
                };
                return Ok(Some(match ev {
                    Event::TextDelta(t) => UpEvent::Text(t),
                    Event::ThinkingDelta(t) => UpEvent::Thinking(t),
                    Event::ThinkingCompleted => UpEvent::ThinkingDone,
                    Event::ToolCall(c) => UpEvent::ToolCall(ToolCall {
                        id: c.id,
                        name: c.name,
                        arguments: c.arguments,
                    }),
                    Event::TokenDelta(n) => UpEvent::TokenDelta(n),
                    Event::Checkpoint(cp) => UpEvent::Checkpoint(cp),
                    Event::TurnEnded(u) => UpEvent::TurnEnded(TokenUsage {
                        input_tokens: u.input_tokens,
                        output_tokens: u.output_tokens,
                        cache_read_tokens: u.cache_read_tokens,
                        cache_write_tokens: u.cache_write_tokens,
                        reasoning_tokens: u.reasoning_tokens,
                    }),
                    Event::Notice(n) => {
                        // Server notices (quota warnings, model switches) are not answer text.
                        debug!(notice = %n, "upstream notice");
                        continue;
                    }
                    _ => continue,
                }));
            }
        })
    }

    fn respond(&mut self, output: ToolOutput) -> BoxFuture<'_, UpResult<()>> {
        Box::pin(async move {
            let result = if output.is_error {
                ToolResult::error(output.content)
            } else {
                ToolResult::text(output.content)
            };
            self.0
                .respond(&output.call_id, result)
                .await
                .map_err(|e| convert(&e))
        })
    }

    fn cancel(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.0.cancel().await;
        })
    }
}
