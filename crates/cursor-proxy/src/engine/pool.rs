//! The account pool: round robin over healthy accounts. Cooldowns come from the classifier's
//! advice through `cursor-connect-classify`'s [`CooldownTracker`] (exponential backoff with
//! jitter, capped, never shorter than the server's retry-after, reset on success); the pool adds
//! the credential-refresh state and round robin.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cursor_connect::classify::{
    AccountState, Advice, Category, Clock, CooldownTracker, ManualClock, SeededJitter,
};
use serde::{Serialize, Serializer};

use crate::ops::config::{AccountConfig, Secret};

/// Cooldown base used when the advice asks for a credential refresh but names no duration.
const REFRESH_BASE: Duration = Duration::from_secs(5);

/// The pool's clock: the system's, or a manual one in tests.
#[derive(Debug, Clone, Default)]
pub struct PoolClock(Option<ManualClock>);

impl PoolClock {
    /// A clock that only moves when `clock` is advanced.
    pub fn manual(clock: ManualClock) -> Self {
        Self(Some(clock))
    }
}

impl Clock for PoolClock {
    fn now(&self) -> Instant {
        self.0.as_ref().map_or_else(Instant::now, Clock::now)
    }
}

/// One upstream account. Its token is only reachable through [`Account::token`].
#[derive(Debug)]
pub struct Account {
    name: String,
    upstream: String,
    config: AccountConfig,
    token: Mutex<Secret>,
    health: Mutex<Health>,
    /// Held while the account's credentials are renewed, so concurrent turns that all saw
    /// `unauthenticated` wait for one refresh instead of each starting their own.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Health {
    cooldown: CooldownTracker<PoolClock>,
    needs_refresh: bool,
    last_category: Option<Category>,
    successes: u64,
    failures: u64,
    /// A cooldown read from the store (set before a restart, or by another instance).
    shared_until: Option<Instant>,
    /// Disabled according to the store.
    shared_disabled: bool,
}

impl Health {
    /// When the account is next usable, counting the shared cooldown.
    fn ready_at(&self) -> Option<Instant> {
        match (self.cooldown.ready_at(), self.shared_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_ready(&self, now: Instant) -> bool {
        self.cooldown.state(now) == AccountState::Ready
            && !self.shared_disabled
            && self.shared_until.is_none_or(|t| t <= now)
    }

    fn new(clock: PoolClock, seed: u64) -> Self {
        let tracker = CooldownTracker::with_clock(clock.clone());
        // Jitter spreads accounts that failed together; a manual (test) clock runs without it.
        let cooldown = if clock.0.is_some() {
            tracker
        } else {
            tracker.jitter_source(SeededJitter::new(seed))
        };
        Self {
            cooldown,
            needs_refresh: false,
            last_category: None,
            successes: 0,
            failures: 0,
            shared_until: None,
            shared_disabled: false,
        }
    }
}

fn seed(name: &str) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    name.bytes().fold(t, |h, b| h.rotate_left(5) ^ u64::from(b))
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
            health: Mutex::new(Health::new(PoolClock::default(), seed(&config.name))),
            config,
            token: Mutex::new(token),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The account group it belongs to, if any (caller keys pinned to a group use only
    /// accounts of that group).
    pub fn group(&self) -> Option<&str> {
        self.config.group.as_deref()
    }

    /// Waits for any refresh of this account in progress and holds off others until the guard
    /// is dropped.
    pub async fn refresh_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refreshing.lock().await
    }

    /// Whether the pool still wants the account's credentials renewed (false once a
    /// concurrent refresh succeeded).
    pub fn needs_refresh(&self) -> bool {
        lock(&self.health).needs_refresh
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
pub struct Pick {
    /// The chosen account (it stays usable by this turn even if the account is removed from
    /// the pool meanwhile).
    pub account: Arc<Account>,
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
    pub category: Option<Category>,
    /// The account group the request was limited to, if any.
    pub group: Option<String>,
}

/// What an account can do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountHealth {
    /// Takes requests.
    Healthy,
    /// Resting after failures until its cooldown ends.
    Cooldown,
    /// Its credentials must be renewed before the next request.
    Refresh,
    /// Taken out of rotation for good.
    Disabled,
}

/// A health summary of one account, for `/healthz` and logs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountStatus {
    /// Account name.
    pub name: String,
    /// What the account can do now.
    pub state: AccountHealth,
    /// Milliseconds until the account is tried again.
    pub cooldown_remaining_ms: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Total successful turns.
    pub successes: u64,
    /// Total failed attempts.
    pub failures: u64,
    /// Category of the last failure.
    #[serde(serialize_with = "category_name")]
    pub last_error: Option<Category>,
}

fn category_name<S: Serializer>(c: &Option<Category>, s: S) -> Result<S::Ok, S::Error> {
    c.map(Category::as_str).serialize(s)
}

/// The set of accounts and the round-robin cursor. The set can change while serving: readers
/// take a snapshot (an `Arc` of the list), so a turn keeps the account it picked even when an
/// operator removes it meanwhile.
#[derive(Debug)]
pub struct Pool {
    accounts: RwLock<Arc<[Arc<Account>]>>,
    next: AtomicUsize,
    clock: PoolClock,
}

impl Pool {
    /// A pool over `accounts` (in config order) on the system clock.
    pub fn new(accounts: Vec<Account>) -> Self {
        Self {
            accounts: RwLock::new(accounts.into_iter().map(Arc::new).collect()),
            next: AtomicUsize::new(0),
            clock: PoolClock::default(),
        }
    }

