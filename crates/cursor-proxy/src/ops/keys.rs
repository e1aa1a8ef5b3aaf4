//! Caller keys and their policies: which models a key may use, how many requests a minute, how
//! many tokens a day, how many turns at once.
//!
//! The [`KeyRing`] is the seam for persistence: keys are added, revoked and changed only through
//! its methods, so a store-backed ring (issue "State that survives") can replace the in-memory
//! list without touching the request path.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cursor_connect::classify::Category;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::usage::seconds_to_utc_midnight;
use crate::api::error::ApiError;
use crate::ops::config::Secret;
use crate::store::KeyRecord;

/// What a key may do. Every limit is optional; an empty model list allows every model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Allowed models: exact names or globs with `*` and `?` (empty: all).
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests a minute.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Requests allowed at once before the per-minute pace applies (default: the per-minute
    /// number, i.e. a full minute's worth).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Input plus output tokens a UTC day.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// Turns running at once (streamed or not).
    #[serde(default)]
    pub max_concurrent_streams: Option<u32>,
    /// The account group this key's turns are pinned to: only accounts of that group serve them.
    #[serde(default)]
    pub account_group: Option<String>,
}

impl KeyPolicy {
    /// Whether `model` is allowed.
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| glob_match(p, model))
    }

    /// Why the policy is unusable, if it is.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_minute == Some(0) || self.burst == Some(0) {
            return Err("requests_per_minute and burst must be at least 1".into());
        }
        if self.max_concurrent_streams == Some(0) {
            return Err("max_concurrent_streams must be at least 1".into());
        }
        if self.models.iter().any(|m| m.trim().is_empty()) {
            return Err("models: empty pattern".into());
        }
        Ok(())
    }
}

/// One caller key in the config file (`[[keys]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name shown in logs, metrics and the admin API (never the secret).
    pub name: String,
    /// The secret inline.
    #[serde(default)]
    pub key: Option<Secret>,
    /// Environment variable holding the secret.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Allowed models (exact or glob; empty: all).
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests a minute.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Burst before the per-minute pace applies.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Tokens a UTC day.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// Turns at once.
    #[serde(default)]
    pub max_concurrent_streams: Option<u32>,
    /// Pinned account group.
    #[serde(default)]
    pub account_group: Option<String>,
}

impl KeyConfig {
    /// The policy part.
    pub fn policy(&self) -> KeyPolicy {
        KeyPolicy {
            models: self.models.clone(),
            requests_per_minute: self.requests_per_minute,
            burst: self.burst,
            tokens_per_day: self.tokens_per_day,
            max_concurrent_streams: self.max_concurrent_streams,
            account_group: self.account_group.clone(),
        }
    }
}

/// A key as the ring holds it: name, secret, policy.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Name.
    pub name: String,
    /// Secret.
    pub secret: Secret,
    /// Policy.
    pub policy: KeyPolicy,
}

/// A live key: its spec plus the limiter and the count of running turns.
pub struct CallerKey {
    name: String,
    digest: [u8; 32],
    /// [`crate::store::caller_hash`] of the secret: what the store's usage is keyed by.
    caller: String,
    policy: RwLock<KeyPolicy>,
    limiter: RwLock<Option<Arc<DefaultDirectRateLimiter>>>,
    running: AtomicU32,
}

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn limiter(policy: &KeyPolicy) -> Option<Arc<DefaultDirectRateLimiter>> {
    let n = NonZeroU32::new(policy.requests_per_minute?)?;
    let mut quota = Quota::per_minute(n);
    if let Some(b) = policy.burst.and_then(NonZeroU32::new) {
        quota = quota.allow_burst(b);
    }
    Some(Arc::new(RateLimiter::direct(quota)))
}

impl CallerKey {
    /// A key known only by its hashes (added through the admin API, restored from the store).
    fn hashed(name: &str, digest: [u8; 32], caller: &str, policy: KeyPolicy) -> Self {
        Self {
            name: name.to_owned(),
            digest,
            caller: caller.to_owned(),
            limiter: RwLock::new(limiter(&policy)),
            policy: RwLock::new(policy),
            running: AtomicU32::new(0),
        }
    }

