//! The pump: one task per running turn, moving upstream events to the caller's response,
//! saving checkpoints, parking the turn when the model waits for tools, and ending the
//! response with exactly one `Done` or `Failed`.

use cursor_connect::{Error, Event, Usage};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::{Engine, Stop, TurnItem, TurnKey, classification, short};
use crate::api::error::ApiError;
use crate::store::turn_counters;
use crate::upstream::UpstreamRun;

/// Most events read after `turn_ended` while waiting for the clean end of the stream.
const DRAIN_EVENTS: usize = 16;

/// A running turn and what the pump knows about it.
#[derive(Debug)]
pub(super) struct Pump {
    pub(super) run: Box<dyn UpstreamRun>,
    pub(super) key: TurnKey,
    /// Events read before the pump started (the first answer event among them).
    pre: std::vec::IntoIter<Event>,
    /// Output tokens counted so far (`token_delta`).
    pub(super) tokens: u64,
    /// Tool calls of this response, waiting for results.
    pub(super) calls: Vec<String>,
    /// Events held back for a later response: with one tool call per response, the calls
    /// after the first (and what followed them).
    pub(super) held: Vec<Event>,
    /// The latest checkpoint of this turn, saved once before the response ends (a turn sends
    /// several; only the last is ever used).
    pub(super) checkpoint: Option<bytes::Bytes>,
    pub(super) tx: mpsc::Sender<TurnItem>,
}

impl Pump {
    pub(super) fn new(
        run: Box<dyn UpstreamRun>,
        key: TurnKey,
        pre: Vec<Event>,
        tx: mpsc::Sender<TurnItem>,
    ) -> Self {
        Self {
            run,
            key,
            pre: pre.into_iter(),
            tokens: 0,
            calls: Vec::new(),
            held: Vec::new(),
            checkpoint: None,
            tx,
        }
    }
}

/// What one upstream event means for the caller's response.
enum Step {
    /// Send it on.
    Deliver(TurnItem),
    /// Bookkeeping only.
    Skip,
    /// Output after the calls without a result: park, and replay it when the caller resumes.
    Park(Event),
    /// The turn ended with these counters.
    End(Usage),
}

/// How the upstream side of a turn ended.
enum Next {
    Event(Event),
    /// The calls are complete (a short quiet spell after them).
    CallsComplete,
    End,
    Failed(Error),
}

impl Engine {
    /// Runs a turn to its end, its parking, or the caller's departure.
    pub(super) async fn pump(self: Arc<Self>, mut p: Pump) {
        loop {
            let event = match self.next(&mut p).await {
                Next::Event(ev) => ev,
                Next::CallsComplete => return self.park(p, None).await,
                Next::End => return self.finish(p, None).await,
                Next::Failed(e) => return self.fail(p, &e).await,
            };
            let item = match self.step(&mut p, event) {
                Step::Deliver(item) => item,
                Step::Skip => continue,
                Step::Park(ev) => return self.park(p, Some(ev)).await,
                Step::End(usage) => return self.finish(p, Some(usage)).await,
            };
            if !self.deliver(&p.tx, item).await {
                debug!(
                    conversation = short(&p.key.conv),
                    "caller went away or stopped reading; cancelling the upstream turn"
                );
                p.run.cancel().await;
                self.flush(&mut p).await;
                return;
            }
        }
    }

    /// The next upstream event. While calls are collected, a short quiet spell means the batch
    /// is complete; otherwise the client's stall timeout bounds the wait.
    async fn next(&self, p: &mut Pump) -> Next {
        let next = match p.pre.next() {
            Some(ev) => Ok(Some(ev)),
            None if !p.calls.is_empty() => {
                match timeout(self.cfg.tool_batch_window, p.run.next_event()).await {
                    Ok(r) => r,
                    Err(_) => return Next::CallsComplete,
                }
            }
            None => p.run.next_event().await,
        };
        match next {
            Ok(Some(ev)) => Next::Event(ev),
            Ok(None) => Next::End,
            Err(e) => Next::Failed(e),
        }
    }

