//! A [`Store`] wrapper that times every operation into a Prometheus histogram
//! (`cursor_proxy_store_operation_seconds{backend, operation}`), so `/metrics` shows what the
//! store adds to each request. Every method of [`Store`] is forwarded explicitly: a method
//! added to the trait must be forwarded here too, or the wrapper would answer with the
//! trait's default instead of the backend's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use prometheus::{HistogramOpts, HistogramVec};

use super::{
    AccountRecord, Conversation, Counters, KeyRecord, Store, StoreError, StoreHealth, UsageKey,
};

/// Latency buckets in seconds, from 50 µs to 2.5 s (a Redis command's deadline is 500 ms).
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// The store, timed.
#[derive(Debug)]
pub struct TimedStore {
    inner: Arc<dyn Store>,
    latency: HistogramVec,
}

impl TimedStore {
    /// Wraps `inner`.
    ///
    /// # Panics
    /// Never: the histogram's definition is a constant.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        let opts = HistogramOpts::new(
            "cursor_proxy_store_operation_seconds",
            "State store operations by backend and operation (errors included).",
        )
        .buckets(BUCKETS.to_vec());
        let latency = HistogramVec::new(opts, &["backend", "operation"])
            .unwrap_or_else(|e| panic!("invalid metric definition: {e}"));
        Self { inner, latency }
    }

    /// The histogram, to register with the proxy's metrics.
    pub fn latency(&self) -> HistogramVec {
        self.latency.clone()
    }

    fn observe(&self, op: &'static str, took: Duration) {
        self.latency
            .with_label_values(&[self.inner.kind(), op])
            .observe(took.as_secs_f64());
    }

    fn time<'a, T: Send + 'a>(
        &'a self,
        op: &'static str,
        fut: BoxFuture<'a, T>,
    ) -> BoxFuture<'a, T> {
        Box::pin(async move {
            let started = Instant::now();
            let out = fut.await;
            self.observe(op, started.elapsed());
            out
        })
    }
}

impl Store for TimedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
        self.time("conversation", self.inner.conversation(id))
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        conversation: Conversation,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let f = self.inner.save_conversation(id, conversation);
        self.time("save_conversation", f)
    }

    fn forget_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("forget_conversation", self.inner.forget_conversation(id))
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>> {
        self.time("accounts", self.inner.accounts())
    }

    fn save_account<'a>(
        &'a self,
        name: &'a str,
        record: AccountRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("save_account", self.inner.save_account(name, record))
    }

    fn credentials<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.time("credentials", self.inner.credentials(account))
    }

    fn save_credentials<'a>(
        &'a self,
        account: &'a str,
        tokens: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let f = self.inner.save_credentials(account, tokens);
        self.time("save_credentials", f)
    }

    fn add_usage<'a>(
        &'a self,
        key: &'a UsageKey,
        counters: &'a Counters,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("add_usage", self.inner.add_usage(key, counters))
    }

    fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>> {
        self.time("usage", self.inner.usage())
    }

    fn blob<'a>(&'a self, id: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        self.time("blob", self.inner.blob(id))
    }

    fn save_blob(&self, id: Bytes, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        self.time("save_blob", self.inner.save_blob(id, data))
    }

    fn health(&self) -> StoreHealth {
        self.inner.health()
    }

    fn caller_tokens<'a>(
        &'a self,
        caller: &'a str,
        day: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.time("caller_tokens", self.inner.caller_tokens(caller, day))
    }

    fn caller_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>> {
        self.time("caller_keys", self.inner.caller_keys())
    }

    fn save_caller_key<'a>(
        &'a self,
        record: &'a KeyRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("save_caller_key", self.inner.save_caller_key(record))
    }

    fn hit_window<'a>(
        &'a self,
        name: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        self.time("hit_window", self.inner.hit_window(name, window))
    }

    fn set_owner<'a>(
        &'a self,
        conv: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("set_owner", self.inner.set_owner(conv, owner, ttl))
    }

    fn owner<'a>(&'a self, conv: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.time("owner", self.inner.owner(conv))
    }

    fn clear_owner<'a>(&'a self, conv: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.time("clear_owner", self.inner.clear_owner(conv))
    }
}
