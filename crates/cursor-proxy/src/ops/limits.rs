//! A key's limits checked against the store, so that they hold across instances: tokens per
//! day against the store's usage record, and requests per minute against a counter the
//! store shares between instances (Redis: `INCR` on one key per caller and minute, expiring
//! with the minute). Each process also keeps its own limiter ([`keys::admit`]), which paces
//! bursts and takes over while the shared store is unreachable.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tracing::warn;

use super::keys::{self, Admission, CallerKey, Limit, Refusal};
use super::usage;
use crate::store::{Store, now_ms};

/// The window of `requests_per_minute`.
const MINUTE: Duration = Duration::from_secs(60);

/// Applies `key`'s policy to a turn for `model`: the model list, tokens today from the store,
/// the concurrent slots and the local rate, then the rate shared through the store.
/// `refused_status` is how the caller's API answers a model it may not use.
///
/// # Errors
/// The refusal, naming the limit.
pub async fn admit(
    store: &dyn Store,
    key: &Arc<CallerKey>,
    model: &str,
    refused_status: StatusCode,
) -> Result<Admission, Refusal> {
    let policy = key.policy();
    let used_today = match policy.tokens_per_day {
        Some(_) => tokens_today(store, key).await,
        None => 0,
    };
    let admission = keys::admit(key, model, used_today, refused_status)?;
    if let Some(rpm) = policy.requests_per_minute {
        shared_rate(store, key, rpm).await?;
    }
    Ok(admission)
}

/// The key's tokens today; a store that cannot answer counts as none used (the request path
/// never fails because of the store), with a warning.
async fn tokens_today(store: &dyn Store, key: &CallerKey) -> u64 {
    match usage::tokens_today(store, key.caller_hash()).await {
        Ok(n) => n,
        Err(e) => {
            warn!(key = key.name(), error = %super::chain(&e),
                  "cannot read today's usage; tokens_per_day not checked for this request");
            0
        }
    }
}

/// One hit on the key's shared counter of this minute; refused past `rpm`. A store that is not
/// shared (memory, SQLite) or not reachable leaves the rate to the local limiter.
async fn shared_rate(store: &dyn Store, key: &CallerKey, rpm: u32) -> Result<(), Refusal> {
    let now = now_ms();
    let name = format!("rpm:{}:{}", key.caller_hash(), now / 60_000);
    let hits = match store.hit_window(&name, MINUTE).await {
        Ok(hits) => hits,
        Err(e) => {
            warn!(key = key.name(), error = %super::chain(&e),
                  "shared rate counter failed; this process limits on its own");
            None
        }
    };
    match hits {
        Some(n) if n > u64::from(rpm) => {
            let after = Duration::from_millis(60_000 - now % 60_000);
            let limit = Limit::RequestsPerMinute;
            Err(keys::rate_limited(
                key.name(),
                limit,
                rpm.into(),
                after,
                false,
            ))
        }
        _ => Ok(()),
    }
}
