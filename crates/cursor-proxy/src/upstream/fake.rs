//! A scripted upstream for unit tests of the engine and translators.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use http::StatusCode;

use super::{
    FailureAdvice, ModelEntry, ToolOutput, TurnRequest, UpEvent, UpResult, Upstream, UpstreamError,
    UpstreamRun,
};
use crate::engine::pool::Account;

/// One scripted step of a run.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Ev(UpEvent),
    Fail(StatusCode, &'static str, FailureAdvice),
    /// Block until the caller responds to a tool call.
    AwaitResult,
}

pub(crate) fn quota() -> Step {
    let advice = FailureAdvice {
        retry_other_account: true,
        cooldown: Some(std::time::Duration::from_secs(60)),
        retry_after: Some(std::time::Duration::from_secs(60)),
        ..FailureAdvice::default()
    };
    Step::Fail(StatusCode::TOO_MANY_REQUESTS, "quota_exhausted", advice)
}

type Plan = dyn Fn(&str, &TurnRequest) -> Vec<Step> + Send + Sync;

/// Records of what the fake saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub runs: Vec<(String, TurnRequest)>,
    pub results: Vec<ToolOutput>,
    pub cancelled: usize,
}

pub(crate) struct FakeUpstream {
    plan: Box<Plan>,
    pub seen: Arc<Mutex<Seen>>,
    /// When set, `models` fails with 503.
    pub models_fail: Arc<AtomicBool>,
    /// What `refresh` answers (whether new credentials were obtained).
    pub refresh_ok: Arc<AtomicBool>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeUpstream")
    }
}

impl FakeUpstream {
    pub(crate) fn new(
        plan: impl Fn(&str, &TurnRequest) -> Vec<Step> + Send + Sync + 'static,
    ) -> Self {
        Self {
            plan: Box::new(plan),
            seen: Arc::default(),
            models_fail: Arc::default(),
            refresh_ok: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct FakeRun {
    steps: VecDeque<Step>,
    results: usize,
    seen: Arc<Mutex<Seen>>,
    failed: Option<(StatusCode, &'static str, FailureAdvice)>,
    cancelled: AtomicBool,
}

fn err(status: StatusCode, category: &'static str, advice: FailureAdvice) -> UpstreamError {
    let mut e = UpstreamError::local(status, category, format!("scripted {category}"));
    e.advice = advice;
    e
}

impl UpstreamRun for FakeRun {
    fn next_event(&mut self) -> BoxFuture<'_, UpResult<Option<UpEvent>>> {
        Box::pin(async move {
            loop {
                if let Some((s, c, a)) = &self.failed {
                    return Err(err(*s, c, a.clone()));
                }
                match self.steps.pop_front() {
                    None => return Ok(None),
                    Some(Step::Ev(e)) => return Ok(Some(e)),
                    Some(Step::Fail(s, c, a)) => self.failed = Some((s, c, a)),
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

    fn respond(&mut self, output: ToolOutput) -> BoxFuture<'_, UpResult<()>> {
        Box::pin(async move {
            self.seen.lock().unwrap().results.push(output);
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
        request: TurnRequest,
    ) -> BoxFuture<'a, UpResult<Box<dyn UpstreamRun>>> {
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
                failed: None,
                cancelled: AtomicBool::new(false),
            }) as Box<dyn UpstreamRun>)
        })
    }

    fn models<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, UpResult<Vec<ModelEntry>>> {
        Box::pin(async {
            if self.models_fail.load(Ordering::SeqCst) {
                return Err(err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    FailureAdvice::default(),
                ));
            }
            Ok(vec![ModelEntry {
                id: "fake-1".into(),
                display_name: "Fake 1".into(),
            }])
        })
    }

    fn refresh<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, UpResult<bool>> {
        Box::pin(async { Ok(self.refresh_ok.load(Ordering::SeqCst)) })
    }
}