    /// The pool's "now" (what `pick`, `status` and the cooldowns are measured against).
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A pool whose cooldowns run on `clock` (tests), without jitter.
    pub fn with_clock(accounts: Vec<Account>, clock: ManualClock) -> Self {
        for a in &accounts {
            *lock(&a.health) = Health::new(PoolClock::manual(clock.clone()), 0);
        }
        Self {
            clock: PoolClock::manual(clock),
            ..Self::new(accounts)
        }
    }

    /// A snapshot of all accounts, in the order they were added.
    pub fn accounts(&self) -> Arc<[Arc<Account>]> {
        Arc::clone(&self.accounts.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Looks an account up by name.
    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.accounts().iter().find(|a| a.name == name).cloned()
    }

    /// Adds `account` while serving; new turns may pick it at once. Returns it back when the
    /// pool already has an account of that name.
    pub fn add(&self, account: Account) -> Result<(), Box<Account>> {
        if self.clock.0.is_some() {
            *lock(&account.health) = Health::new(self.clock.clone(), 0);
        }
        let mut list = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        if list.iter().any(|a| a.name == account.name) {
            return Err(Box::new(account));
        }
        let mut next: Vec<Arc<Account>> = list.iter().cloned().collect();
        next.push(Arc::new(account));
        *list = next.into();
        Ok(())
    }

    /// Removes the account `name` while serving: new turns no longer see it, its health
    /// (cooldown, failures) goes with it, and a turn already running on it finishes. Returns
    /// the removed account.
    pub fn remove(&self, name: &str) -> Option<Arc<Account>> {
        let mut list = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let gone = list.iter().find(|a| a.name == name).cloned()?;
        *list = list.iter().filter(|a| a.name != name).cloned().collect();
        Some(gone)
    }

    /// Chooses an account: `prefer` if it is usable (conversation affinity), else the next usable
    /// one in round-robin order, never one named in `exclude`.
    pub fn pick(
        &self,
        prefer: Option<&str>,
        exclude: &[String],
        now: Instant,
    ) -> Result<Pick, NoAccount> {
        self.pick_in(None, prefer, exclude, now)
    }

    /// [`Pool::pick`] limited to the accounts of `group` when one is given (a caller key
    /// pinned to an account group).
    pub fn pick_in(
        &self,
        group: Option<&str>,
        prefer: Option<&str>,
        exclude: &[String],
        now: Instant,
    ) -> Result<Pick, NoAccount> {
        let all = self.accounts();
        let in_group = |a: &&Arc<Account>| group.is_none_or(|g| a.group() == Some(g));
        let usable = |a: &Account| -> Option<bool> {
            if exclude.iter().any(|e| e == &a.name) {
                return None;
            }
            let h = lock(&a.health);
            h.is_ready(now).then_some(h.needs_refresh)
        };
        let candidates: Vec<&Arc<Account>> = all.iter().filter(in_group).collect();
        if let Some(account) = prefer.and_then(|p| candidates.iter().find(|a| a.name == p))
            && let Some(needs_refresh) = usable(account)
        {
            return Ok(Pick {
                account: Arc::clone(account),
                needs_refresh,
            });
        }
        let n = candidates.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let account = candidates[(start + i) % n];
            if let Some(needs_refresh) = usable(account) {
                return Ok(Pick {
                    account: Arc::clone(account),
                    needs_refresh,
                });
            }
        }
        // Accounts excluded for this request count too: their cooldown is when to come back.
        let soonest = candidates
            .iter()
            .filter_map(|a| {
                let h = lock(&a.health);
                let until = h.ready_at().filter(|t| *t > now)?;
                Some((until.saturating_duration_since(now), h.last_category))
            })
            .min_by_key(|(d, _)| *d);
        Err(NoAccount {
            retry_after: soonest.as_ref().map(|(d, _)| *d),
            category: soonest.and_then(|(_, c)| c),
            group: group.map(str::to_owned),
        })
    }

