//! Turns parked while the caller runs the tools the model asked for: the upstream stream stays
//! open under the conversation id until the caller's next request brings the results, or the
//! tool-wait timeout closes it.

use std::time::Instant;

use cursor_connect::{Event, ToolResult, Usage};
use tracing::{debug, info};

use super::pump::Pump;
use super::{Engine, Stop, TurnItem, short};
use crate::upstream::UpstreamRun;

/// Most turns parked at once; past it the oldest is cancelled.
const MAX_PARKED: usize = 4096;

/// An open upstream turn waiting for tool results.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) run: Box<dyn UpstreamRun>,
    pub(super) account: String,
    pub(super) call_ids: Vec<String>,
    /// Events that came after the calls without a result, or calls held back for one call per
    /// response (replayed on resume).
    pub(super) held: Vec<Event>,
    since: Instant,
}

impl Parked {
    /// Whether `results` answer at least one parked call (matched by id; the calls they leave
    /// out are answered upstream with an error result on resume).
    pub(super) fn answered_by(&self, results: &[(String, ToolResult)]) -> bool {
        self.call_ids
            .iter()
            .any(|id| results.iter().any(|(call, _)| call == id))
    }

    /// Cancels the upstream turn.
    pub(super) async fn close(mut self) {
        self.run.cancel().await;
    }
}

impl Engine {
    /// Turns currently waiting for tool results.
    pub fn parked_count(&self) -> usize {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes the parked turn of `conv`, if any.
    pub(super) fn unpark(&self, conv: &str) -> Option<Parked> {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(conv)
    }

    /// Parks the pump's run under its conversation and ends the caller's response with
    /// `tool_use`.
    pub(super) async fn park(&self, mut p: Pump, stash: Option<Event>) {
        debug!(
            conversation = short(&p.key.conv),
            calls = p.calls.len(),
            "turn parked until the caller sends tool results"
        );
        self.flush(&mut p).await;
        let mut usage = Usage::default();
        usage.output_tokens = p.tokens;
        p.held.extend(stash);
        let parked = Parked {
            run: p.run,
            account: p.key.account,
            call_ids: p.calls,
            held: p.held,
            since: Instant::now(),
        };
        if let Some((me, _)) = &self.cfg.cluster {
            let r = self
                .store
                .set_owner(&p.key.conv, me, self.cfg.tool_wait_timeout)
                .await;
            if let Err(e) = r {
                debug!(error = %e, "cannot register the parked turn's owner");
            }
        }
        for old in self.insert_parked(p.key.conv, parked) {
            old.close().await;
        }
        let done = TurnItem::Done {
            stop: Stop::ToolUse,
            usage,
        };
        let _ = self.deliver(&p.tx, done).await;
    }

    /// Stores a parked turn; returns the ones it displaced (same conversation, or the oldest
    /// when full).
    fn insert_parked(&self, conv: String, parked: Parked) -> Vec<Parked> {
        let mut map = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = Vec::new();
        if map.len() >= MAX_PARKED
            && let Some(k) = map
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(k, _)| k.clone())
        {
            evicted.extend(map.remove(&k));
        }
        evicted.extend(map.insert(conv, parked));
        evicted
    }

    /// Cancels parked turns older than the tool-wait timeout; returns how many.
    pub async fn reap(&self, now: Instant) -> usize {
        let expired: Vec<(String, Parked)> = {
            let mut map = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<String> = map
                .iter()
                .filter(|(_, p)| {
                    now.saturating_duration_since(p.since) >= self.cfg.tool_wait_timeout
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|p| (k, p)))
                .collect()
        };
        let n = expired.len();
        for (conv, p) in expired {
            info!(conversation = short(&conv), account = %p.account,
                  "tool results never came; closing the parked turn");
            p.close().await;
        }
        n
    }
}
