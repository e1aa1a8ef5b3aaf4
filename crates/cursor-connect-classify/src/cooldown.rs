//! Per-account cooldowns: exponential backoff with jitter and a cap, reset on success.
//!
//! Deterministic by construction: time comes from a [`Clock`] and jitter from a
//! [`JitterSource`], both supplied by the caller, so a test can replay an exact schedule.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::advice::Advice;

/// A source of "now".
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test keeps one
/// handle and gives another to the tracker.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Instant) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A source of jitter: uniform values in `[0, 1)`.
pub trait JitterSource: fmt::Debug + Send {
    /// The next value in `[0, 1)`.
    fn next_unit(&mut self) -> f64;
}

/// No jitter: always 0, so every delay is exactly the backoff.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJitter;

impl JitterSource for NoJitter {
    fn next_unit(&mut self) -> f64 {
        0.0
    }
}

/// A seeded SplitMix64 generator: the same seed gives the same jitter sequence everywhere.
#[derive(Clone, Copy, Debug)]
pub struct SeededJitter {
    state: u64,
}

impl SeededJitter {
    /// A generator from `seed`. Seed it per account (for example from a hash of the account
    /// id) so accounts that failed together do not come back together.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl JitterSource for SeededJitter {
    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits fill an f64 mantissa exactly: a uniform value in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How cooldowns grow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CooldownPolicy {
    multiplier: u32,
    cap: Duration,
    jitter: f64,
}

/// Longest delay the tracker schedules, whatever the policy or advice says (about 100 years).
const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

impl Default for CooldownPolicy {
    /// Doubling, capped at 24 hours, with up to 20 % jitter taken off each delay.
    fn default() -> Self {
        Self {
            multiplier: 2,
            cap: Duration::from_secs(24 * 60 * 60),
            jitter: 0.2,
        }
    }
}

impl CooldownPolicy {
    /// Growth factor per consecutive failure (at least 1).
    pub fn multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = multiplier.max(1);
        self
    }

    /// The longest backoff (a server's retry-after may still be longer).
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// The fraction of each delay that jitter may take off, clamped to `[0, 1]`. Jitter only
    /// shortens, so the cap holds.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The backoff after `failures` consecutive failures with `base`, before jitter.
    pub fn backoff(&self, base: Duration, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1);
        let factor = self.multiplier.checked_pow(exp);
        factor
            .and_then(|f| base.checked_mul(f))
            .map_or(self.cap, |d| d.min(self.cap))
    }
}

/// The state of one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    /// Usable now.
    Ready,
    /// Cooling down until the given instant.
    Cooling {
        /// When the account may be used again.
        until: Instant,
    },
    /// Out of rotation until [`CooldownTracker::record_success`] or [`CooldownTracker::enable`].
    Disabled,
}

/// Tracks one account's cooldown, driven by [`Advice`].
///
/// * `advice.cooldown()` is the base; consecutive failures with a cooldown grow it by the
///   policy's multiplier up to the cap, and jitter takes up to the policy's fraction off.
/// * `advice.retry_after()` is a floor: the account is never ready before the server said.
/// * `advice.disable_account()` takes the account out until a success or [`enable`](Self::enable).
/// * A cooldown never shortens one already running. [`record_success`](Self::record_success)
///   resets everything.
#[derive(Debug)]
pub struct CooldownTracker<C: Clock = SystemClock> {
    clock: C,
    policy: CooldownPolicy,
    jitter: Box<dyn JitterSource>,
    failures: u32,
    until: Option<Instant>,
    disabled: bool,
}

impl Default for CooldownTracker<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl CooldownTracker<SystemClock> {
    /// A tracker on the system clock with the default policy and jitter seeded from the
    /// current time (use [`with_clock`](CooldownTracker::with_clock) and
    /// [`jitter_source`](Self::jitter_source) for a reproducible schedule).
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::with_clock(SystemClock).jitter_source(SeededJitter::new(seed))
    }
}

