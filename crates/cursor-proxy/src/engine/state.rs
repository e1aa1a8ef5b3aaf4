//! The engine's use of the [`Store`]: conversations (checkpoint and account binding), account
//! state, usage counters. A failing store never fails a request: the turn goes on without it,
//! and the failure is logged once per change of state, not once per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cursor_connect::classify::{Advice, Category};
use tracing::{debug, info, warn};

use super::pool::{Account, AccountHealth, Pool};
use super::{Engine, TurnKey, short};
use crate::store::{
    AccountRecord, Conversation, Counters, StoreError, UsageKey, day_of, error_counter, now_ms,
};

/// Remembers whether the store failed last time, so that only changes are logged.
#[derive(Debug, Default)]
pub(super) struct StoreLog {
    failing: AtomicBool,
    /// The last failure, for `/healthz`.
    last: std::sync::Mutex<String>,
}

impl StoreLog {
    fn outcome<T>(&self, what: &str, r: Result<T, StoreError>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    info!(operation = what, "state store works again");
                }
                Some(v)
            }
            Err(e) => {
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                    format!("{what}: {}", error_chain(&e));
                if self.failing.swap(true, Ordering::Relaxed) {
                    debug!(operation = what, error = %e, "state store still failing");
                } else {
                    warn!(operation = what, error = %error_chain(&e),
                          "state store failed; serving without it until it works again");
                }
                None
            }
        }
    }
}

/// An error with its sources, for one log line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl Engine {
    /// The conversation's saved checkpoint and account, if any.
    pub(super) async fn saved(&self, conv: &str) -> Option<Conversation> {
        let r = self.store.conversation(conv).await;
        self.store_log.outcome("read conversation", r).flatten()
    }

    /// Saves a checkpoint before the turn's response completes (so an acknowledged turn's
    /// checkpoint survives a crash).
    pub(super) async fn save_checkpoint(&self, key: &TurnKey, checkpoint: Bytes) {
        if let Some(blobs) = self.blobs.get() {
            blobs.settle().await;
        }
        let c = Conversation {
            checkpoint,
            account: key.account.clone(),
            covered: key.covered,
            updated_ms: now_ms(),
        };
        let r = self.store.save_conversation(&key.conv, c).await;
        self.store_log.outcome("save conversation", r);
    }

    /// Drops a conversation's checkpoint (it belonged to another account).
    pub(super) async fn forget(&self, conv: &str) {
        let r = self.store.forget_conversation(conv).await;
        self.store_log.outcome("forget conversation", r);
    }

    /// Adds `counters` to the usage of the turn's caller, account and model today.
    pub(super) async fn count(&self, caller: &str, account: &str, model: &str, c: &Counters) {
        let key = UsageKey {
            caller: caller.to_owned(),
            account: account.to_owned(),
            model: model.to_owned(),
            day: day_of(now_ms()),
        };
        let r = self.store.add_usage(&key, c).await;
        self.store_log.outcome("count usage", r);
    }

    /// An attempt on `account` failed: the pool applies the classifier's advice, the new
    /// state is stored (so a cooldown holds across a restart and for other instances), and the
    /// error is counted. Returns the cooldown started, if any.
    pub(super) async fn failed(
        &self,
        key: &TurnKey,
        category: Category,
        advice: &Advice,
    ) -> Option<Duration> {
        // An account removed while its turn ran has no health left to change.
        let account = self.pool.get(&key.account)?;
        let cooldown = self.pool.record_failure(&account, category, advice);
        if cooldown.is_some() || advice.disable_account() {
            self.save_account_state(&account).await;
        }
        // A credential refresh failure belongs to no caller's request: not usage.
        if !key.caller.is_empty() {
            self.count(
                &key.caller,
                &key.account,
                &key.model,
                &error_counter(category.as_str()),
            )
            .await;
        }
        cooldown
    }

    /// A turn on `account` started: it is healthy; store that if it was not.
    pub(super) async fn succeeded(&self, account: &Account) {
        if self.pool.record_success(account) {
            self.save_account_state(account).await;
        }
    }

    async fn save_account_state(&self, account: &Account) {
        let now = self.pool.now();
        let st = Pool::status_of(account, now);
        let record = AccountRecord {
            cooldown_until_ms: if st.cooldown_remaining_ms > 0 {
                now_ms().saturating_add(st.cooldown_remaining_ms)
            } else {
                0
            },
            reason: st.last_error.map(|c| c.as_str().to_owned()),
            consecutive_failures: st.consecutive_failures,
            disabled: st.state == AccountHealth::Disabled,
        };
        let r = self.store.save_account(account.name(), record).await;
        self.store_log.outcome("save account state", r);
    }

    /// Reads every account's stored state into the pool (at startup, and periodically when
    /// the store is shared between instances).
    pub async fn load_account_state(&self) {
        let r = self.store.accounts().await;
        let Some(records) = self.store_log.outcome("read account state", r) else {
            return;
        };
        let now = now_ms();
        for (name, rec) in records {
            let until = (rec.cooldown_until_ms > now)
                .then(|| Duration::from_millis(rec.cooldown_until_ms - now));
            self.pool
                .apply_shared(&name, until, rec.reason.as_deref(), rec.disabled);
        }
    }

    /// The store-backed KV blobs of the upstream: their writes are waited for before each
    /// checkpoint is saved (set once, at startup).
    pub fn settle_blobs_of(&self, blobs: Arc<crate::store::blobs::StoreBlobs>) {
        let _ = self.blobs.set(blobs);
    }

    /// The store's health, for `/healthz`: the backend's own verdict, or degraded while
    /// its operations fail (a disk error, a file made read-only while running).
    pub fn store_health(&self) -> crate::store::StoreHealth {
        if self.store_log.failing.load(Ordering::Relaxed) {
            let last = self
                .store_log
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            return crate::store::StoreHealth::Degraded {
                reason: format!("state store failing ({last}); serving without it"),
            };
        }
        self.store.health()
    }

    /// The store's kind (`memory`, `sqlite`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn crate::store::Store> {
        &self.store
    }
}

