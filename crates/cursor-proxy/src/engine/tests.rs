//! Engine tests against the scripted upstream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tokio::sync::mpsc;
use tokio::time::timeout;

use cursor_connect::classify::{Advice, Category};
use cursor_connect::{Event, ToolCall, ToolResult, Usage};

use crate::engine::pool::{Account, AccountHealth, Pool};
use crate::engine::turn::{Message, Part, Role, Turn};
use crate::engine::{Engine, EngineConfig, MAX_UNANSWERED_REPEATS, Stop, TurnItem};
use crate::ops::config::{AccountConfig, Secret};
use crate::upstream::fake::{
    FakeUpstream, Step, bad_request, final_error, quota, reset, unauthenticated,
};

fn engine(
    n: usize,
    fake: FakeUpstream,
    cfg: EngineConfig,
) -> (
    Arc<Engine>,
    Arc<std::sync::Mutex<crate::upstream::fake::Seen>>,
) {
    let seen = Arc::clone(&fake.seen);
    let accounts = (0..n)
        .map(|i| {
            Account::new(
                AccountConfig::named(&format!("a{i}")),
                Secret::new(format!("t{i}")),
                "http://127.0.0.1:1",
            )
        })
        .collect();
    (
        Engine::new(Arc::new(fake), Arc::new(Pool::new(accounts)), cfg),
        seen,
    )
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

fn text(t: &str) -> TurnItem {
    TurnItem::Event(Event::TextDelta(t.into()))
}

fn usage(input: u64, output: u64) -> Usage {
    let mut u = Usage::default();
    (u.input_tokens, u.output_tokens) = (input, output);
    u
}

fn text_turn(text: &str) -> Vec<Step> {
    vec![
        Step::Ev(Event::ThinkingDelta("hmm".into())),
        Step::Ev(Event::ThinkingCompleted),
        Step::Ev(Event::TextDelta(text.into())),
        Step::Ev(Event::Checkpoint(Bytes::from_static(b"cp1"))),
        Step::Ev(Event::TurnEnded(usage(10, 4))),
    ]
}

async fn drain(mut rx: mpsc::Receiver<TurnItem>) -> Vec<TurnItem> {
    let mut out = Vec::new();
    while let Some(i) = timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("turn stalled")
    {
        out.push(i);
    }
    out
}

#[tokio::test]
async fn text_turn_streams_and_saves_checkpoint() {
    let (e, seen) = engine(
        1,
        FakeUpstream::new(|_, _| text_turn("hello")),
        EngineConfig::default(),
    );
    let items = drain(e.start("key", &user("hi")).await.unwrap()).await;
    assert_eq!(
        items[0],
        TurnItem::Event(Event::ThinkingDelta("hmm".into()))
    );
    assert_eq!(items[2], text("hello"));
    assert!(
        matches!(items[3], TurnItem::Done { stop: Stop::EndTurn, usage } if usage.input_tokens == 10 && usage.output_tokens == 4)
    );
    // The second turn of the conversation resumes the checkpoint with only the new text.
    let mut second = user("hi");
    second.messages.push(Message {
        role: Role::Assistant,
        parts: vec![Part::Text("hello".into())],
    });
    second.messages.push(Message {
        role: Role::User,
        parts: vec![Part::Text("more".into())],
    });
    drain(e.start("key", &second).await.unwrap()).await;
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.runs[1].1.conversation_state().map(|b| &b[..]),
        Some(&b"cp1"[..])
    );
    assert_eq!(seen.runs[1].1.effective_user_text(), "more");
    assert_eq!(seen.runs[0].1.conversation(), seen.runs[1].1.conversation());
}

#[tokio::test]
async fn a_regenerated_first_turn_does_not_build_on_its_own_checkpoint() {
    let (e, seen) = engine(
        1,
        FakeUpstream::new(|_, _| text_turn("hello")),
        EngineConfig::default(),
    );
    drain(e.start("key", &user("hi")).await.unwrap()).await;
    drain(e.start("key", &user("hi")).await.unwrap()).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.runs[0].1.conversation(), seen.runs[1].1.conversation());
    assert!(
        seen.runs[1].1.conversation_state().is_none(),
        "same messages again: start over, do not continue"
    );
}