    fn step(&self, p: &mut Pump, event: Event) -> Step {
        match event {
            Event::TextDelta(_) | Event::ThinkingDelta(_) | Event::ThinkingCompleted => {
                Step::Deliver(TurnItem::Event(event))
            }
            Event::ToolCall(_) if p.key.one_call && !p.calls.is_empty() => {
                p.held.push(event);
                Step::Skip
            }
            _ if !p.held.is_empty()
                && !matches!(event, Event::TokenDelta(_) | Event::Checkpoint(_)) =>
            {
                // Keep the order: what follows a held call is shown after it.
                p.held.push(event);
                Step::Skip
            }
            Event::ToolCall(ref c) => {
                p.calls.push(c.id.clone());
                Step::Deliver(TurnItem::Event(event))
            }
            Event::TokenDelta(n) => {
                p.tokens = p.tokens.saturating_add(n);
                Step::Skip
            }
            Event::Checkpoint(cp) => {
                p.checkpoint = Some(cp);
                Step::Skip
            }
            Event::TurnEnded(_) if !p.calls.is_empty() => Step::Park(event),
            Event::TurnEnded(usage) => Step::End(usage),
            Event::Notice(n) => {
                // Server notices (quota warnings, model switches) are not answer text.
                debug!(notice = %n, "upstream notice");
                Step::Skip
            }
            // Summaries, steps and tool activity are progress, not answer.
            _ => Step::Skip,
        }
    }

    /// The turn ended (with `turn_ended`'s counters, or with the stream): read the clean end
    /// of the stream after `turn_ended`, then `Done`.
    async fn finish(&self, mut p: Pump, turn_ended: Option<Usage>) {
        if turn_ended.is_some() {
            self.drain(&mut p).await;
        }
        let mut usage = turn_ended.unwrap_or_default();
        if usage.output_tokens == 0 {
            usage.output_tokens = p.tokens;
        }
        self.flush(&mut p).await;
        let k = &p.key;
        self.count(&k.caller, &k.account, &k.model, &turn_counters(&usage))
            .await;
        let done = TurnItem::Done {
            stop: Stop::EndTurn,
            usage,
        };
        let _ = self.deliver(&p.tx, done).await;
    }

    /// The upstream failed after output began: the caller's stream ends with the error.
    async fn fail(&self, mut p: Pump, e: &Error) {
        self.flush(&mut p).await;
        let c = classification(e);
        let cooldown = self.failed(&p.key, c.category(), c.advice()).await;
        warn!(
            conversation = short(&p.key.conv), account = %p.key.account,
            status = c.status().as_u16(), category = %c.category(),
            cooldown_ms = cooldown.map(|d| d.as_millis() as u64), error = %e,
            "upstream failed after output began; ending the caller's stream with an error event"
        );
        let failed = TurnItem::Failed(ApiError::upstream(e, &c));
        let _ = self.deliver(&p.tx, failed).await;
    }

    /// Saves the turn's latest checkpoint, if it has an unsaved one: before the caller's
    /// response ends, so an acknowledged turn's checkpoint survives a crash.
    pub(super) async fn flush(&self, p: &mut Pump) {
        if let Some(cp) = p.checkpoint.take() {
            self.save_checkpoint(&p.key, cp).await;
        }
    }

    /// After `turn_ended`, reads the clean end of the stream (bounded in events; the client's
    /// stall timeout bounds the time), keeping a late checkpoint.
    async fn drain(&self, p: &mut Pump) {
        let k = &p.key;
        for _ in 0..DRAIN_EVENTS {
            match p.run.next_event().await {
                Ok(None) => return,
                Ok(Some(Event::Checkpoint(cp))) => p.checkpoint = Some(cp),
                Ok(Some(_)) => {}
                Err(e) => {
                    warn!(conversation = short(&k.conv), error = %e,
                          "upstream failed after the turn ended");
                    return;
                }
            }
        }
    }
}
