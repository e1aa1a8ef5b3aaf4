//! The engine's use of the [`Store`]: conversations (checkpoint and account binding), account
//! state, usage counters. A failing store never fails a request: the turn goes on without it,
//! and the failure is logged once per change of state, not once per request.

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
        self.count(
            &key.caller,
            &key.account,
            &key.model,
            &error_counter(category.as_str()),
        )
        .await;
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

    /// The store's health, for `/healthz`.
    pub fn store_health(&self) -> crate::store::StoreHealth {
        self.store.health()
    }

    /// The store's kind (`memory`, `sqlite`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The store.
    pub fn store(&self) -> &std::sync::Arc<dyn crate::store::Store> {
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