#[tokio::test]
async fn failure_before_first_byte_is_retried_on_another_account() {
    let fake = FakeUpstream::new(|acct, _| {
        if acct == "a0" {
            vec![quota()]
        } else {
            text_turn("ok")
        }
    });
    let (e, seen) = engine(2, fake, EngineConfig::default());
    for _ in 0..4 {
        let items = drain(e.start("key", &user("x")).await.unwrap()).await;
        assert!(matches!(items.last(), Some(TurnItem::Done { .. })));
    }
    let status = e.pool().status(std::time::Instant::now());
    assert_eq!(
        (status[0].state, status[1].state),
        (AccountHealth::Cooldown, AccountHealth::Healthy)
    );
    // a0 was tried once, then skipped while cooling.
    assert_eq!(
        seen.lock()
            .unwrap()
            .runs
            .iter()
            .filter(|(a, _)| a == "a0")
            .count(),
        1
    );
}

#[tokio::test]
async fn non_retryable_error_and_exhausted_attempts_reach_the_caller() {
    let fake = FakeUpstream::new(|_, _| vec![bad_request()]);
    let (e, _) = engine(2, fake, EngineConfig::default());
    let err = e.start("key", &user("x")).await.unwrap_err();
    assert_eq!(
        (err.status, err.category),
        (StatusCode::BAD_REQUEST, Category::BadRequest)
    );

    let (e, seen) = engine(
        2,
        FakeUpstream::new(|_, _| vec![quota()]),
        EngineConfig::default(),
    );
    let err = e.start("key", &user("x")).await.unwrap_err();
    assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(err.retry_after.is_some());
    assert_eq!(seen.lock().unwrap().runs.len(), 2);
}

#[tokio::test]
async fn failure_after_output_becomes_a_failed_item() {
    let fake =
        FakeUpstream::new(|_, _| vec![Step::Ev(Event::TextDelta("partial".into())), reset()]);
    let (e, _) = engine(1, fake, EngineConfig::default());
    let items = drain(e.start("key", &user("x")).await.unwrap()).await;
    assert_eq!(items[0], text("partial"));
    assert!(matches!(&items[1], TurnItem::Failed(err) if err.status == StatusCode::BAD_GATEWAY));
}

fn tool_turn() -> Vec<Step> {
    let call = |id: &str| Event::ToolCall(ToolCall::new(id, "get", "{}"));
    vec![
        Step::Ev(Event::TextDelta("let me check".into())),
        Step::Ev(call("c1")),
        Step::Ev(call("c2")),
        Step::AwaitResult,
        Step::AwaitResult,
        Step::Ev(Event::TextDelta("it is sunny".into())),
        Step::Ev(Event::TurnEnded(Usage::default())),
    ]
}

fn with_results(mut req: Turn, ids: &[&str]) -> Turn {
    let calls = ids
        .iter()
        .map(|id| Part::ToolCall(ToolCall::new(*id, "get", "{}")));
    req.messages.push(Message {
        role: Role::Assistant,
        parts: calls.collect(),
    });
    for id in ids {
        req.messages.push(Message {
            role: Role::Tool,
            parts: vec![Part::ToolResult {
                call_id: (*id).into(),
                result: ToolResult::text(format!("result {id}")),
            }],
        });
    }
    req
}

