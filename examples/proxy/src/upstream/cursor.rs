//! The production upstream: Cursor's agent service through `cursor-connect`.

use futures_util::future::BoxFuture;
use http::StatusCode;

use super::{ModelEntry, TurnRequest, UpResult, Upstream, UpstreamError, UpstreamRun};
use crate::pool::Account;

/// Runs turns with `cursor-connect`, one client (and HTTP/2 channel) per account.
#[derive(Debug, Default)]
pub struct CursorUpstream {}

impl CursorUpstream {
    /// A new upstream with no clients yet (they are built on first use).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Upstream for CursorUpstream {
    fn run<'a>(
        &'a self,
        _account: &'a Account,
        _request: TurnRequest,
    ) -> BoxFuture<'a, UpResult<Box<dyn UpstreamRun>>> {
        Box::pin(async {
            Err(UpstreamError::local(
                StatusCode::NOT_IMPLEMENTED,
                "internal",
                "not wired",
            ))
        })
    }
    fn models<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, UpResult<Vec<ModelEntry>>> {
        Box::pin(async {
            Err(UpstreamError::local(
                StatusCode::NOT_IMPLEMENTED,
                "internal",
                "not wired",
            ))
        })
    }
    fn refresh<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, UpResult<bool>> {
        Box::pin(async { Ok(false) })
    }
}
