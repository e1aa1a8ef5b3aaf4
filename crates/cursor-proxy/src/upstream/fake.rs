//! A scripted upstream for unit tests of the engine: the same seam and the same types as the
//! production upstream (`RunRequest` in, `Event`s and classified `cursor_connect::Error`s out).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cursor_connect::frame::{Code, ConnectError, TransportCause, TransportKind};
use cursor_connect::{Error, Event, ModelInfo, RunRequest, ToolResult};
use futures_util::future::BoxFuture;

use super::{Upstream, UpstreamRun};
use crate::engine::pool::Account;

/// One scripted step of a run.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Ev(Event),
    /// The stream fails with this error (classified as the client would).
    Fail(ConnectError),
    /// Block until the caller responds to a tool call.
    AwaitResult,
}

/// `resource_exhausted` from the server: rate limited, cool down, try another account.
pub(crate) fn quota() -> Step {
    Step::Fail(ConnectError::remote(
        Code::ResourceExhausted,
        "scripted quota",
    ))
}

/// `unauthenticated` from the server: refresh the credentials.
pub(crate) fn unauthenticated() -> Step {
    Step::Fail(ConnectError::remote(
        Code::Unauthenticated,
        "scripted unauthenticated",
    ))
}

/// `invalid_argument` from the server: the request is wrong, no retry anywhere.
pub(crate) fn bad_request() -> Step {
    Step::Fail(ConnectError::remote(
        Code::InvalidArgument,
        "scripted bad request",
    ))
}

/// A stream reset by the peer: a transport failure a fresh attempt may survive.
pub(crate) fn reset() -> Step {
    let cause = TransportCause::new(TransportKind::Reset).remote(true);
    Step::Fail(ConnectError::transport(
        Code::Internal,
        "scripted reset",
        cause,
    ))
}

/// `data_loss` from the server: final, never replayed.
pub(crate) fn final_error() -> Step {
    Step::Fail(ConnectError::remote(Code::DataLoss, "scripted final error"))
}

type Plan = dyn Fn(&str, &RunRequest) -> Vec<Step> + Send + Sync;

/// Records of what the fake saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub runs: Vec<(String, RunRequest)>,
    pub results: Vec<(String, ToolResult)>,
    pub cancelled: usize,
}

pub(crate) struct FakeUpstream {
    plan: Box<Plan>,
    pub seen: Arc<Mutex<Seen>>,
    /// When set, `models` fails with `unavailable`.
    pub models_fail: Arc<AtomicBool>,
    /// What `refresh` answers (whether new credentials were obtained).
    pub refresh_ok: Arc<AtomicBool>,
    /// How many times `refresh` was called.
    pub refreshes: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeUpstream")
    }
}

impl FakeUpstream {
    pub(crate) fn new(
        plan: impl Fn(&str, &RunRequest) -> Vec<Step> + Send + Sync + 'static,
    ) -> Self {
        Self {
            plan: Box::new(plan),
            seen: Arc::default(),
            models_fail: Arc::default(),
            refresh_ok: Arc::default(),
            refreshes: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct FakeRun {
    steps: VecDeque<Step>,
    results: usize,
    seen: Arc<Mutex<Seen>>,
    output_started: bool,
    failed: Option<Error>,
    cancelled: AtomicBool,
}

impl UpstreamRun for FakeRun {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<Event>, Error>> {
        Box::pin(async move {
            loop {
                if let Some(e) = &self.failed {
                    return Err(e.clone());
                }
                match self.steps.pop_front() {
                    None => return Ok(None),
                    Some(Step::Ev(e)) => {
                        self.output_started |= matches!(
                            e,
                            Event::TextDelta(_) | Event::ThinkingDelta(_) | Event::ToolCall(_)
                        );
                        return Ok(Some(e));
                    }
                    Some(Step::Fail(e)) => {
                        self.failed = Some(Error::from_connect_error(e, !self.output_started));
                    }
                    Some(Step::AwaitResult) => {
                        // Like the real service: nothing more until a result arrives. `respond`
                        // needs `&mut self`, so the engine drops this future before answering.
                        if self.results == 0 {
                            self.steps.push_front(Step::AwaitResult);
                            std::future::pending::<()>().await;
                        }
                        self.results -= 1;
                    }
                }
            }
        })
    }

    fn respond<'a>(
        &'a mut self,
        call_id: &'a str,
        result: ToolResult,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .results
                .push((call_id.to_owned(), result));
            self.results += 1;
            Ok(())
        })
    }

    fn cancel(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.cancelled.swap(true, Ordering::SeqCst) {
                self.seen.lock().unwrap().cancelled += 1;
            }
        })
    }
}

impl Upstream for FakeUpstream {
    fn run<'a>(
        &'a self,
        account: &'a Account,
        request: RunRequest,
    ) -> BoxFuture<'a, Result<Box<dyn UpstreamRun>, Error>> {
        Box::pin(async move {
            let steps = (self.plan)(account.name(), &request);
            self.seen
                .lock()
                .unwrap()
                .runs
                .push((account.name().to_owned(), request));
            Ok(Box::new(FakeRun {
                steps: steps.into(),
                results: 0,
                seen: Arc::clone(&self.seen),
                output_started: false,
                failed: None,
                cancelled: AtomicBool::new(false),
            }) as Box<dyn UpstreamRun>)
        })
    }

    fn models<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, Result<Vec<ModelInfo>, Error>> {
        Box::pin(async {
            if self.models_fail.load(Ordering::SeqCst) {
                let e = ConnectError::remote(Code::Unavailable, "scripted unavailable");
                return Err(Error::from_connect_error(e, true));
            }
            Ok(vec![ModelInfo::new("fake-1", "Fake 1")])
        })
    }

    fn refresh<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            // A refresh takes a moment, so that concurrent turns overlap it.
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(self.refresh_ok.load(Ordering::SeqCst))
        })
    }
}
