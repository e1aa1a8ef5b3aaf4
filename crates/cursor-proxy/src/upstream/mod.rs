//! The proxy's seam to the backend: "run a turn on this account".
//!
//! Everything the engine needs from Cursor goes through [`Upstream`] and [`UpstreamRun`], in
//! `cursor-connect`'s own vocabulary ([`RunRequest`], [`Event`], [`ToolResult`], [`ModelInfo`],
//! [`cursor_connect::Error`] with its classification), so the session, pool and retry logic can
//! be tested against a scripted backend that speaks the same types. The production
//! implementation ([`cursor::CursorUpstream`]) is `cursor-connect`'s client, one per account.

pub mod cursor;
pub(crate) mod embedded;
#[cfg(test)]
pub(crate) mod fake;

use std::fmt;

use cursor_connect::{Error, Event, ModelInfo, Run, RunRequest, ToolResult};
use futures_util::future::BoxFuture;

use crate::engine::pool::Account;

/// One open upstream turn (a `cursor_connect::Run`, or a test double).
pub trait UpstreamRun: Send + fmt::Debug {
    /// Next event; `Ok(None)` after the turn ended cleanly. Errors are sticky.
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<Event>, Error>>;
    /// Answers tool call `call_id`; the turn then continues.
    fn respond<'a>(
        &'a mut self,
        call_id: &'a str,
        result: ToolResult,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Stops the turn early (best effort).
    fn cancel(&mut self) -> BoxFuture<'_, ()>;
}

impl UpstreamRun for Run {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<Event>, Error>> {
        Box::pin(Self::next_event(self))
    }

    fn respond<'a>(
        &'a mut self,
        call_id: &'a str,
        result: ToolResult,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Self::respond(self, call_id, result))
    }

    fn cancel(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = Self::cancel(self).await;
        })
    }
}

/// A backend the proxy can run turns on.
pub trait Upstream: Send + Sync + fmt::Debug {
    /// Starts a turn on `account`.
    fn run<'a>(
        &'a self,
        account: &'a Account,
        request: RunRequest,
    ) -> BoxFuture<'a, Result<Box<dyn UpstreamRun>, Error>>;
    /// Lists the models `account` may use.
    fn models<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<Vec<ModelInfo>, Error>>;
    /// Renews the account's credentials; `Ok(true)` when they changed.
    fn refresh<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<bool, Error>>;
    /// The account `name` was removed from the pool: drop what is kept for it (its client),
    /// so an account added later under the same name starts afresh. Runs already open keep
    /// their client.
    fn forget(&self, _name: &str) {}
}