    fn new(spec: &KeySpec) -> Self {
        Self {
            name: spec.name.clone(),
            digest: digest(spec.secret.expose()),
            caller: crate::store::caller_hash(spec.secret.expose()),
            limiter: RwLock::new(limiter(&spec.policy)),
            policy: RwLock::new(spec.policy.clone()),
            running: AtomicU32::new(0),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the secret (what the store keeps for authentication).
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The hash the store's usage rows and shared counters are keyed by (never the secret).
    pub fn caller_hash(&self) -> &str {
        &self.caller
    }

    /// The key's policy now.
    pub fn policy(&self) -> KeyPolicy {
        read(&self.policy).clone()
    }

    /// Turns running on this key now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// Replaces the policy; the rate limiter restarts only when the rate changed.
    fn set_policy(&self, policy: KeyPolicy) {
        let mut p = write(&self.policy);
        if (p.requests_per_minute, p.burst) != (policy.requests_per_minute, policy.burst) {
            *write(&self.limiter) = limiter(&policy);
        }
        *p = policy;
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// SHA-256 of a key: the ring keeps only digests, and compares fixed-length digests in constant
/// time, so neither the secret's length nor the position of a mismatch shows in timing.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of a presented secret and a stored digest.
pub fn matches(presented: &str, stored: &[u8; 32]) -> bool {
    bool::from(digest(presented).ct_eq(stored))
}

/// Why a change to the keys was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Two keys share a name.
    #[error("duplicate key name {0:?}")]
    DuplicateName(String),
    /// Two keys share a secret.
    #[error("key {0:?} has the same secret as another key")]
    DuplicateSecret(String),
    /// A key's name is empty or too long.
    #[error("invalid key name {0:?} (1 to 64 characters of letters, digits, - _ .)")]
    BadName(String),
    /// A key's secret is empty, or (for keys added through the admin API) shorter than 8.
    #[error("key {0:?}: secret empty or shorter than 8 characters")]
    ShortSecret(String),
    /// A policy is unusable.
    #[error("key {name:?}: {reason}")]
    BadPolicy {
        /// The key.
        name: String,
        /// Why.
        reason: String,
    },
    /// No key has this name.
    #[error("no key named {0:?}")]
    NotFound(String),
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.chars().take(64).collect()))
    }
}

/// Checks a full set of keys before it replaces the live one.
pub fn validate(specs: &[KeySpec]) -> Result<(), KeyError> {
    let mut digests = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        check_name(&s.name)?;
        if s.secret.expose().is_empty() {
            return Err(KeyError::ShortSecret(s.name.clone()));
        }
        s.policy.validate().map_err(|reason| KeyError::BadPolicy {
            name: s.name.clone(),
            reason,
        })?;
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(KeyError::DuplicateName(s.name.clone()));
        }
        let d = digest(s.secret.expose());
        if digests.contains(&d) {
            return Err(KeyError::DuplicateSecret(s.name.clone()));
        }
        digests.push(d);
    }
    Ok(())
}

/// The live set of caller keys: the config's, with the admin API's changes on top.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<Vec<Arc<CallerKey>>>,
    /// The admin API's changes by key name, applied again after every reload of the config.
    changes: RwLock<std::collections::BTreeMap<String, KeyRecord>>,
}

impl KeyRing {
    /// A ring holding `specs` (validate them first).
    pub fn new(specs: &[KeySpec]) -> Self {
        Self {
            keys: RwLock::new(specs.iter().map(|s| Arc::new(CallerKey::new(s))).collect()),
            changes: RwLock::default(),
        }
    }

    /// Remembers an admin change (applied now by the caller, and after each reload).
    pub fn remember(&self, record: KeyRecord) {
        write(&self.changes).insert(record.name.clone(), record);
    }

    /// The admin change remembered for `name`, if any.
    pub fn remembered(&self, name: &str) -> Option<KeyRecord> {
        read(&self.changes).get(name).cloned()
    }

    /// Applies every remembered change to the live keys (at startup and after a reload). A
    /// change that no longer fits (its secret now belongs to another key) is skipped, logged.
    pub fn apply_remembered(&self) {
        let changes = read(&self.changes);
        let mut keys = write(&self.keys);
        for r in changes.values() {
            apply_record(&mut keys, r);
        }
    }

