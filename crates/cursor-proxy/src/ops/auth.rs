//! Caller authentication: proxy API keys as `Authorization: Bearer` or `x-api-key`.

use std::sync::Arc;

use http::HeaderMap;

use crate::api::error::ApiError;
use crate::ops::config::Secret;
use crate::ops::keys::{CallerKey, KeyPolicy, KeyRing, KeySpec, presented_key};

/// Checks callers' keys against the [`KeyRing`].
#[derive(Debug, Clone)]
pub struct Auth {
    ring: Arc<KeyRing>,
    open: bool,
}

/// An accepted caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The presented key: the session key is derived from it (never logged).
    pub session_key: String,
    /// The key and its policy; `None` in open mode.
    pub key: Option<Arc<CallerKey>>,
}

impl Auth {
    /// Only these keys are accepted (named `key-1`, `key-2`, …, without limits).
    pub fn keys(keys: Vec<Secret>) -> Self {
        let specs: Vec<KeySpec> = keys
            .into_iter()
            .enumerate()
            .map(|(i, secret)| KeySpec {
                name: format!("key-{}", i + 1),
                secret,
                policy: KeyPolicy::default(),
            })
            .collect();
        Self::ring(Arc::new(KeyRing::new(&specs)), false)
    }

    /// The keys of `ring`; with `open`, any key (or none) is also accepted while the ring is
    /// empty: the embedded mock on loopback with no key configured.
    pub fn ring(ring: Arc<KeyRing>, open: bool) -> Self {
        Self { ring, open }
    }

    /// Any key (or none) is accepted.
    pub fn open() -> Self {
        Self::ring(Arc::default(), true)
    }

    /// Whether any key is accepted.
    pub fn is_open(&self) -> bool {
        self.open && self.ring.is_empty()
    }

    /// The presented key if it is accepted (the session key is derived from it).
    pub fn check(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        self.caller(headers).map(|c| c.session_key)
    }

    /// The accepted caller and its key's policy.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = presented_key(headers);
        if self.is_open() {
            return Ok(Caller {
                session_key: presented.unwrap_or_default().to_owned(),
                key: None,
            });
        }
        let presented = presented.ok_or_else(ApiError::unauthorized)?;
        let key = self
            .ring
            .find(presented)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Caller {
            session_key: presented.to_owned(),
            key: Some(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_and_x_api_key() {
        let auth = Auth::keys(vec![Secret::new("sk-good-key")]);
        assert_eq!(
            auth.check(&headers("authorization", "Bearer sk-good-key"))
                .unwrap(),
            "sk-good-key"
        );
        assert_eq!(
            auth.check(&headers("authorization", "bearer sk-good-key"))
                .unwrap(),
            "sk-good-key"
        );
        assert_eq!(
            auth.check(&headers("x-api-key", "sk-good-key")).unwrap(),
            "sk-good-key"
        );
        assert_eq!(
            auth.check(&headers("x-api-key", "sk-bad"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            auth.check(&headers("authorization", "Basic c2stZ29vZA=="))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(auth.check(&HeaderMap::new()).unwrap_err().status, 401);
    }

    #[test]
    fn open_mode_accepts_anything() {
        let auth = Auth::open();
        assert_eq!(
            auth.check(&headers("x-api-key", "whatever")).unwrap(),
            "whatever"
        );
        assert_eq!(auth.check(&HeaderMap::new()).unwrap(), "");
    }
}