/// Logs a checkpoint that cannot be used because another account must take the turn.
pub(super) fn log_rebind(conv: &str, from: &str, to: &str) {
    debug!(
        conversation = short(conv),
        from, to, "checkpoint belongs to another account; sending the history instead"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::engine::turn::{Message, Part, Role, Turn};
    use crate::engine::{EngineConfig, TurnItem, collect};
    use crate::ops::config::{AccountConfig, Secret};
    use crate::store::memory::MemoryStore;
    use crate::store::{Limits, Store, caller_hash};
    use crate::upstream::fake::{FakeUpstream, Step, quota};

    /// A store whose every operation fails (a full disk, a file made read-only).
    #[derive(Debug)]
    struct Broken;

    fn broken<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async { Err(StoreError::Decode("broken on purpose".into())) })
    }

    impl Store for Broken {
        fn kind(&self) -> &'static str {
            "broken"
        }
        fn conversation<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
            broken()
        }
        fn save_conversation<'a>(
            &'a self,
            _: &'a str,
            _: Conversation,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            broken()
        }
        fn forget_conversation<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            broken()
        }
        fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>> {
            broken()
        }
        fn save_account<'a>(
            &'a self,
            _: &'a str,
            _: AccountRecord,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            broken()
        }
        fn credentials<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
            broken()
        }
        fn save_credentials<'a>(
            &'a self,
            _: &'a str,
            _: Vec<u8>,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            broken()
        }
        fn add_usage<'a>(
            &'a self,
            _: &'a UsageKey,
            _: &'a Counters,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            broken()
        }
        fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>> {
            broken()
        }
        fn blob<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
            broken()
        }
        fn save_blob(&self, _: Bytes, _: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
            broken()
        }
    }

    fn user(text: &str) -> Turn {
        Turn {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text(text.into())],
            }],
            ..Turn::default()
        }
    }

    fn engine(fake: FakeUpstream, store: Arc<dyn Store>) -> Arc<Engine> {
        let accounts = (0..2)
            .map(|i| {
                Account::new(
                    AccountConfig::named(&format!("a{i}")),
                    Secret::new("t"),
                    "http://127.0.0.1:1",
                )
            })
            .collect();
        Engine::with_store(
            Arc::new(fake),
            Arc::new(Pool::new(accounts)),
            EngineConfig::default(),
            store,
        )
    }

    fn text_turn() -> Vec<Step> {
        vec![
            Step::Ev(cursor_connect::Event::TextDelta("ok".into())),
            Step::Ev(cursor_connect::Event::Checkpoint(Bytes::from_static(b"cp"))),
            Step::Ev(cursor_connect::Event::TurnEnded(
                cursor_connect::Usage::default(),
            )),
        ]
    }

    #[tokio::test]
    async fn a_failing_store_never_fails_a_request() {
        let e = engine(FakeUpstream::new(|_, _| text_turn()), Arc::new(Broken));
        for i in 0..5 {
            let items = collect(e.start("key", &user(&format!("q{i}"))).await.unwrap()).await;
            assert!(
                matches!(items.last(), Some(TurnItem::Done { .. })),
                "{items:?}"
            );
        }
        let health = e.store_health();
        assert!(
            matches!(&health, crate::store::StoreHealth::Degraded { reason }
                     if reason.contains("broken on purpose")),
            "{health:?}"
        );
    }

    #[tokio::test]
    async fn usage_cooldowns_and_checkpoints_reach_the_store() {
        let store = Arc::new(MemoryStore::new(Limits::default()));
        let fake = FakeUpstream::new(|acct, _| {
            if acct == "a0" {
                vec![quota()]
            } else {
                text_turn()
            }
        });
        let e = engine(fake, Arc::clone(&store) as Arc<dyn Store>);
        let items = collect(e.start("sk-caller", &user("hello")).await.unwrap()).await;
        assert!(matches!(items.last(), Some(TurnItem::Done { .. })));
        let accounts = store.accounts_now();
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        assert_eq!(accounts[0].0, "a0");
        assert!(accounts[0].1.cooldown_until_ms > now_ms());
        let rows = store.usage_now();
        let caller = caller_hash("sk-caller");
        let row = |acct: &str| {
            rows.iter()
                .find(|(k, _)| k.account == acct && k.caller == caller)
                .map(|(_, c)| c.clone())
                .unwrap_or_default()
        };
        assert_eq!(row("a1").get("requests"), Some(&1));
        assert_eq!(row("a0").get("errors.rate_limited"), Some(&1), "{rows:?}");
        let conv = crate::engine::session::conversation_id("sk-caller", &user("hello"));
        let saved = store.conversation_now(&conv).expect("checkpoint stored");
        assert_eq!(
            (saved.account.as_str(), &saved.checkpoint[..]),
            ("a1", &b"cp"[..])
        );
    }
}
