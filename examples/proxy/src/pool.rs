//! The account pool: round robin over healthy accounts, cooldown driven by classifier advice.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{AccountConfig, Secret};
use crate::upstream::FailureAdvice;

/// Cooldown used when the advice asks for a credential refresh but names no duration.
const REFRESH_BASE: Duration = Duration::from_secs(5);
/// Upper bound for any cooldown, however many failures in a row.
const COOLDOWN_CAP: Duration = Duration::from_secs(15 * 60);

/// One upstream account. Its token is only reachable through [`Account::token`].
#[derive(Debug)]
pub struct Account {
    name: String,
    upstream: String,
    config: AccountConfig,
    token: Mutex<Secret>,
    health: Mutex<Health>,
}

#[derive(Debug, Default, Clone)]
struct Health {
    cooling_until: Option<Instant>,
    consecutive_failures: u32,
    needs_refresh: bool,
    disabled: bool,
    last_category: Option<String>,
    successes: u64,
    failures: u64,
}

impl Account {
    /// Builds an account from its config; `default_upstream` applies when it names none.
    pub fn new(config: AccountConfig, token: Secret, default_upstream: &str) -> Self {
        Self {
            name: config.name.clone(),
            upstream: config
                .upstream
                .clone()
                .unwrap_or_else(|| default_upstream.to_owned()),
            config,
            token: Mutex::new(token),
            health: Mutex::new(Health::default()),
        }
    }

    /// The account's name (safe to log).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Base URL of the backend this account talks to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Where the account's credential comes from.
    pub fn config(&self) -> &AccountConfig {
        &self.config
    }

    /// The current access token.
    pub fn token(&self) -> Secret {
        lock(&self.token).clone()
    }

    /// Replaces the token (after a refresh); returns whether it changed.
    pub fn set_token(&self, token: Secret) -> bool {
        let mut t = lock(&self.token);
        let changed = t.expose() != token.expose();
        *t = token;
        changed
    }
}

/// Poison-tolerant lock: a panicking holder never takes the pool down with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The outcome of [`Pool::pick`].
#[derive(Debug)]
pub struct Pick<'a> {
    /// The chosen account.
    pub account: &'a Account,
    /// Its credentials must be refreshed before use.
    pub needs_refresh: bool,
}

/// No account can take a request right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no upstream account available")]
pub struct NoAccount {
    /// When the first cooling account becomes usable again, if any will.
    pub retry_after: Option<Duration>,
    /// Why that account is cooling (its last failure's category).
    pub category: Option<String>,
}

/// A health summary of one account, for `/healthz` and logs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountStatus {
    /// Account name.
    pub name: String,
    /// `healthy`, `cooldown`, `refresh` or `disabled`.
    pub state: &'static str,
    /// Milliseconds until the account is tried again.
    pub cooldown_remaining_ms: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Total successful turns.
    pub successes: u64,
    /// Total failed attempts.
    pub failures: u64,
    /// Category of the last failure.
    pub last_error: Option<String>,
}

/// The set of accounts and the round-robin cursor.
#[derive(Debug)]
pub struct Pool {
    accounts: Vec<Account>,
    next: AtomicUsize,
}

impl Pool {
    /// A pool over `accounts` (in config order).
    pub fn new(accounts: Vec<Account>) -> Self {
        Self {
            accounts,
            next: AtomicUsize::new(0),
        }
    }