    /// A turn on `account` succeeded: it is healthy again. Returns whether it was not
    /// (failures in a row or a shared cooldown), i.e. whether its stored state changes.
    pub fn record_success(&self, account: &Account) -> bool {
        let mut h = lock(&account.health);
        let changed = h.cooldown.consecutive_failures() > 0 || h.shared_until.is_some();
        h.cooldown.record_success();
        h.needs_refresh = false;
        h.shared_until = None;
        h.successes += 1;
        changed
    }

    /// Applies an account state read from the store: a cooldown until `until` (wall clock,
    /// converted to this pool's clock) and the disabled flag. A later local failure still
    /// counts; the longer of the two cooldowns wins.
    pub fn apply_shared(
        &self,
        name: &str,
        until: Option<Duration>,
        reason: Option<&str>,
        disabled: bool,
    ) {
        let Some(account) = self.get(name) else {
            return;
        };
        let now = self.now();
        let mut h = lock(&account.health);
        h.shared_until = until.map(|d| now + d);
        h.shared_disabled = disabled;
        if let Some(c) = reason.and_then(|r| Category::ALL.into_iter().find(|c| c.as_str() == r))
            && (until.is_some() || disabled)
        {
            h.last_category = Some(c);
        }
    }

    /// A credential refresh worked: the account may be used at once.
    pub fn record_refreshed(&self, account: &Account) {
        lock(&account.health).needs_refresh = false;
    }

    /// An attempt on `account` failed; applies the classifier's advice through the account's
    /// cooldown tracker. Returns the cooldown started, if any.
    pub fn record_failure(
        &self,
        account: &Account,
        category: Category,
        advice: &Advice,
    ) -> Option<Duration> {
        let mut h = lock(&account.health);
        h.failures += 1;
        h.last_category = Some(category);
        if advice.refresh_credentials() {
            h.needs_refresh = true;
        }
        // A refresh with no advised cooldown still rests the account briefly, so the refresh
        // is not retried in a tight loop. Failures that are not the account's fault (bad
        // request, caller cancel) carry no cooldown and leave it alone.
        let base = advice
            .cooldown()
            .or_else(|| advice.refresh_credentials().then_some(REFRESH_BASE));
        let advice = advice.clone().with_cooldown(base);
        h.cooldown.record_failure(&advice)
    }

    /// Takes the account named `name` out of rotation (`true`) or puts it back (`false`), as an
    /// operator asked; returns whether the account exists.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> bool {
        let Some(account) = self.get(name) else {
            return false;
        };
        let mut h = lock(&account.health);
        if disabled {
            let advice = Advice::new().with_disable_account(true);
            h.cooldown.record_failure(&advice);
        } else {
            h.cooldown.enable();
        }
        true
    }