    /// The key whose secret is `presented`; every key is compared, so timing does not say which.
    pub fn find(&self, presented: &str) -> Option<Arc<CallerKey>> {
        let keys = read(&self.keys);
        let mut found = None;
        for k in keys.iter() {
            if matches(presented, &k.digest) {
                found = Some(Arc::clone(k));
            }
        }
        found
    }

    /// All keys (for listing; no secrets are held).
    pub fn list(&self) -> Vec<Arc<CallerKey>> {
        read(&self.keys).clone()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        read(&self.keys).is_empty()
    }

    /// Adds one key.
    pub fn add(&self, spec: &KeySpec) -> Result<(), KeyError> {
        let mut keys = write(&self.keys);
        check_name(&spec.name)?;
        if spec.secret.expose().len() < 8 {
            return Err(KeyError::ShortSecret(spec.name.clone()));
        }
        spec.policy
            .validate()
            .map_err(|reason| KeyError::BadPolicy {
                name: spec.name.clone(),
                reason,
            })?;
        if keys.iter().any(|k| k.name == spec.name) {
            return Err(KeyError::DuplicateName(spec.name.clone()));
        }
        let d = digest(spec.secret.expose());
        if keys.iter().any(|k| bool::from(k.digest.ct_eq(&d))) {
            return Err(KeyError::DuplicateSecret(spec.name.clone()));
        }
        keys.push(Arc::new(CallerKey::new(spec)));
        Ok(())
    }

    /// Removes the key named `name`; turns already running on it finish.
    pub fn revoke(&self, name: &str) -> Result<(), KeyError> {
        let mut keys = write(&self.keys);
        let before = keys.len();
        keys.retain(|k| k.name != name);
        if keys.len() == before {
            return Err(KeyError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Changes the policy of the key named `name`.
    pub fn set_policy(&self, name: &str, policy: KeyPolicy) -> Result<(), KeyError> {
        policy.validate().map_err(|reason| KeyError::BadPolicy {
            name: name.to_owned(),
            reason,
        })?;
        let keys = read(&self.keys);
        let key = keys
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| KeyError::NotFound(name.to_owned()))?;
        key.set_policy(policy);
        Ok(())
    }

    /// Replaces the whole set (a reload). Keys that keep their name and secret keep their rate
    /// limiter state and running count, so a reload does not hand out a fresh minute.
    pub fn replace(&self, specs: &[KeySpec]) -> Result<(), KeyError> {
        validate(specs)?;
        let mut keys = write(&self.keys);
        let next = specs
            .iter()
            .map(|s| {
                let d = digest(s.secret.expose());
                match keys.iter().find(|k| k.name == s.name && k.digest == d) {
                    Some(k) => {
                        k.set_policy(s.policy.clone());
                        Arc::clone(k)
                    }
                    None => Arc::new(CallerKey::new(s)),
                }
            })
            .collect();
        *keys = next;
        drop(keys);
        self.apply_remembered();
        Ok(())
    }
}

/// Applies one stored admin change: a revocation, a key known by its hashes, or a policy.
fn apply_record(keys: &mut Vec<Arc<CallerKey>>, r: &KeyRecord) {
    if r.revoked {
        keys.retain(|k| k.name != r.name);
        return;
    }
    let policy = match r.policy.as_deref().map(serde_json::from_str::<KeyPolicy>) {
        Some(Ok(p)) if p.validate().is_ok() => Some(p),
        None => None,
        Some(_) => {
            tracing::warn!(key = %r.name, "stored policy is unusable; the key keeps its own");
            None
        }
    };
    let hashed = r.digest.as_deref().and_then(|d| {
        let bytes: [u8; 32] = hex::decode(d).ok()?.try_into().ok()?;
        Some((bytes, r.caller.clone()?))
    });
    let Some((digest, caller)) = hashed else {
        if let (Some(p), Some(k)) = (policy, keys.iter().find(|k| k.name == r.name)) {
            k.set_policy(p);
        }
        return;
    };
    if keys.iter().any(|k| k.name != r.name && k.digest == digest) {
        tracing::warn!(key = %r.name, "stored key has the secret of another key; skipped");
        return;
    }
    match keys.iter().find(|k| k.name == r.name) {
        Some(k) if k.digest == digest => {
            if let Some(p) = policy {
                k.set_policy(p);
            }
        }
        _ => {
            keys.retain(|k| k.name != r.name);
            let policy = policy.unwrap_or_default();
            keys.push(Arc::new(CallerKey::hashed(
                &r.name, digest, &caller, policy,
            )));
        }
    }
}

/// Which limit refused a request (the `limit` label of the refusal metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// `requests_per_minute`.
    RequestsPerMinute,
    /// `tokens_per_day`.
    TokensPerDay,
    /// `max_concurrent_streams`.
    ConcurrentStreams,
    /// The model list.
    Model,
}

impl Limit {
    /// The config name of the limit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerDay => "tokens_per_day",
            Self::ConcurrentStreams => "max_concurrent_streams",
            Self::Model => "models",
        }
    }
}