#[tokio::test]
async fn tool_calls_wait_inline_and_resume_the_same_upstream_turn() {
    let (e, seen) = engine(
        1,
        FakeUpstream::new(|_, _| tool_turn()),
        EngineConfig::default(),
    );
    let first = drain(e.start("key", &user("weather?")).await.unwrap()).await;
    let calls: Vec<_> = first
        .iter()
        .filter(|i| matches!(i, TurnItem::Event(Event::ToolCall(_))))
        .collect();
    assert_eq!(
        calls.len(),
        2,
        "both parallel calls end up in the first response: {first:?}"
    );
    assert!(matches!(
        first.last(),
        Some(TurnItem::Done {
            stop: Stop::ToolUse,
            ..
        })
    ));
    assert_eq!(e.parked_count(), 1);

    let second = drain(
        e.start("key", &with_results(user("weather?"), &["c1", "c2"]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(second[0], text("it is sunny"));
    assert!(matches!(
        second.last(),
        Some(TurnItem::Done {
            stop: Stop::EndTurn,
            ..
        })
    ));
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.runs.len(),
        1,
        "the resumed request continued the open upstream turn"
    );
    assert_eq!(
        seen.results
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(e.parked_count(), 0);
}

/// A client that keeps sending the turn back without answering the tool calls (results with ids
/// that match no call) gets a clear error after MAX_UNANSWERED_REPEATS rounds instead of a new
/// upstream turn each time; a request that answers resets the count.
#[tokio::test]
async fn repeating_an_unanswered_turn_ends_in_a_clear_error() {
    let (e, seen) = engine(
        1,
        FakeUpstream::new(|_, _| tool_turn()),
        EngineConfig::default(),
    );
    drain(e.start("key", &user("weather?")).await.unwrap()).await;
    for _ in 0..MAX_UNANSWERED_REPEATS {
        let wrong = with_results(user("weather?"), &["merged"]);
        drain(e.start("key", &wrong).await.expect("a new turn")).await;
    }
    let wrong = with_results(user("weather?"), &["merged"]);
    let err = e.start("key", &wrong).await.expect_err("refused");
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(err.message.contains("went unanswered"), "{}", err.message);
    assert_eq!(
        seen.lock().unwrap().runs.len(),
        1 + MAX_UNANSWERED_REPEATS as usize,
        "no upstream turn for the refused request"
    );
}

#[tokio::test]
async fn abandoned_tool_waits_time_out() {
    let cfg = EngineConfig {
        tool_wait_timeout: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let (e, seen) = engine(1, FakeUpstream::new(|_, _| tool_turn()), cfg);
    drain(e.start("key", &user("weather?")).await.unwrap()).await;
    assert_eq!(e.parked_count(), 1);
    timeout(Duration::from_secs(5), async {
        while e.parked_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("reaper never ran");
    assert_eq!(seen.lock().unwrap().cancelled, 1);
    // A late answer starts a fresh turn with the history flattened.
    drain(
        e.start("key", &with_results(user("weather?"), &["c1", "c2"]))
            .await
            .unwrap(),
    )
    .await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.runs.len(), 2);
    assert!(seen.runs[1].1.effective_user_text().contains("result c1"));
}

#[tokio::test]
async fn checkpoint_from_another_account_is_discarded_and_history_flattened() {
    let fake = FakeUpstream::new(|_, _| text_turn("ok"));
    let (e, seen) = engine(2, fake, EngineConfig::default());
    drain(e.start("key", &user("hi")).await.unwrap()).await;
    let first_account = seen.lock().unwrap().runs[0].0.clone();
    let acct = e.pool().get(&first_account).unwrap();
    e.pool().record_failure(
        &acct,
        Category::QuotaExhausted,
        &Advice::new().with_cooldown(Some(Duration::from_secs(60))),
    );
    let mut second = user("hi");
    second.messages.push(Message {
        role: Role::Assistant,
        parts: vec![Part::Text("ok".into())],
    });
    second.messages.push(Message {
        role: Role::User,
        parts: vec![Part::Text("again".into())],
    });
    drain(e.start("key", &second).await.unwrap()).await;
    let seen = seen.lock().unwrap();
    let (acct2, req2) = &seen.runs[1];
    assert_ne!(acct2, &first_account);
    assert!(req2.conversation_state().is_none());
    assert!(
        req2.effective_user_text().contains("[user]\nhi")
            && req2.effective_user_text().contains("again")
    );
}

#[tokio::test]
async fn caller_going_away_cancels_the_upstream_turn() {
    let fake = FakeUpstream::new(|_, _| {
        let mut v = vec![Step::Ev(Event::TextDelta("a".into()))];
        v.extend((0..200).map(|i| Step::Ev(Event::TextDelta(format!("{i}")))));
        v
    });
    let (e, seen) = engine(1, fake, EngineConfig::default());
    let rx = e.start("key", &user("x")).await.unwrap();
    drop(rx);
    timeout(Duration::from_secs(5), async {
        while seen.lock().unwrap().cancelled == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("run not cancelled");
}

#[tokio::test]
async fn refresh_advice_renews_credentials_before_the_account_is_used_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // a0 answers `unauthenticated` until its credentials were refreshed once.
    let refreshed = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&refreshed);
    let fake = FakeUpstream::new(move |acct, _| {
        if acct == "a0" && !r.load(Ordering::SeqCst) {
            vec![unauthenticated()]
        } else {
            text_turn("ok")
        }
    });
    let refresh_ok = Arc::clone(&fake.refresh_ok);
    let seen = Arc::clone(&fake.seen);
    let clock = cursor_connect::classify::ManualClock::new(std::time::Instant::now());
    let accounts = (0..2)
        .map(|i| {
            Account::new(
                AccountConfig::named(&format!("a{i}")),
                Secret::new("t"),
                "http://127.0.0.1:1",
            )
        })
        .collect();
    let pool = Arc::new(Pool::with_clock(accounts, clock.clone()));
    let e = Engine::new(Arc::new(fake), pool, EngineConfig::default());

    // The caller never notices: a1 answers, a0 waits for a refresh.
    assert!(matches!(
        drain(e.start("k", &user("1")).await.unwrap()).await.last(),
        Some(TurnItem::Done { .. })
    ));
    assert_eq!(
        e.pool().status(e.pool().now())[0].state,
        AccountHealth::Refresh
    );

    // The refresh fails: a0 stays out (longer), a1 answers.
    clock.advance(Duration::from_secs(6));
    drain(e.start("k", &user("2")).await.unwrap()).await;
    drain(e.start("k", &user("3")).await.unwrap()).await;
    let st = e.pool().status(e.pool().now());
    assert_eq!(
        (st[0].state, st[0].consecutive_failures),
        (AccountHealth::Refresh, 2),
        "{st:?}"
    );

    // The refresh works: a0 is used again and healthy.
    clock.advance(Duration::from_secs(60));
    refresh_ok.store(true, Ordering::SeqCst);
    refreshed.store(true, Ordering::SeqCst);
    for i in 0..2 {
        drain(e.start("k", &user(&format!("again {i}"))).await.unwrap()).await;
    }
    assert_eq!(
        e.pool().status(e.pool().now())[0].state,
        AccountHealth::Healthy
    );
    let runs = &seen.lock().unwrap().runs;
    assert!(
        runs.iter().skip(1).any(|(a, _)| a == "a0"),
        "a0 served again after its refresh"
    );
}

/// A run that emits some text and then fails with `failure`, on the first `failing` runs only.
fn fails_after_output(failing: usize, failure: fn() -> Step) -> FakeUpstream {
    let runs = std::sync::atomic::AtomicUsize::new(0);
    FakeUpstream::new(move |_, _| {
        if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < failing {
            vec![Step::Ev(Event::TextDelta("partial".into())), failure()]
        } else {
            text_turn("ok")
        }
    })
}

#[tokio::test]
async fn non_streaming_turn_failing_after_upstream_output_is_retried_invisibly() {
    let (e, seen) = engine(2, fails_after_output(1, reset), EngineConfig::default());
    let items = drain(e.start_complete("key", &user("x")).await.unwrap()).await;
    assert!(!items.contains(&text("partial")), "{items:?}");
    assert!(items.contains(&text("ok")), "{items:?}");
    assert!(matches!(items.last(), Some(TurnItem::Done { .. })));
    assert_eq!(seen.lock().unwrap().runs.len(), 2);

    // Attempts are bounded: every run failing ends in the error after `max_attempts` turns.
    let (e, seen) = engine(
        2,
        fails_after_output(usize::MAX, reset),
        EngineConfig::default(),
    );
    let items = drain(e.start_complete("key", &user("x")).await.unwrap()).await;
    assert!(
        matches!(items.last(), Some(TurnItem::Failed(err)) if err.status == StatusCode::BAD_GATEWAY)
    );
    assert_eq!(seen.lock().unwrap().runs.len(), 3);

    // A failure the upstream calls final is not retried.
    let (e, seen) = engine(
        2,
        fails_after_output(1, final_error),
        EngineConfig::default(),
    );
    let items = drain(e.start_complete("key", &user("x")).await.unwrap()).await;
    assert!(matches!(items.last(), Some(TurnItem::Failed(_))));
    assert_eq!(seen.lock().unwrap().runs.len(), 1);

    // A streaming start is never retried after output: the caller may have seen it.
    let (e, seen) = engine(2, fails_after_output(1, reset), EngineConfig::default());
    let items = drain(e.start("key", &user("x")).await.unwrap()).await;
    assert_eq!(items[0], text("partial"));
    assert!(matches!(&items[1], TurnItem::Failed(_)));
    assert_eq!(seen.lock().unwrap().runs.len(), 1);
}

#[tokio::test]
async fn caller_that_stops_reading_does_not_hold_the_upstream_turn_forever() {
    let fake = FakeUpstream::new(|_, _| {
        (0..500)
            .map(|i| Step::Ev(Event::TextDelta(format!("{i}"))))
            .collect()
    });
    let cfg = EngineConfig {
        caller_idle_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let (e, seen) = engine(1, fake, cfg);
    // The connection stays open (the receiver lives) but nothing is read.
    let _rx = e.start("key", &user("x")).await.unwrap();
    timeout(Duration::from_secs(5), async {
        while seen.lock().unwrap().cancelled == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a stalled caller kept the upstream turn open");
}

#[tokio::test]
async fn a_parked_turn_failing_on_resume_cools_its_account_and_continues_elsewhere() {
    let fake = FakeUpstream::new(|acct, _| {
        if acct == "a0" {
            vec![
                Step::Ev(Event::ToolCall(ToolCall::new("c1", "get", "{}"))),
                Step::AwaitResult,
                quota(),
            ]
        } else {
            text_turn("done")
        }
    });
    let (e, seen) = engine(2, fake, EngineConfig::default());
    let first = drain(e.start("key", &user("weather?")).await.unwrap()).await;
    assert!(matches!(
        first.last(),
        Some(TurnItem::Done {
            stop: Stop::ToolUse,
            ..
        })
    ));
    let second = drain(
        e.start("key", &with_results(user("weather?"), &["c1"]))
            .await
            .unwrap(),
    )
    .await;
    assert!(second.contains(&text("done")), "{second:?}");
    let status = e.pool().status(std::time::Instant::now());
    assert_eq!(
        status[0].state,
        AccountHealth::Cooldown,
        "the quota on resume counts"
    );
    let runs: Vec<String> = seen
        .lock()
        .unwrap()
        .runs
        .iter()
        .map(|(a, _)| a.clone())
        .collect();
    assert_eq!(runs, ["a0", "a1"]);
}

/// Turns that all find an account waiting for new credentials share one refresh: the first
/// renews them, the others wait for it and go ahead on the renewed account.
#[tokio::test]
async fn concurrent_turns_share_one_refresh() {
    use std::sync::atomic::Ordering;
    let fake = FakeUpstream::new(|_, _| text_turn("ok"));
    fake.refresh_ok.store(true, Ordering::SeqCst);
    let refreshes = Arc::clone(&fake.refreshes);
    let clock = cursor_connect::classify::ManualClock::new(std::time::Instant::now());
    let account = Account::new(
        AccountConfig::named("a0"),
        Secret::new("t"),
        "http://127.0.0.1:1",
    );
    let pool = Arc::new(Pool::with_clock(vec![account], clock.clone()));
    let advice = Advice::new().with_refresh_credentials(true);
    pool.record_failure(&pool.get("a0").unwrap(), Category::Unauthenticated, &advice);
    clock.advance(Duration::from_secs(6));
    let e = Engine::new(Arc::new(fake), pool, EngineConfig::default());
    let turns = (0..4).map(|i| {
        let e = Arc::clone(&e);
        tokio::spawn(
            async move { drain(e.start("k", &user(&format!("t{i}"))).await.unwrap()).await },
        )
    });
    for t in futures_util::future::join_all(turns).await {
        assert!(matches!(t.unwrap().last(), Some(TurnItem::Done { .. })));
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        e.pool().status(e.pool().now())[0].state,
        AccountHealth::Healthy
    );
}
