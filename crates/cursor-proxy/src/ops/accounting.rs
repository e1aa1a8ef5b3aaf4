//! The bookkeeping of one admitted turn: the running-turns gauge, the key's concurrent slot,
//! time to first token, duration, and the tokens it used (for the metrics; the engine records
//! usage in the store). The streamed path watches the items on their way to the caller.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::Ops;
use super::keys::Admission;
use crate::engine::TurnItem;

/// Buffered items between the watcher and the HTTP writer.
const TAP_DEPTH: usize = 16;

/// One admitted turn until its last item; dropping it releases the slot and the gauge.
#[derive(Debug)]
pub struct Running {
    ops: Arc<Ops>,
    /// Held only to keep the key's concurrent slot until the turn ends.
    _admission: Option<Admission>,
    route: &'static str,
    started: Instant,
    first_seen: bool,
}

impl Running {
    /// Counts the turn as running.
    pub fn new(
        ops: &Arc<Ops>,
        admission: Option<Admission>,
        route: &'static str,
        started: Instant,
    ) -> Self {
        ops.metrics.active_streams().inc();
        Self {
            ops: Arc::clone(ops),
            _admission: admission,
            route,
            started,
            first_seen: false,
        }
    }

    /// Looks at one item: the first answer event, the final usage.
    pub fn observe(&mut self, item: &TurnItem) {
        match item {
            TurnItem::Event(_) if !self.first_seen => {
                self.first_seen = true;
                self.ops
                    .metrics
                    .first_token(self.route, self.started.elapsed());
            }
            // The engine writes the turn's usage to the store (the one usage record); here
            // only the metrics count it.
            TurnItem::Done { usage, .. } => self.ops.metrics.tokens(usage),
            _ => {}
        }
    }

    /// Watches a streamed turn's items on their way to the caller; the turn stays counted as
    /// running until its last item is handed over (or the caller goes away).
    pub fn tap(mut self, mut inner: mpsc::Receiver<TurnItem>) -> mpsc::Receiver<TurnItem> {
        let (tx, rx) = mpsc::channel(TAP_DEPTH);
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                loop {
                    // A caller that goes away ends the watch at once: dropping `inner` is what
                    // tells the engine, as the response body's own receiver would have.
                    let item = tokio::select! {
                        item = inner.recv() => item,
                        () = tx.closed() => None,
                    };
                    let Some(item) = item else { break };
                    self.observe(&item);
                    let end = matches!(item, TurnItem::Done { .. } | TurnItem::Failed(_));
                    if tx.send(item).await.is_err() || end {
                        break;
                    }
                }
            }
            .instrument(span),
        );
        rx
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.ops.metrics.active_streams().dec();
        self.ops
            .metrics
            .duration(self.route, self.started.elapsed());
    }
}