/// A turn admitted under a key's policy: holds one of the key's concurrent slots until dropped.
#[derive(Debug)]
pub struct Admission {
    key: Arc<CallerKey>,
}

impl Admission {
    /// The key's name.
    pub fn key_name(&self) -> &str {
        &self.key.name
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.key.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A refusal: the limit, and the error for the caller.
#[derive(Debug)]
pub struct Refusal {
    /// Which limit.
    pub limit: Limit,
    /// The error (429 with `retry-after`, or the dialect's model refusal).
    pub error: ApiError,
}

pub(crate) fn rate_limited(
    key: &str,
    limit: Limit,
    value: u64,
    after: Duration,
    quota: bool,
) -> Refusal {
    let category = if quota {
        Category::QuotaExhausted
    } else {
        Category::RateLimited
    };
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        category,
        format!(
            "proxy key {key:?} is over its {} limit of {value}",
            limit.as_str()
        ),
    );
    error.retry_after = Some(after.max(Duration::from_secs(1)));
    Refusal { limit, error }
}

/// Applies `key`'s policy to a turn for `model` in this process; `used_today` is the key's
/// input plus output tokens today (from the store). `refused_status` is how the caller's API
/// answers a model it may not use (404 for OpenAI, 403 for Anthropic).
pub fn admit(
    key: &Arc<CallerKey>,
    model: &str,
    used_today: u64,
    refused_status: StatusCode,
) -> Result<Admission, Refusal> {
    let policy = key.policy();
    if !policy.allows(model) {
        let error = ApiError::new(
            refused_status,
            Category::ModelUnavailable,
            format!(
                "the model `{}` is not available to proxy key {:?}",
                printable(model),
                key.name
            ),
        );
        return Err(Refusal {
            limit: Limit::Model,
            error,
        });
    }
    if let Some(cap) = policy.tokens_per_day
        && used_today >= cap
    {
        let after = Duration::from_secs(seconds_to_utc_midnight());
        return Err(rate_limited(
            &key.name,
            Limit::TokensPerDay,
            cap,
            after,
            true,
        ));
    }
    take_slot(key, &policy)
}

/// Takes one of the key's concurrent slots, then one request from its rate; dropping the
/// admission on a refusal gives the slot back.
fn take_slot(key: &Arc<CallerKey>, policy: &KeyPolicy) -> Result<Admission, Refusal> {
    let running = key.running.fetch_add(1, Ordering::AcqRel) + 1;
    let admission = Admission {
        key: Arc::clone(key),
    };
    if let Some(max) = policy.max_concurrent_streams
        && running > max
    {
        let after = Duration::from_secs(1);
        let limit = Limit::ConcurrentStreams;
        return Err(rate_limited(&key.name, limit, max.into(), after, false));
    }
    let limiter = read(&key.limiter).clone();
    if let Some(l) = limiter
        && let Err(not_until) = l.check()
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let rpm = policy.requests_per_minute.unwrap_or_default().into();
        return Err(rate_limited(
            &key.name,
            Limit::RequestsPerMinute,
            rpm,
            wait,
            false,
        ));
    }
    Ok(admission)
}