    /// All accounts.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Looks an account up by name.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Chooses an account: `prefer` if it is usable (conversation affinity), else the next usable
    /// one in round-robin order, never one named in `exclude`.
    pub fn pick(
        &self,
        prefer: Option<&str>,
        exclude: &[String],
        now: Instant,
    ) -> Result<Pick<'_>, NoAccount> {
        let usable = |a: &Account| -> Option<bool> {
            if exclude.iter().any(|e| e == &a.name) {
                return None;
            }
            let h = lock(&a.health);
            if h.disabled || h.cooling_until.is_some_and(|t| t > now) {
                return None;
            }
            Some(h.needs_refresh)
        };
        if let Some(account) = prefer.and_then(|p| self.get(p))
            && let Some(needs_refresh) = usable(account)
        {
            return Ok(Pick {
                account,
                needs_refresh,
            });
        }
        let n = self.accounts.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let account = &self.accounts[(start + i) % n];
            if let Some(needs_refresh) = usable(account) {
                return Ok(Pick {
                    account,
                    needs_refresh,
                });
            }
        }
        // Accounts excluded for this request count too: their cooldown is when to come back.
        let soonest = self
            .accounts
            .iter()
            .filter_map(|a| {
                let h = lock(&a.health);
                if h.disabled {
                    None
                } else {
                    h.cooling_until
                        .map(|t| (t.saturating_duration_since(now), h.last_category.clone()))
                }
            })
            .min_by_key(|(d, _)| *d);
        Err(NoAccount {
            retry_after: soonest.as_ref().map(|(d, _)| *d),
            category: soonest.and_then(|(_, c)| c),
        })
    }

    /// A turn on `account` succeeded: it is healthy again.
    pub fn record_success(&self, account: &Account) {
        let mut h = lock(&account.health);
        h.consecutive_failures = 0;
        h.cooling_until = None;
        h.needs_refresh = false;
        h.successes += 1;
    }

    /// A credential refresh worked: the account may be used at once.
    pub fn record_refreshed(&self, account: &Account) {
        let mut h = lock(&account.health);
        h.needs_refresh = false;
        h.cooling_until = None;
    }

    /// An attempt on `account` failed; applies the classifier's advice. Returns the cooldown set.
    pub fn record_failure(
        &self,
        account: &Account,
        category: &str,
        advice: &FailureAdvice,
        now: Instant,
    ) -> Option<Duration> {
        let mut h = lock(&account.health);
        h.failures += 1;
        h.last_category = Some(category.to_owned());
        if advice.disable_account {
            h.disabled = true;
            return None;
        }
        if advice.refresh_credentials {
            h.needs_refresh = true;
        }
        // Failures that are not the account's fault (bad request, caller cancel) leave it alone.
        let base = match (advice.cooldown, advice.refresh_credentials) {
            (Some(d), _) => d,
            (None, true) => REFRESH_BASE,
            (None, false) => return None,
        };
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        let factor = 1u32 << (h.consecutive_failures - 1).min(10);
        let cooldown = base.saturating_mul(factor).min(COOLDOWN_CAP);
        h.cooling_until = Some(now + cooldown);
        Some(cooldown)
    }

    /// Health of every account.
    pub fn status(&self, now: Instant) -> Vec<AccountStatus> {
        self.accounts
            .iter()
            .map(|a| {
                let h = lock(&a.health).clone();
                let remaining = h
                    .cooling_until
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or_default();
                let state = if h.disabled {
                    "disabled"
                } else if h.needs_refresh {
                    "refresh"
                } else if !remaining.is_zero() {
                    "cooldown"
                } else {
                    "healthy"
                };
                AccountStatus {
                    name: a.name.clone(),
                    state,
                    cooldown_remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
                    consecutive_failures: h.consecutive_failures,
                    successes: h.successes,
                    failures: h.failures,
                    last_error: h.last_category,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| {
                    let cfg = AccountConfig::named(&format!("a{i}"));
                    Account::new(cfg, Secret::new(format!("tok{i}")), "http://127.0.0.1:1")
                })
                .collect(),
        )
    }

    fn quota() -> FailureAdvice {
        FailureAdvice {
            retry_other_account: true,
            cooldown: Some(Duration::from_secs(10)),
            ..FailureAdvice::default()
        }
    }

    #[test]
    fn round_robin_visits_every_account() {
        let p = pool(3);
        let now = Instant::now();
        let names: Vec<_> = (0..6)
            .map(|_| p.pick(None, &[], now).unwrap().account.name().to_owned())
            .collect();
        assert_eq!(names, ["a0", "a1", "a2", "a0", "a1", "a2"]);
    }

    #[test]
    fn cooling_account_is_skipped_and_backoff_doubles_up_to_cap() {
        let p = pool(2);
        let now = Instant::now();
        let a0 = p.get("a0").unwrap();
        assert_eq!(
            p.record_failure(a0, "quota_exhausted", &quota(), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            p.record_failure(a0, "quota_exhausted", &quota(), now),
            Some(Duration::from_secs(20))
        );
        for _ in 0..4 {
            assert_eq!(p.pick(None, &[], now).unwrap().account.name(), "a1");
        }
        for _ in 0..20 {
            p.record_failure(a0, "quota_exhausted", &quota(), now);
        }
        assert_eq!(
            p.status(now)[0].cooldown_remaining_ms,
            COOLDOWN_CAP.as_millis() as u64
        );
        let later = now + COOLDOWN_CAP + Duration::from_secs(1);
        assert!(p.pick(Some("a0"), &[], later).unwrap().account.name() == "a0");
        p.record_success(a0);
        assert_eq!(p.status(later)[0].state, "healthy");
    }

    #[test]
    fn exhausted_pool_reports_earliest_retry() {
        let p = pool(2);
        let now = Instant::now();
        p.record_failure(p.get("a0").unwrap(), "rate_limited", &quota(), now);
        let err = p.pick(None, &["a1".to_owned()], now).unwrap_err();
        assert_eq!(err.retry_after, Some(Duration::from_secs(10)));
        let err = p
            .pick(None, &["a0".to_owned(), "a1".to_owned()], now)
            .unwrap_err();
        assert_eq!(
            err.retry_after,
            Some(Duration::from_secs(10)),
            "excluded accounts still say when to return"
        );
    }

    #[test]
    fn refresh_and_disable_states() {
        let p = pool(3);
        let now = Instant::now();
        let refresh = FailureAdvice {
            refresh_credentials: true,
            ..FailureAdvice::default()
        };
        p.record_failure(p.get("a0").unwrap(), "unauthenticated", &refresh, now);
        let disable = FailureAdvice {
            disable_account: true,
            ..FailureAdvice::default()
        };
        p.record_failure(p.get("a1").unwrap(), "permission_denied", &disable, now);
        let st = p.status(now);
        assert_eq!(
            (st[0].state, st[1].state, st[2].state),
            ("refresh", "disabled", "healthy")
        );
        let pick = p.pick(None, &[], now + REFRESH_BASE * 2).unwrap();
        assert!(pick.needs_refresh || pick.account.name() == "a2");
        // A bad request is not the account's fault.
        let bad = FailureAdvice::default();
        assert_eq!(
            p.record_failure(p.get("a2").unwrap(), "bad_request", &bad, now),
            None
        );
        assert_eq!(p.status(now)[2].state, "healthy");
    }
}
