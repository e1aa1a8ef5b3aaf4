//! Usage as the operator sees it. There is one record of usage: the store's counters per caller
//! key hash × account × model × UTC day (see [`crate::store`]), written by the engine as each
//! turn ends. `tokens_per_day` is checked against it, `/admin/v1/usage` and the status page
//! report it (with the hash replaced by the key's name), and on SQLite or Redis it survives a
//! restart and adds up across instances.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::keys::KeyRing;
use crate::store::{Counters, Store, StoreError, UsageKey, counter, day_of, now_ms};

/// One row of the usage report: one key on one account and model on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Caller key name (`caller-<hash prefix>` for a key this proxy no longer knows, or for
    /// callers of an open proxy).
    pub key: String,
    /// Account that served the turns.
    pub account: String,
    /// Model requested.
    pub model: String,
    /// Completed turns.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Failed attempts by the classifier's category.
    pub errors: BTreeMap<String, u64>,
}

impl UsageRow {
    fn new(key: String, row: UsageKey, c: &Counters) -> Self {
        let n = |name: &str| c.get(name).copied().unwrap_or(0);
        let errors = c
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(counter::ERRORS_PREFIX)?.to_owned(), *v)))
            .collect();
        Self {
            day: row.day,
            key,
            account: row.account,
            model: row.model,
            requests: n(counter::REQUESTS),
            input_tokens: n(counter::INPUT),
            output_tokens: n(counter::OUTPUT),
            cache_read_tokens: n(counter::CACHE_READ),
            cache_write_tokens: n(counter::CACHE_WRITE),
            reasoning_tokens: n(counter::REASONING),
            errors,
        }
    }
}

/// Every usage row in the store, oldest day first, named by caller key.
///
/// # Errors
/// The store's.
pub async fn rows(store: &dyn Store, keys: &KeyRing) -> Result<Vec<UsageRow>, StoreError> {
    let names: HashMap<String, String> = keys
        .list()
        .iter()
        .map(|k| (k.caller_hash().to_owned(), k.name().to_owned()))
        .collect();
    let mut rows: Vec<UsageRow> = store
        .usage()
        .await?
        .into_iter()
        .map(|(k, c)| {
            let name = names
                .get(&k.caller)
                .cloned()
                .unwrap_or_else(|| format!("caller-{}", k.caller.get(..8).unwrap_or(&k.caller)));
            UsageRow::new(name, k, &c)
        })
        .collect();
    rows.sort_by(|a, b| (&a.day, &a.key, &a.model).cmp(&(&b.day, &b.key, &b.model)));
    Ok(rows)
}

/// Input plus output tokens the caller with hash `caller` used today (UTC), over every instance
/// sharing the store.
///
/// # Errors
/// The store's.
pub async fn tokens_today(store: &dyn Store, caller: &str) -> Result<u64, StoreError> {
    store.caller_tokens(caller, &today()).await
}

/// Seconds until the next UTC midnight (when `tokens_per_day` starts over).
pub fn seconds_to_utc_midnight() -> u64 {
    86_400 - (now_ms() / 1000) % 86_400
}

/// Today as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    day_of(now_ms())
}

/// The UTC date of a Unix time, `YYYY-MM-DD`.
pub fn date_of_unix(secs: u64) -> String {
    day_of(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::config::Secret;
    use crate::ops::keys::{KeyPolicy, KeySpec};
    use crate::store::memory::MemoryStore;
    use crate::store::{Limits, caller_hash, turn_counters};

    #[tokio::test]
    async fn rows_are_named_by_key_and_tokens_sum_per_caller() {
        let store = MemoryStore::new(Limits::default());
        let ring = KeyRing::new(&[KeySpec {
            name: "team".into(),
            secret: Secret::new("secret-team"),
            policy: KeyPolicy::default(),
        }]);
        let usage = |i, o| {
            let mut u = cursor_connect::Usage::default();
            u.input_tokens = i;
            u.output_tokens = o;
            u
        };
        let row = |caller: &str, model: &str| UsageKey {
            caller: caller_hash(caller),
            account: "a".into(),
            model: model.into(),
            day: today(),
        };
        let add = |k: UsageKey, c: Counters| {
            let store = &store;
            async move { store.add_usage(&k, &c).await.unwrap() }
        };
        add(row("secret-team", "m1"), turn_counters(&usage(10, 5))).await;
        add(row("secret-team", "m2"), turn_counters(&usage(1, 1))).await;
        add(row("other", "m1"), turn_counters(&usage(100, 100))).await;
        add(
            row("secret-team", "m1"),
            crate::store::error_counter("rate_limited"),
        )
        .await;
        let hash = caller_hash("secret-team");
        assert_eq!(tokens_today(&store, &hash).await.unwrap(), 17);
        let rows = rows(&store, &ring).await.unwrap();
        assert_eq!(rows.len(), 3);
        let m1 = rows
            .iter()
            .find(|r| r.key == "team" && r.model == "m1")
            .unwrap();
        assert_eq!((m1.requests, m1.input_tokens, m1.output_tokens), (1, 10, 5));
        assert_eq!(m1.errors.get("rate_limited"), Some(&1));
        assert!(rows.iter().any(|r| r.key.starts_with("caller-")));
        assert_eq!(date_of_unix(86_400), "1970-01-02");
    }
}