/// A model name as it may appear in an error message: printable ASCII, at most 128 characters.
fn printable(model: &str) -> String {
    model
        .chars()
        .take(128)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// `*` matches any run of characters, `?` exactly one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The key a caller presented, as `Authorization: Bearer` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v.is_char_boundary(7) && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim()).filter(|k| !k.is_empty());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, secret: &str, policy: KeyPolicy) -> KeySpec {
        KeySpec {
            name: name.into(),
            secret: Secret::new(secret),
            policy,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("claude-*", "claude-4.5-sonnet"));
        assert!(glob_match("gpt-?", "gpt-5"));
        assert!(!glob_match("gpt-?", "gpt-55"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("composer-2.5", "composer-2.5"));
        assert!(!glob_match("composer-2.5", "composer-2.5-fast"));
    }

    #[test]
    fn ring_finds_by_secret_and_validates() {
        let ring = KeyRing::new(&[spec("a", "secret-aaaa", KeyPolicy::default())]);
        assert_eq!(ring.find("secret-aaaa").unwrap().name(), "a");
        assert!(ring.find("secret-aaab").is_none());
        assert_eq!(
            ring.add(&spec("a", "secret-bbbb", KeyPolicy::default())),
            Err(KeyError::DuplicateName("a".into()))
        );
        assert_eq!(
            ring.add(&spec("b", "secret-aaaa", KeyPolicy::default())),
            Err(KeyError::DuplicateSecret("b".into()))
        );
        assert_eq!(
            ring.add(&spec("b", "short", KeyPolicy::default())),
            Err(KeyError::ShortSecret("b".into()))
        );
        ring.add(&spec("b", "secret-bbbb", KeyPolicy::default()))
            .unwrap();
        ring.revoke("a").unwrap();
        assert!(ring.find("secret-aaaa").is_none());
        assert_eq!(ring.revoke("a"), Err(KeyError::NotFound("a".into())));
    }

    #[test]
    fn admission_applies_each_limit() {
        let policy = KeyPolicy {
            models: vec!["composer-*".into()],
            requests_per_minute: Some(2),
            max_concurrent_streams: Some(1),
            tokens_per_day: Some(100),
            ..KeyPolicy::default()
        };
        let ring = KeyRing::new(&[spec("team", "secret-team", policy)]);
        let key = ring.find("secret-team").unwrap();
        let e = admit(&key, "gpt-5", 0, StatusCode::NOT_FOUND).unwrap_err();
        assert_eq!(e.limit, Limit::Model);
        assert_eq!(e.error.status, StatusCode::NOT_FOUND);
        assert!(e.error.message.contains("gpt-5"));
        let first = admit(&key, "composer-2.5", 0, StatusCode::NOT_FOUND).unwrap();
        let e = admit(&key, "composer-2.5", 0, StatusCode::NOT_FOUND).unwrap_err();
        assert_eq!(e.limit, Limit::ConcurrentStreams);
        drop(first);
        assert_eq!(key.running(), 0);
        drop(admit(&key, "composer-2.5", 0, StatusCode::NOT_FOUND).unwrap());
        let e = admit(&key, "composer-2.5", 0, StatusCode::NOT_FOUND).unwrap_err();
        assert_eq!(e.limit, Limit::RequestsPerMinute);
        assert_eq!(e.error.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(e.error.retry_after.unwrap() >= Duration::from_secs(1));
        assert!(e.error.message.contains("requests_per_minute"));
        let e = admit(&key, "composer-2.5", 110, StatusCode::NOT_FOUND).unwrap_err();
        assert_eq!(e.limit, Limit::TokensPerDay);
        assert_eq!(key.running(), 0);
    }

    #[test]
    fn replace_keeps_limiter_state_of_unchanged_keys() {
        let policy = KeyPolicy {
            requests_per_minute: Some(1),
            ..KeyPolicy::default()
        };
        let ring = KeyRing::new(&[spec("a", "secret-aaaa", policy.clone())]);
        let key = ring.find("secret-aaaa").unwrap();
        drop(admit(&key, "m", 0, StatusCode::NOT_FOUND).unwrap());
        ring.replace(&[spec("a", "secret-aaaa", policy.clone())])
            .unwrap();
        let key = ring.find("secret-aaaa").unwrap();
        assert!(admit(&key, "m", 0, StatusCode::NOT_FOUND).is_err());
        assert_eq!(
            ring.replace(&[
                spec("a", "secret-aaaa", policy.clone()),
                spec("a", "secret-cccc", policy)
            ]),
            Err(KeyError::DuplicateName("a".into()))
        );
        assert!(
            ring.find("secret-aaaa").is_some(),
            "refused reload keeps the old set"
        );
    }
}
