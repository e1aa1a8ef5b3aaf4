//! Redis, for several instances: conversations, account state and usage shared between them.
//!
//! Every write also goes to an in-process [`MemoryStore`], and every read falls back to it, so
//! when Redis is down or restarting the proxy keeps serving from memory: `/healthz` says
//! `degraded` with the reason, a probe reconnects with exponential backoff, and each change of
//! state is logged once. Credentials go to Redis only encrypted (XChaCha20-Poly1305 with the
//! operator's key); without a key they stay in memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands as _, RedisResult};
use base64::Engine as _;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use super::memory::MemoryStore;
use super::{
    AccountRecord, Conversation, Counters, Limits, Store, StoreError, StoreHealth,
    USAGE_RETENTION_DAYS, UsageKey, now_ms,
};
use crate::ops::config::Secret;

/// Deadline of one Redis command; past it the store serves from memory.
pub const OP_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait between two reconnection probes.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Writes between two sweeps of the conversation index.
const SWEEP_EVERY: u64 = 256;
/// Usage rows listed at most by [`Store::usage`].
const MAX_LISTED_USAGE: usize = 100_000;
const NONCE_LEN: usize = 24;
/// Life of a caller's daily token total: the day itself plus a margin for clock skew.
const TOKEN_TOTAL_TTL_SECS: i64 = 2 * 86_400;

/// State in Redis, with memory as the fallback.
#[derive(Debug, Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    limits: Limits,
    cipher: Option<Arc<XChaCha20Poly1305>>,
    memory: Arc<MemoryStore>,
    link: Arc<Link>,
}

/// Whether Redis answers, and why not.
#[derive(Debug, Default)]
struct Link {
    down: AtomicBool,
    reason: Mutex<String>,
    writes: AtomicU64,
}

impl RedisStore {
    /// Connects to `url` (keys under `cursor-proxy:`); `key` (32 bytes as hex or base64)
    /// encrypts credentials. An unreachable server is not an error: the store starts
    /// degraded and keeps probing.
    ///
    /// # Errors
    /// An invalid URL or key.
    pub async fn open(url: &str, key: Option<&Secret>, limits: Limits) -> Result<Self, StoreError> {
        Self::open_with_prefix(url, key, limits, "cursor-proxy:").await
    }

