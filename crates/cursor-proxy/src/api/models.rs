//! `GET /v1/models`: the upstream list, cached, with the last good answer kept for failures.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tracing::warn;

use cursor_connect::ModelInfo;
use cursor_connect::classify::Category;

use crate::api::error::ApiError;
use crate::engine::{Engine, classification};

/// The cache.
#[derive(Debug)]
pub struct ModelCache {
    ttl: Duration,
    last: Mutex<Option<(Instant, Vec<ModelInfo>)>>,
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
    pub async fn list(&self, engine: &Engine) -> Result<Vec<ModelInfo>, ApiError> {
        // Holding the lock across the fetch makes concurrent callers share one upstream call.
        let mut last = self.last.lock().await;
        if let Some((at, list)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(list.clone());
        }
        let fetched = match engine.pool().pick(None, &[], engine.pool().now()) {
            // The client's unary timeout bounds the call.
            Ok(pick) => match engine.upstream().models(&pick.account).await {
                Ok(list) if !list.is_empty() => Ok(list),
                Ok(_) => Err(ApiError::new(
                    http::StatusCode::BAD_GATEWAY,
                    Category::UpstreamUnavailable,
                    "upstream returned no models",
                )),
                Err(e) => Err(ApiError::upstream(&e, &classification(&e))),
            },
            Err(e) => Err(ApiError::no_account(&e, None)),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::engine::pool::{Account, Pool};
    use crate::ops::config::{AccountConfig, Secret};
    use crate::upstream::fake::FakeUpstream;

    #[tokio::test]
    async fn caches_and_falls_back_to_the_last_good_list() {
        let fake = FakeUpstream::new(|_, _| Vec::new());
        let fail = Arc::clone(&fake.models_fail);
        let pool = Pool::new(vec![Account::new(
            AccountConfig::named("a"),
            Secret::new("t"),
            "http://127.0.0.1:1",
        )]);
        let engine = Engine::new(Arc::new(fake), Arc::new(pool), EngineConfig::default());
        let cache = ModelCache::new(Duration::ZERO);
        fail.store(true, Ordering::SeqCst);
        assert_eq!(
            cache.list(&engine).await.unwrap_err().status,
            503,
            "no last-good list yet"
        );
        fail.store(false, Ordering::SeqCst);
        assert_eq!(cache.list(&engine).await.unwrap()[0].id, "fake-1");
        fail.store(true, Ordering::SeqCst);
        assert_eq!(
            cache.list(&engine).await.unwrap()[0].id,
            "fake-1",
            "last good list served"
        );
    }
}
