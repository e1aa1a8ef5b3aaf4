//! `GET /v1/models`: the upstream list, cached, with the last good answer kept for failures.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tracing::warn;

use crate::engine::Engine;
use crate::errors::ApiError;
use crate::upstream::ModelEntry;

/// Deadline for one upstream model-list call.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// The cache.
#[derive(Debug)]
pub struct ModelCache {
    ttl: Duration,
    last: Mutex<Option<(Instant, Vec<ModelEntry>)>>,
}

impl ModelCache {
    /// A cache whose answers stay fresh for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last: Mutex::new(None),
        }
    }

    /// The model list: fresh from cache, else fetched, else the last good list.
    pub async fn list(&self, engine: &Engine) -> Result<Vec<ModelEntry>, ApiError> {
        // Holding the lock across the fetch makes concurrent callers share one upstream call.
        let mut last = self.last.lock().await;
        if let Some((at, list)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(list.clone());
        }
        let fetched = match engine.pool().pick(None, &[], Instant::now()) {
            Ok(pick) => {
                match tokio::time::timeout(FETCH_TIMEOUT, engine.upstream().models(pick.account))
                    .await
                {
                    Ok(Ok(list)) if !list.is_empty() => Ok(list),
                    Ok(Ok(_)) => Err(ApiError::new(
                        http::StatusCode::BAD_GATEWAY,
                        "upstream_unavailable",
                        "upstream returned no models",
                    )),
                    Ok(Err(e)) => Err(ApiError::from(&e)),
                    Err(_) => Err(ApiError::new(
                        http::StatusCode::GATEWAY_TIMEOUT,
                        "deadline_exceeded",
                        "model list timed out",
                    )),
                }
            }
            Err(e) => Err(ApiError::no_account(e, None)),
        };
        match fetched {
            Ok(list) => {
                *last = Some((Instant::now(), list.clone()));
                Ok(list)
            }
            Err(e) => match last.as_ref() {
                Some((_, list)) => {
                    warn!(status = e.status.as_u16(), category = %e.category, "model list fetch failed; serving the last good list");
                    Ok(list.clone())
                }
                None => Err(e),
            },
        }
    }
}
