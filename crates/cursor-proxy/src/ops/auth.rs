//! Caller authentication: proxy API keys as `Authorization: Bearer` or `x-api-key`.

use http::HeaderMap;

use crate::api::error::ApiError;
use crate::ops::config::Secret;

/// Checks callers' keys.
#[derive(Debug, Clone)]
pub struct Auth {
    keys: Vec<Secret>,
    open: bool,
}

impl Auth {
    /// Only these keys are accepted.
    pub fn keys(keys: Vec<Secret>) -> Self {
        Self { keys, open: false }
    }

    /// Any key (or none) is accepted: the embedded mock on loopback with no key configured.
    pub fn open() -> Self {
        Self {
            keys: Vec::new(),
            open: true,
        }
    }

    /// Whether any key is accepted.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The presented key if it is accepted (the session key is derived from it).
    pub fn check(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let presented = presented_key(headers);
        if self.open {
            return Ok(presented.unwrap_or_default().to_owned());
        }
        let key = presented.ok_or_else(ApiError::unauthorized)?;
        // Compare against every key without early exit, so timing says nothing about which matched.
        let mut ok = false;
        for k in &self.keys {
            ok |= constant_time_eq(k.expose().as_bytes(), key.as_bytes());
        }
        if ok {
            Ok(key.to_owned())
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim()).filter(|k| !k.is_empty());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let auth = Auth::keys(vec![Secret::new("sk-good")]);
        assert_eq!(
            auth.check(&headers("authorization", "Bearer sk-good"))
                .unwrap(),
            "sk-good"
        );
        assert_eq!(
            auth.check(&headers("authorization", "bearer sk-good"))
                .unwrap(),
            "sk-good"
        );
        assert_eq!(
            auth.check(&headers("x-api-key", "sk-good")).unwrap(),
            "sk-good"
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