    /// Ends the cooldown of the account named `name` (keeping it disabled if it is); returns
    /// whether the account exists.
    pub fn clear_cooldown(&self, name: &str) -> bool {
        let Some(account) = self.get(name) else {
            return false;
        };
        let mut h = lock(&account.health);
        let disabled = h.cooldown.is_disabled();
        h.cooldown.record_success();
        h.needs_refresh = false;
        if disabled {
            h.cooldown
                .record_failure(&Advice::new().with_disable_account(true));
        }
        true
    }

    /// Health of every account.
    pub fn status(&self, now: Instant) -> Vec<AccountStatus> {
        self.accounts()
            .iter()
            .map(|a| Self::status_of(a, now))
            .collect()
    }

    /// Health of one account.
    pub fn status_of(a: &Account, now: Instant) -> AccountStatus {
        let h = lock(&a.health);
        let remaining = h
            .ready_at()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or_default();
        let state = if h.cooldown.is_disabled() || h.shared_disabled {
            AccountHealth::Disabled
        } else if h.needs_refresh {
            AccountHealth::Refresh
        } else if !remaining.is_zero() {
            AccountHealth::Cooldown
        } else {
            AccountHealth::Healthy
        };
        AccountStatus {
            name: a.name.clone(),
            state,
            cooldown_remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            consecutive_failures: h.cooldown.consecutive_failures(),
            successes: h.successes,
            failures: h.failures,
            last_error: h.last_category,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> (Pool, ManualClock) {
        let clock = ManualClock::new(Instant::now());
        let accounts = (0..n)
            .map(|i| {
                Account::new(
                    AccountConfig::named(&format!("a{i}")),
                    Secret::new(format!("tok{i}")),
                    "http://127.0.0.1:1",
                )
            })
            .collect();
        (Pool::with_clock(accounts, clock.clone()), clock)
    }

    fn quota() -> Advice {
        Advice::new()
            .with_retry_other_account(true)
            .with_cooldown(Some(Duration::from_secs(10)))
    }

    #[test]
    fn round_robin_visits_every_account() {
        let (p, clock) = pool(3);
        let names: Vec<_> = (0..6)
            .map(|_| {
                p.pick(None, &[], clock.now())
                    .unwrap()
                    .account
                    .name()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["a0", "a1", "a2", "a0", "a1", "a2"]);
        assert_eq!(
            p.pick(None, &["a1".into(), "a2".into()], clock.now())
                .unwrap()
                .account
                .name(),
            "a0"
        );
    }

    #[test]
    fn cooling_account_is_skipped_backoff_doubles_and_success_resets() {
        let (p, clock) = pool(2);
        let a0 = p.get("a0").unwrap();
        assert_eq!(
            p.record_failure(&a0, Category::QuotaExhausted, &quota()),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            p.record_failure(&a0, Category::QuotaExhausted, &quota()),
            Some(Duration::from_secs(20))
        );
        for _ in 0..4 {
            assert_eq!(p.pick(None, &[], clock.now()).unwrap().account.name(), "a1");
        }
        assert_eq!(
            p.pick(Some("a0"), &[], clock.now()).unwrap().account.name(),
            "a1",
            "affinity yields to cooldown"
        );
        clock.advance(Duration::from_secs(21));
        assert_eq!(
            p.pick(Some("a0"), &[], clock.now()).unwrap().account.name(),
            "a0"
        );
        p.record_success(&a0);
        assert_eq!(
            p.record_failure(&a0, Category::QuotaExhausted, &quota()),
            Some(Duration::from_secs(10)),
            "backoff starts over"
        );
        let st = &p.status(clock.now())[0];
        assert_eq!(
            (st.state, st.consecutive_failures, st.successes, st.failures),
            (AccountHealth::Cooldown, 1, 1, 3)
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_exhausted_pool_reports_it() {
        let (p, clock) = pool(2);
        let a = quota().with_retry_after(Some(Duration::from_secs(30)));
        assert_eq!(
            p.record_failure(&p.get("a0").unwrap(), Category::RateLimited, &a),
            Some(Duration::from_secs(30))
        );
        let err = p.pick(None, &["a1".to_owned()], clock.now()).unwrap_err();
        assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(err.category, Some(Category::RateLimited));
    }

    #[test]
    fn refresh_and_disable_states() {
        let (p, clock) = pool(3);
        let refresh = Advice::new().with_refresh_credentials(true);
        assert_eq!(
            p.record_failure(&p.get("a0").unwrap(), Category::Unauthenticated, &refresh),
            Some(REFRESH_BASE)
        );
        let disable = Advice::new().with_disable_account(true);
        p.record_failure(&p.get("a1").unwrap(), Category::Unauthenticated, &disable);
        let st = p.status(clock.now());
        assert_eq!(
            (st[0].state, st[1].state, st[2].state),
            (
                AccountHealth::Refresh,
                AccountHealth::Disabled,
                AccountHealth::Healthy
            )
        );
        clock.advance(REFRESH_BASE);
        let picks: Vec<_> = (0..3)
            .map(|_| p.pick(None, &[], clock.now()).unwrap())
            .map(|k| (k.account.name().to_owned(), k.needs_refresh))
            .collect();
        assert!(
            picks.contains(&("a0".into(), true)) && !picks.iter().any(|(n, _)| n == "a1"),
            "{picks:?}"
        );
        p.record_refreshed(&p.get("a0").unwrap());
        assert_eq!(p.status(clock.now())[0].state, AccountHealth::Healthy);
        // A bad request is not the account's fault.
        assert_eq!(
            p.record_failure(&p.get("a2").unwrap(), Category::BadRequest, &Advice::new()),
            None
        );
        assert_eq!(p.status(clock.now())[2].state, AccountHealth::Healthy);
    }

    #[test]
    fn shared_state_from_the_store_holds_the_account_out() {
        let (p, clock) = pool(2);
        p.apply_shared(
            "a0",
            Some(Duration::from_secs(30)),
            Some("rate_limited"),
            false,
        );
        let st = &p.status(clock.now())[0];
        assert_eq!(
            (st.state, st.last_error),
            (AccountHealth::Cooldown, Some(Category::RateLimited))
        );
        for _ in 0..3 {
            assert_eq!(
                p.pick(Some("a0"), &[], clock.now()).unwrap().account.name(),
                "a1"
            );
        }
        clock.advance(Duration::from_secs(31));
        assert_eq!(
            p.pick(Some("a0"), &[], clock.now()).unwrap().account.name(),
            "a0"
        );
        assert!(
            p.record_success(&p.get("a0").unwrap()),
            "the shared cooldown is cleared"
        );
        assert!(
            !p.record_success(&p.get("a0").unwrap()),
            "nothing left to clear"
        );
        p.apply_shared("a1", None, None, true);
        assert_eq!(p.status(clock.now())[1].state, AccountHealth::Disabled);
        assert!(p.pick(None, &["a0".into()], clock.now()).is_err());
    }

    #[test]
    fn accounts_join_and_leave_and_groups_limit_the_choice() {
        let (p, clock) = pool(1);
        let grouped = |name: &str, group: &str| {
            let cfg = AccountConfig {
                group: Some(group.into()),
                ..AccountConfig::named(name)
            };
            Account::new(cfg, Secret::new("t"), "http://127.0.0.1:1")
        };
        assert!(p.add(grouped("r0", "red")).is_ok());
        assert!(p.add(grouped("a0", "red")).is_err(), "names are unique");
        let picked = p.pick_in(Some("red"), None, &[], clock.now()).unwrap();
        assert_eq!(picked.account.name(), "r0");
        // Affinity to an account outside the group does not leak out of it.
        let picked = p
            .pick_in(Some("red"), Some("a0"), &[], clock.now())
            .unwrap();
        assert_eq!(picked.account.name(), "r0");
        let err = p.pick_in(Some("blue"), None, &[], clock.now()).unwrap_err();
        assert_eq!(err.group.as_deref(), Some("blue"));
        // A removed account keeps serving whoever holds it, but is never picked again.
        let held = p.remove("r0").unwrap();
        assert!(p.remove("r0").is_none());
        assert!(p.pick_in(Some("red"), None, &[], clock.now()).is_err());
        assert_eq!(held.name(), "r0");
        assert_eq!(p.status(clock.now()).len(), 1);
    }
}