    /// [`RedisStore::open`] with keys under `prefix` (tests, several proxies on one server).
    ///
    /// # Errors
    /// An invalid URL or key.
    pub async fn open_with_prefix(
        url: &str,
        key: Option<&Secret>,
        limits: Limits,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        let cipher = key.map(cipher).transpose()?.map(Arc::new);
        let client = ::redis::Client::open(url).map_err(StoreError::Redis)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::Redis)?;
        if cipher.is_none() {
            warn!(
                "no Redis encryption key (--redis-key): refreshed credentials stay in this process's memory"
            );
        }
        let store = Self {
            conn,
            prefix: prefix.to_owned(),
            limits,
            cipher,
            memory: Arc::new(MemoryStore::new(limits)),
            link: Arc::default(),
        };
        let mut probe = store.conn.clone();
        match tokio::time::timeout(OP_TIMEOUT * 2, ping(&mut probe)).await {
            Ok(Ok(())) => info!("redis reachable"),
            Ok(Err(e)) => store.went_down(&e.to_string()),
            Err(_) => store.went_down("no answer to PING"),
        }
        Ok(store)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }

    /// Runs one command batch when Redis is up; `None` (and a degraded state) when it fails.
    async fn run<T>(&self, f: impl Future<Output = RedisResult<T>>) -> Option<T> {
        if self.link.down.load(Ordering::Relaxed) {
            return None;
        }
        match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.went_down(&e.to_string());
                None
            }
            Err(_) => {
                self.went_down(&format!("no answer within {OP_TIMEOUT:?}"));
                None
            }
        }
    }

    /// Marks Redis down (logged once) and starts the reconnection probe.
    fn went_down(&self, why: &str) {
        *self.link.reason.lock().unwrap_or_else(|e| e.into_inner()) = why.to_owned();
        if self.link.down.swap(true, Ordering::Relaxed) {
            return;
        }
        warn!(
            reason = why,
            "redis unreachable; serving from memory and reconnecting"
        );
        let (mut conn, link) = (self.conn.clone(), Arc::clone(&self.link));
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                tokio::time::sleep(wait).await;
                if let Ok(Ok(())) = tokio::time::timeout(OP_TIMEOUT * 2, ping(&mut conn)).await {
                    link.down.store(false, Ordering::Relaxed);
                    info!("redis reachable again; shared state resumed");
                    return;
                }
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        });
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let cipher = self.cipher.as_ref()?;
        let nonce = XNonce::generate();
        let sealed = cipher.encrypt(&nonce, plain).ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let cipher = self.cipher.as_ref()?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        cipher.decrypt(&nonce, body).ok()
    }

    /// Drops index entries of expired conversations, then the oldest past the bound.
    async fn sweep(&self) {
        let index = self.key(&["convs"]);
        let ttl = u64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(ttl);
        let mut conn = self.conn.clone();
        let expired: Option<usize> = self
            .run(conn.zrembyscore(&index, "-inf", format!("({cutoff}")))
            .await;
        let count: Option<usize> = self.run(conn.zcard(&index)).await;
        let over = count
            .unwrap_or(0)
            .saturating_sub(self.limits.max_conversations.max(1));
        let mut evicted = 0;
        if over > 0
            && let Some(oldest) = self
                .run(conn.zpopmin::<_, Vec<(String, f64)>>(&index, over as isize))
                .await
        {
            evicted = oldest.len();
            let keys: Vec<String> = oldest
                .iter()
                .map(|(id, _)| self.key(&["conv", id]))
                .collect();
            let _: Option<()> = self.run(conn.del(keys)).await;
        }
        if expired.unwrap_or(0) + evicted > 0 {
            info!(
                store = "redis",
                expired = expired.unwrap_or(0),
                evicted,
                "dropped old conversations (bounded)"
            );
        }
    }

    async fn redis_conversation(&self, id: &str) -> Option<Conversation> {
        let mut conn = self.conn.clone();
        let (cp, account, covered, updated): (
            Option<Vec<u8>>,
            Option<String>,
            Option<u64>,
            Option<u64>,
        ) = self
            .run(
                ::redis::cmd("HMGET")
                    .arg(self.key(&["conv", id]))
                    .arg(&["cp", "account", "covered", "updated"])
                    .query_async(&mut conn),
            )
            .await?;
        Some(Conversation {
            checkpoint: cp?.into(),
            account: account?,
            covered: usize::try_from(covered?).unwrap_or(0),
            updated_ms: updated?,
        })
    }

    async fn redis_usage(&self) -> Option<Vec<(UsageKey, Counters)>> {
        let mut conn = self.conn.clone();
        let pattern = self.key(&["usage", "*"]);
        let keys: Vec<String> = self
            .run(async {
                let mut out = Vec::new();
                let mut iter = conn.scan_match::<_, String>(&pattern).await?;
                while let Some(k) = futures_util::StreamExt::next(&mut iter).await {
                    out.push(k?);
                    if out.len() >= MAX_LISTED_USAGE {
                        break;
                    }
                }
                Ok(out)
            })
            .await?;
        let mut rows = Vec::new();
        for k in keys {
            let mut map: std::collections::HashMap<String, String> =
                self.run(conn.hgetall(&k)).await?;
            let mut field = |f: &str| map.remove(f).unwrap_or_default();
            let key = UsageKey {
                caller: field("_caller"),
                account: field("_account"),
                model: field("_model"),
                day: field("_day"),
            };
            let counters = map
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            rows.push((key, counters));
        }
        rows.sort();
        Some(rows)
    }
}

async fn ping(conn: &mut ConnectionManager) -> RedisResult<()> {
    ::redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(drop)
}

/// The AEAD key from 64 hex digits or base64 of 32 bytes.
fn cipher(key: &Secret) -> Result<XChaCha20Poly1305, StoreError> {
    let text = key.expose().trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .filter(|b| b.len() == 32)
        .ok_or(StoreError::BadKey)?;
    XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| StoreError::BadKey)
}

impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn health(&self) -> StoreHealth {
        if self.link.down.load(Ordering::Relaxed) {
            let reason = self.link.reason.lock().unwrap_or_else(|e| e.into_inner());
            StoreHealth::Degraded {
                reason: format!("redis unreachable ({reason}); serving from memory"),
            }
        } else {
            StoreHealth::Ok
        }
    }

    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
        Box::pin(async move {
            let ttl = u64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX);
            let shared = self
                .redis_conversation(id)
                .await
                .filter(|c| now_ms().saturating_sub(c.updated_ms) < ttl);
            Ok(shared.or_else(|| self.memory.conversation_now(id)))
        })
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        c: Conversation,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.save_conversation_now(id, c.clone());
            let key = self.key(&["conv", id]);
            let ttl = i64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(i64::MAX);
            let mut conn = self.conn.clone();
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .hset_multiple(
                    &key,
                    &[
                        ("cp", c.checkpoint.to_vec()),
                        ("account", c.account.into_bytes()),
                        ("covered", c.covered.to_string().into_bytes()),
                        ("updated", c.updated_ms.to_string().into_bytes()),
                    ],
                )
                .ignore()
                .pexpire(&key, ttl.max(1))
                .ignore()
                .zadd(self.key(&["convs"]), id, c.updated_ms)
                .ignore();
            let _: Option<()> = self.run(pipe.query_async(&mut conn)).await;
            if self.link.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                self.sweep().await;
            }
            Ok(())
        })
    }

    fn forget_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.forget_now(id);
            let mut conn = self.conn.clone();
            let mut pipe = ::redis::pipe();
            pipe.del(self.key(&["conv", id]))
                .ignore()
                .zrem(self.key(&["convs"]), id)
                .ignore();
            let _: Option<()> = self.run(pipe.query_async(&mut conn)).await;
            Ok(())
        })
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let shared: Option<std::collections::HashMap<String, String>> =
                self.run(conn.hgetall(self.key(&["accounts"]))).await;
            let Some(shared) = shared else {
                return Ok(self.memory.accounts_now());
            };
            Ok(shared
                .into_iter()
                .filter_map(|(name, json)| Some((name, serde_json::from_str(&json).ok()?)))
                .collect())
        })
    }

    fn save_account<'a>(
        &'a self,
        name: &'a str,
        record: AccountRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(&record).unwrap_or_default();
            self.memory.save_account_now(name, record);
            let mut conn = self.conn.clone();
            let _: Option<()> = self
                .run(conn.hset(self.key(&["accounts"]), name, json))
                .await;
            Ok(())
        })
    }

    fn credentials<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            if self.cipher.is_some() {
                let mut conn = self.conn.clone();
                let sealed: Option<Option<Vec<u8>>> =
                    self.run(conn.get(self.key(&["cred", account]))).await;
                if let Some(Some(sealed)) = sealed {
                    return match self.decrypt(&sealed) {
                        Some(plain) => Ok(Some(plain)),
                        None => Err(StoreError::Decode(format!(
                            "credentials of {account} (wrong --redis-key?)"
                        ))),
                    };
                }
            }
            Ok(self.memory.credentials_now(account))
        })
    }

    fn save_credentials<'a>(
        &'a self,
        account: &'a str,
        tokens: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(sealed) = self.encrypt(&tokens) {
                let mut conn = self.conn.clone();
                let _: Option<()> = self
                    .run(conn.set(self.key(&["cred", account]), sealed))
                    .await;
            }
            self.memory.save_credentials_now(account, tokens);
            Ok(())
        })
    }

    fn add_usage<'a>(
        &'a self,
        key: &'a UsageKey,
        counters: &'a Counters,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.add_usage_now(key, counters);
            let k = self.key(&["usage", &key.caller, &key.account, &key.model, &key.day]);
            let mut pipe = ::redis::pipe();
            pipe.atomic().hset_multiple(
                &k,
                &[
                    ("_caller", &key.caller),
                    ("_account", &key.account),
                    ("_model", &key.model),
                    ("_day", &key.day),
                ],
            );
            pipe.ignore();
            for (name, n) in counters {
                pipe.hincr(&k, name, *n).ignore();
            }
            let keep = i64::try_from(USAGE_RETENTION_DAYS * 86_400).unwrap_or(i64::MAX);
            pipe.expire(&k, keep).ignore();
            // The caller's daily token total, kept beside the rows so that `tokens_per_day`
            // is one read, not a scan.
            let total = self.key(&["usage-tokens", &key.caller, &key.day]);
            pipe.incr(&total, super::tokens_of(counters))
                .ignore()
                .expire(&total, TOKEN_TOTAL_TTL_SECS)
                .ignore();
            let mut conn = self.conn.clone();
            let _: Option<()> = self.run(pipe.query_async(&mut conn)).await;
            Ok(())
        })
    }

    fn blob<'a>(&'a self, id: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            let ttl = i64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(i64::MAX);
            let mut conn = self.conn.clone();
            let shared: Option<Option<Vec<u8>>> = self
                .run(
                    ::redis::cmd("GETEX")
                        .arg(self.key(&["blob", &hex::encode(id)]))
                        .arg("PX")
                        .arg(ttl.max(1))
                        .query_async(&mut conn),
                )
                .await;
            match shared {
                Some(Some(data)) => Ok(Some(data.into())),
                _ => Ok(self.memory.blob_now(id)),
            }
        })
    }

    fn save_blob(&self, id: Bytes, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let ttl = u64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX);
            let mut conn = self.conn.clone();
            let key = self.key(&["blob", &hex::encode(&id)]);
            let _: Option<()> = self.run(conn.pset_ex(key, &data[..], ttl.max(1))).await;
            self.memory.save_blob_now(id, data);
            Ok(())
        })
    }

    fn set_owner<'a>(
        &'a self,
        conv: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut conn = self.conn.clone();
            let _: Option<()> = self
                .run(conn.pset_ex(self.key(&["owner", conv]), owner, ms))
                .await;
            Ok(())
        })
    }

    fn owner<'a>(&'a self, conv: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            Ok(self
                .run(conn.get::<_, Option<String>>(self.key(&["owner", conv])))
                .await
                .flatten())
        })
    }

    fn clear_owner<'a>(&'a self, conv: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: Option<()> = self.run(conn.del(self.key(&["owner", conv]))).await;
            Ok(())
        })
    }

    fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>> {
        Box::pin(async move {
            match self.redis_usage().await {
                Some(rows) => Ok(rows),
                None => Ok(self.memory.usage_now()),
            }
        })
    }

    fn caller_tokens<'a>(
        &'a self,
        caller: &'a str,
        day: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let k = self.key(&["usage-tokens", caller, day]);
            let mut conn = self.conn.clone();
            match self.run(conn.get::<_, Option<u64>>(&k)).await {
                Some(n) => Ok(n.unwrap_or(0)),
                None => Ok(self.memory.caller_tokens_now(caller, day)),
            }
        })
    }

    fn caller_keys(&self) -> BoxFuture<'_, Result<Vec<super::KeyRecord>, StoreError>> {
        Box::pin(async move {
            let k = self.key(&["callerkeys"]);
            let mut conn = self.conn.clone();
            let Some(map) = self
                .run(conn.hgetall::<_, std::collections::HashMap<String, String>>(&k))
                .await
            else {
                return Ok(self.memory.caller_keys_now());
            };
            let mut out: Vec<super::KeyRecord> = map
                .into_iter()
                .filter_map(|(name, json)| match serde_json::from_str(&json) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        warn!(key = %name, error = %e, "stored caller key does not decode; skipped");
                        None
                    }
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn save_caller_key<'a>(
        &'a self,
        record: &'a super::KeyRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.memory.save_caller_key_now(record);
            let json = serde_json::to_string(record).unwrap_or_default();
            let k = self.key(&["callerkeys"]);
            let mut conn = self.conn.clone();
            let _: Option<()> = self.run(conn.hset(&k, &record.name, json)).await;
            Ok(())
        })
    }

    fn hit_window<'a>(
        &'a self,
        name: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let k = self.key(&["window", name]);
            let ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            let mut pipe = ::redis::pipe();
            pipe.atomic().incr(&k, 1u64).pexpire(&k, ms).ignore();
            let mut conn = self.conn.clone();
            let hits: Option<(u64,)> = self.run(pipe.query_async(&mut conn)).await;
            Ok(hits.map(|(n,)| n))
        })
    }
}
