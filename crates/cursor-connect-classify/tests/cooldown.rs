//! The cooldown tracker's schedule, on a manual clock.

use std::time::{Duration, Instant};

use cursor_connect_classify::{
    AccountState, Advice, Clock, Context, CooldownPolicy, CooldownTracker, JitterSource,
    LONG_COOLDOWN, ManualClock, SHORT_COOLDOWN, SeededJitter, classify,
};
use cursor_connect_frame::{Code, ConnectError};

const HOUR: u64 = 3600;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn doubling_schedule_without_jitter_hits_the_cap() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone());
    let rate = Advice::new().with_cooldown(Some(SHORT_COOLDOWN));
    let want = [
        60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 30720, 61440, 86400, 86400,
    ];
    for (i, w) in want.into_iter().enumerate() {
        assert_eq!(t.record_failure(&rate), Some(secs(w)), "failure {}", i + 1);
        clock.advance(secs(w));
        assert!(!t.is_cooling_now(), "ready exactly when the cooldown ends");
    }
    assert_eq!(t.consecutive_failures(), 13);

    let mut t = CooldownTracker::with_clock(clock.clone());
    let quota = Advice::new().with_cooldown(Some(LONG_COOLDOWN));
    let got: Vec<u64> = (0..7)
        .map(|_| t.record_failure(&quota).unwrap().as_secs())
        .collect();
    assert_eq!(
        got,
        [
            HOUR,
            2 * HOUR,
            4 * HOUR,
            8 * HOUR,
            16 * HOUR,
            24 * HOUR,
            24 * HOUR
        ]
    );
}

#[test]
fn seeded_jitter_schedule_is_exact_and_bounded() {
    let run = |seed: u64| {
        let clock = ManualClock::new(Instant::now());
        let policy = CooldownPolicy::default().jitter(0.5).cap(secs(600));
        let mut t = CooldownTracker::with_clock(clock)
            .policy(policy)
            .jitter_source(SeededJitter::new(seed));
        let rate = Advice::new().with_cooldown(Some(SHORT_COOLDOWN));
        (0..6)
            .map(|_| t.record_failure(&rate).unwrap())
            .collect::<Vec<_>>()
    };
    let a = run(42);
    assert_eq!(a, run(42), "same seed, same schedule");
    assert_ne!(a, run(43), "different seed, different schedule");
    let full = [60, 120, 240, 480, 600, 600];
    let mut jitter = SeededJitter::new(42);
    for (got, full) in a.iter().zip(full) {
        let full = secs(full);
        assert!(
            *got <= full && *got >= full / 2,
            "{got:?} within [{:?}, {full:?}]",
            full / 2
        );
        // Exactly the documented formula: full * (1 - 0.5 * u).
        assert_eq!(*got, full.mul_f64(1.0 - 0.5 * jitter.next_unit()));
    }
}

#[test]
fn retry_after_is_a_floor_and_alone_does_not_escalate() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone());
    let rate_with_hint = Advice::new()
        .with_cooldown(Some(SHORT_COOLDOWN))
        .with_retry_after(Some(secs(300)));
    assert_eq!(t.record_failure(&rate_with_hint), Some(secs(300)));
    assert_eq!(t.consecutive_failures(), 1);
    let hint_only = Advice::new().with_retry_after(Some(secs(5)));
    // A running cooldown is never shortened.
    let before = t.ready_at();
    assert_eq!(t.record_failure(&hint_only), Some(secs(5)));
    assert_eq!(t.ready_at(), before);
    assert_eq!(
        t.consecutive_failures(),
        1,
        "a bare retry-after is not an escalation"
    );
}

#[test]
fn disable_until_success_or_enable() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone());
    t.record_failure(&Advice::new().with_disable_account(true));
    assert_eq!(t.state(clock.now()), AccountState::Disabled);
    clock.advance(secs(10 * 24 * HOUR));
    assert!(t.is_cooling_now(), "disabled does not expire");
    assert_eq!(t.ready_at(), None);
    t.enable();
    assert!(!t.is_cooling_now());
    t.record_failure(&Advice::new().with_disable_account(true));
    t.record_success();
    assert!(!t.is_disabled() && !t.is_cooling_now());
}

#[test]
fn success_resets_the_backoff() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone());
    let rate = Advice::new().with_cooldown(Some(SHORT_COOLDOWN));
    t.record_failure(&rate);
    t.record_failure(&rate);
    assert_eq!(
        t.state(clock.now()),
        AccountState::Cooling {
            until: t.ready_at().unwrap()
        }
    );
    t.record_success();
    assert_eq!((t.consecutive_failures(), t.ready_at()), (0, None));
    assert_eq!(
        t.record_failure(&rate),
        Some(SHORT_COOLDOWN),
        "starts over at the base"
    );
}

#[test]
fn driven_by_classifications() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone());
    let unavailable = classify(
        &ConnectError::remote(Code::Unavailable, "x"),
        Context::new(),
    );
    assert_eq!(
        t.record_failure(unavailable.advice()),
        None,
        "not the account's fault"
    );
    assert!(!t.is_cooling_now());
    let limited = classify(
        &ConnectError::remote(Code::ResourceExhausted, "x"),
        Context::new(),
    );
    assert_eq!(t.record_failure(limited.advice()), Some(SHORT_COOLDOWN));
    clock.advance(secs(59));
    assert!(t.is_cooling_now());
    clock.advance(secs(1));
    assert!(!t.is_cooling_now());
}

#[test]
fn huge_caps_cooldowns_and_retry_afters_do_not_panic() {
    let clock = ManualClock::new(Instant::now());
    let mut t = CooldownTracker::with_clock(clock.clone())
        .policy(CooldownPolicy::default().cap(Duration::MAX));
    let advice = Advice::new()
        .with_cooldown(Some(Duration::MAX))
        .with_retry_after(Some(Duration::MAX));
    for _ in 0..3 {
        let d = t.record_failure(&advice).expect("a delay");
        assert!(d >= secs(365 * 24 * HOUR), "{d:?}");
    }
    assert!(t.is_cooling_now());
    assert!(matches!(t.state(clock.now()), AccountState::Cooling { .. }));
}