impl<C: Clock> CooldownTracker<C> {
    /// A tracker on `clock`, with the default policy and no jitter.
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            policy: CooldownPolicy::default(),
            jitter: Box::new(NoJitter),
            failures: 0,
            until: None,
            disabled: false,
        }
    }

    /// Replaces the policy.
    pub fn policy(mut self, policy: CooldownPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces the jitter source.
    pub fn jitter_source(mut self, jitter: impl JitterSource + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// Records a failure and returns the cooldown it started (from now), if any.
    pub fn record_failure(&mut self, advice: &Advice) -> Option<Duration> {
        if advice.disable_account() {
            self.disabled = true;
        }
        let backoff = advice.cooldown().map(|base| {
            self.failures = self.failures.saturating_add(1);
            // Bounded before the float multiply, which panics past `Duration::MAX`.
            let full = self.policy.backoff(base, self.failures).min(MAX_DELAY);
            let cut = (self.policy.jitter * self.jitter.next_unit()).clamp(0.0, 1.0);
            full.mul_f64(1.0 - cut)
        });
        let delay = match (backoff, advice.retry_after()) {
            (Some(b), Some(r)) => b.max(r),
            (b, r) => b.or(r)?,
        };
        // Caller-supplied caps, cooldowns and retry-afters may be huge: an `Instant` must not
        // overflow (that panics), so the delay is bounded first.
        let delay = delay.min(MAX_DELAY);
        let now = self.clock.now();
        let until = now.checked_add(delay).unwrap_or(now);
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        Some(delay)
    }

    /// Records a success: the account is healthy again, the backoff starts over.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.until = None;
        self.disabled = false;
    }

    /// Puts a disabled account back into rotation (after a person fixed it), keeping any
    /// running cooldown.
    pub fn enable(&mut self) {
        self.disabled = false;
    }

    /// The account's state at `now`.
    pub fn state(&self, now: Instant) -> AccountState {
        if self.disabled {
            return AccountState::Disabled;
        }
        match self.until {
            Some(until) if until > now => AccountState::Cooling { until },
            _ => AccountState::Ready,
        }
    }

    /// Whether the account is cooling down (or disabled) at `now`.
    pub fn is_cooling(&self, now: Instant) -> bool {
        self.state(now) != AccountState::Ready
    }

    /// Whether the account is cooling down (or disabled) on the tracker's clock.
    pub fn is_cooling_now(&self) -> bool {
        self.is_cooling(self.clock.now())
    }

    /// When the current cooldown ends; `None` if none is running or the account is disabled.
    pub fn ready_at(&self) -> Option<Instant> {
        if self.disabled { None } else { self.until }
    }

    /// Whether the account is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Consecutive failures that carried a cooldown since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advice(cooldown: u64) -> Advice {
        Advice::new().with_cooldown(Some(Duration::from_secs(cooldown)))
    }

    #[test]
    fn seeded_jitter_is_uniform_and_reproducible() {
        let mut a = SeededJitter::new(7);
        let mut b = SeededJitter::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_unit()).collect();
        let ys: Vec<f64> = (0..1000).map(|_| b.next_unit()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
        assert_ne!(SeededJitter::new(8).next_unit(), xs[0]);
    }

    #[test]
    fn backoff_saturates_at_cap() {
        let p = CooldownPolicy::default().cap(Duration::from_secs(1000));
        assert_eq!(
            p.backoff(Duration::from_secs(60), 0),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.backoff(Duration::from_secs(60), 1),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.backoff(Duration::from_secs(60), 4),
            Duration::from_secs(480)
        );
        assert_eq!(
            p.backoff(Duration::from_secs(60), 5),
            Duration::from_secs(960)
        );
        assert_eq!(
            p.backoff(Duration::from_secs(60), 6),
            Duration::from_secs(1000)
        );
        assert_eq!(
            p.backoff(Duration::from_secs(60), u32::MAX),
            Duration::from_secs(1000)
        );
        assert_eq!(
            p.multiplier(0).backoff(Duration::from_secs(60), 9),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn jitter_fraction_is_sanitised() {
        let clock = ManualClock::new(Instant::now());
        let policy = CooldownPolicy::default().jitter(f64::NAN);
        let mut t = CooldownTracker::with_clock(clock)
            .policy(policy)
            .jitter_source(SeededJitter::new(1));
        assert_eq!(t.record_failure(&advice(60)), Some(Duration::from_secs(60)));
        assert_eq!(
            CooldownPolicy::default().jitter(7.0),
            CooldownPolicy::default().jitter(1.0)
        );
    }

    #[test]
    fn advice_without_cooldown_or_retry_after_changes_nothing() {
        let clock = ManualClock::new(Instant::now());
        let mut t = CooldownTracker::with_clock(clock);
        assert_eq!(t.record_failure(&Advice::new()), None);
        assert!(!t.is_cooling_now());
        assert_eq!(t.consecutive_failures(), 0);
    }
}
