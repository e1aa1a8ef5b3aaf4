//! The in-memory store: tests, `--state memory`, and the fallback while Redis is down.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tracing::info;

use super::{
    AccountRecord, Conversation, Counters, Limits, Store, StoreError, USAGE_RETENTION_DAYS,
    UsageKey, day_of, now_ms,
};

/// Usage rows kept at most (the oldest days go first).
const MAX_USAGE_ROWS: usize = 100_000;
/// Blob bytes kept at most (the least recently used go first).
const MAX_BLOB_BYTES: usize = 256 << 20;

#[derive(Debug, Default)]
struct Tables {
    conversations: HashMap<String, Conversation>,
    accounts: HashMap<String, AccountRecord>,
    credentials: HashMap<String, Vec<u8>>,
    usage: HashMap<UsageKey, Counters>,
    blobs: HashMap<Bytes, (Bytes, u64)>,
    blob_bytes: usize,
    keys: HashMap<String, super::KeyRecord>,
}

/// State in this process's memory only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    limits: Limits,
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            tables: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// The conversation, if live (synchronous: the fallback path uses it too).
    pub fn conversation_now(&self, id: &str) -> Option<Conversation> {
        let mut t = self.lock();
        let c = t.conversations.get(id)?;
        if now_ms().saturating_sub(c.updated_ms) < self.ttl_ms() {
            return Some(c.clone());
        }
        t.conversations.remove(id);
        None
    }

    /// Saves a conversation, evicting expired ones and then the oldest past the bound.
    pub fn save_conversation_now(&self, id: &str, c: Conversation) {
        let mut t = self.lock();
        let max = self.limits.max_conversations.max(1);
        if t.conversations.len() >= max && !t.conversations.contains_key(id) {
            let (now, ttl) = (now_ms(), self.ttl_ms());
            let before = t.conversations.len();
            t.conversations
                .retain(|_, c| now.saturating_sub(c.updated_ms) < ttl);
            let expired = before - t.conversations.len();
            let mut evicted = 0;
            if t.conversations.len() >= max
                && let Some(oldest) = t
                    .conversations
                    .iter()
                    .min_by_key(|(_, c)| c.updated_ms)
                    .map(|(k, _)| k.clone())
            {
                t.conversations.remove(&oldest);
                evicted = 1;
            }
            info!(
                store = "memory",
                expired, evicted, "conversation bound reached; dropped the oldest"
            );
        }
        t.conversations.insert(id.to_owned(), c);
    }

    /// Adds usage (synchronous).
    pub fn add_usage_now(&self, key: &UsageKey, counters: &Counters) {
        let mut t = self.lock();
        if t.usage.len() >= MAX_USAGE_ROWS && !t.usage.contains_key(key) {
            let oldest = day_of(now_ms().saturating_sub(USAGE_RETENTION_DAYS * 86_400_000));
            t.usage.retain(|k, _| k.day >= oldest);
            if t.usage.len() >= MAX_USAGE_ROWS
                && let Some(first) = t.usage.keys().min_by(|a, b| a.day.cmp(&b.day)).cloned()
            {
                t.usage.remove(&first);
            }
        }
        let row = t.usage.entry(key.clone()).or_default();
        for (name, n) in counters {
            let v = row.entry(name.clone()).or_insert(0);
            *v = v.saturating_add(*n);
        }
    }

    /// Every account record (synchronous).
    pub fn accounts_now(&self) -> Vec<(String, AccountRecord)> {
        self.lock()
            .accounts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Saves an account record (synchronous).
    pub fn save_account_now(&self, name: &str, record: AccountRecord) {
        self.lock().accounts.insert(name.to_owned(), record);
    }

    /// Credentials (synchronous).
    pub fn credentials_now(&self, account: &str) -> Option<Vec<u8>> {
        self.lock().credentials.get(account).cloned()
    }

    /// Saves credentials (synchronous).
    pub fn save_credentials_now(&self, account: &str, tokens: Vec<u8>) {
        self.lock().credentials.insert(account.to_owned(), tokens);
    }

    /// The stored caller key records (synchronous).
    pub fn caller_keys_now(&self) -> Vec<super::KeyRecord> {
        let mut keys: Vec<_> = self.lock().keys.values().cloned().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys
    }

    /// Saves a caller key record (synchronous).
    pub fn save_caller_key_now(&self, record: &super::KeyRecord) {
        self.lock().keys.insert(record.name.clone(), record.clone());
    }

    /// Input plus output tokens of `caller` on `day` (synchronous).
    pub fn caller_tokens_now(&self, caller: &str, day: &str) -> u64 {
        self.lock()
            .usage
            .iter()
            .filter(|(k, _)| k.caller == caller && k.day == day)
            .map(|(_, c)| super::tokens_of(c))
            .sum()
    }

    /// Every usage row (synchronous).
    pub fn usage_now(&self) -> Vec<(UsageKey, Counters)> {
        let mut rows: Vec<_> = self
            .lock()
            .usage
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rows.sort();
        rows
    }

    /// A blob, renewing its last use (synchronous).
    pub fn blob_now(&self, id: &[u8]) -> Option<Bytes> {
        let mut t = self.lock();
        let (data, at) = t.blobs.get_mut(id)?;
        *at = now_ms();
        Some(data.clone())
    }

    /// Saves a blob, dropping the least recently used past the byte budget (synchronous).
    pub fn save_blob_now(&self, id: Bytes, data: Bytes) {
        let mut t = self.lock();
        let size = id.len() + data.len();
        if let Some((old, _)) = t.blobs.remove(&id) {
            t.blob_bytes -= id.len() + old.len();
        }
        while t.blob_bytes + size > MAX_BLOB_BYTES {
            let Some(oldest) = t
                .blobs
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = t.blobs.remove(&oldest) {
                t.blob_bytes -= oldest.len() + old.len();
            }
        }
        t.blob_bytes += size;
        t.blobs.insert(id, (data, now_ms()));
    }

    /// Drops a conversation (synchronous).
    pub fn forget_now(&self, id: &str) {
        self.lock().conversations.remove(id);
    }
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
        Box::pin(async move { Ok(self.conversation_now(id)) })
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        conversation: Conversation,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.save_conversation_now(id, conversation);
            Ok(())
        })
    }

    fn forget_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.forget_now(id);
            Ok(())
        })
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>> {
        Box::pin(async move { Ok(self.accounts_now()) })
    }

    fn save_account<'a>(
        &'a self,
        name: &'a str,
        record: AccountRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.save_account_now(name, record);
            Ok(())
        })
    }

    fn credentials<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { Ok(self.credentials_now(account)) })
    }

    fn save_credentials<'a>(
        &'a self,
        account: &'a str,
        tokens: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.save_credentials_now(account, tokens);
            Ok(())
        })
    }

    fn add_usage<'a>(
        &'a self,
        key: &'a UsageKey,
        counters: &'a Counters,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.add_usage_now(key, counters);
            Ok(())
        })
    }

    fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>> {
        Box::pin(async move { Ok(self.usage_now()) })
    }

    fn caller_tokens<'a>(
        &'a self,
        caller: &'a str,
        day: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { Ok(self.caller_tokens_now(caller, day)) })
    }

    fn caller_keys(&self) -> BoxFuture<'_, Result<Vec<super::KeyRecord>, StoreError>> {
        Box::pin(async move { Ok(self.caller_keys_now()) })
    }

    fn save_caller_key<'a>(
        &'a self,
        record: &'a super::KeyRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.save_caller_key_now(record);
            Ok(())
        })
    }

    fn blob<'a>(&'a self, id: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move { Ok(self.blob_now(id)) })
    }

    fn save_blob(&self, id: Bytes, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.save_blob_now(id, data);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn conv(account: &str, at: u64) -> Conversation {
        Conversation {
            checkpoint: Bytes::from_static(b"cp"),
            account: account.into(),
            covered: 1,
            updated_ms: at,
        }
    }

    #[test]
    fn conversations_expire_and_the_oldest_is_evicted() {
        let store = MemoryStore::new(Limits {
            conversation_ttl: Duration::from_secs(60),
            max_conversations: 2,
        });
        let now = now_ms();
        store.save_conversation_now("old", conv("a", now - 120_000));
        assert_eq!(store.conversation_now("old"), None, "expired");
        store.save_conversation_now("a", conv("a", now - 2));
        store.save_conversation_now("b", conv("b", now - 1));
        store.save_conversation_now("c", conv("c", now));
        assert_eq!(store.conversation_now("a"), None, "oldest evicted");
        assert_eq!(store.conversation_now("c").unwrap().account, "c");
        assert!(store.conversation_now("b").is_some());
    }
}
