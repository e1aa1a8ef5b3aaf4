//! The engine: one caller request, end to end: conversation lookup, account choice, transparent retry before
//! the first byte, the event pump, and turns parked while the caller runs tools.

pub mod pool;
pub mod session;
#[cfg(test)]
mod tests;
pub mod turn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use self::pool::{Account, Pool};
use self::session::{CheckpointStore, conversation_id};
use self::turn::Turn;
use crate::api::error::ApiError;
use crate::upstream::{
    FailureAdvice, TokenUsage, ToolCall, ToolOutput, TurnRequest, UpEvent, Upstream, UpstreamError,
    UpstreamRun,
};

/// Why a turn's output ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model finished.
    EndTurn,
    /// The model waits for tool results.
    ToolUse,
}

/// What the API front ends render.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnItem {
    /// Assistant text.
    Text(String),
    /// Reasoning text.
    Thinking(String),
    /// End of the reasoning block.
    ThinkingDone,
    /// A tool call.
    ToolCall(ToolCall),
    /// The output is complete.
    Done {
        /// Why.
        stop: Stop,
        /// Token counters.
        usage: TokenUsage,
    },
    /// The turn failed after output began (or before, for non-streaming callers).
    Failed(ApiError),
}

/// Engine tunables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Attempts per request before the error reaches the caller.
    pub max_attempts: u32,
    /// How long a parked turn waits for the caller's tool results.
    pub tool_wait_timeout: Duration,
    /// How long to wait for more tool calls after one arrives before ending the response.
    pub tool_batch_window: Duration,
    /// Deadline for the first content event of a turn.
    pub first_event_timeout: Duration,
    /// Deadline between two events of a running turn.
    pub idle_timeout: Duration,
    /// Checkpoint lifetime.
    pub checkpoint_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            tool_wait_timeout: Duration::from_secs(300),
            tool_batch_window: Duration::from_millis(30),
            first_event_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(300),
            checkpoint_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// Most turns parked at once; past it the oldest is cancelled.
const MAX_PARKED: usize = 4096;
/// Items buffered between the pump and the HTTP writer.
const CHANNEL_DEPTH: usize = 64;

/// Which conversation a turn belongs to, on which account, and how many caller messages the
/// request that produced it had (a checkpoint only fits a later request with more messages).
#[derive(Debug, Clone)]
struct TurnKey {
    conv: String,
    account: String,
    covered: usize,
}

#[derive(Debug)]
struct Parked {
    run: Box<dyn UpstreamRun>,
    account: String,
    call_ids: Vec<String>,
    stash: Option<UpEvent>,
    since: Instant,
}

/// The request engine shared by all handlers.
#[derive(Debug)]
pub struct Engine {
    upstream: Arc<dyn Upstream>,
    pool: Arc<Pool>,
    checkpoints: CheckpointStore,
    parked: Mutex<HashMap<String, Parked>>,
    cfg: EngineConfig,
}

fn short(conv: &str) -> &str {
    &conv[..conv.len().min(8)]
}

impl Engine {
    /// An engine over `upstream` and `pool`; spawns the reaper for abandoned tool waits.
    pub fn new(upstream: Arc<dyn Upstream>, pool: Arc<Pool>, cfg: EngineConfig) -> Arc<Self> {
        let engine = Arc::new(Self {
            upstream,
            pool,
            checkpoints: CheckpointStore::new(cfg.checkpoint_ttl),
            parked: Mutex::new(HashMap::new()),
            cfg,
        });
        let period = (engine.cfg.tool_wait_timeout / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(5));
        tokio::spawn(reaper(Arc::downgrade(&engine), period));
        engine
    }

    /// The account pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The upstream.
    pub fn upstream(&self) -> &Arc<dyn Upstream> {
        &self.upstream
    }

    /// Turns currently waiting for tool results.
    pub fn parked_count(&self) -> usize {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Starts (or resumes) the turn for `req`. Returns once the first content event is in hand,
    /// so failures before that are retried on other accounts or returned as a plain HTTP error.
    pub async fn start(
        self: &Arc<Self>,
        caller_key: &str,
        req: &Turn,
    ) -> Result<mpsc::Receiver<TurnItem>, ApiError> {
        if req.messages.is_empty() {
            return Err(ApiError::bad_request("messages must not be empty"));
        }
        let conv = conversation_id(caller_key, req);
        let results = req.trailing_tool_results();
        let parked = self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&conv);
        if let Some(p) = parked {
            let answers_all = !results.is_empty()
                && p.call_ids
                    .iter()
                    .all(|id| results.iter().any(|r| &r.call_id == id));
            if answers_all {
                let account = p.account.clone();
                match self.resume(&conv, p, &results, req.messages.len()).await {
                    Ok(rx) => return Ok(rx),
                    Err(e) => {
                        // The classifier's advice drives the account's health here too, so the
                        // fresh attempt below does not go straight back to an exhausted account.
                        let cooldown = self
                            .pool
                            .get(&account)
                            .and_then(|a| self.pool.record_failure(a, e.category, &e.advice));
                        warn!(conversation = short(&conv), account = %account, error = %e,
                              cooldown_ms = cooldown.map(|d| d.as_millis() as u64),
                              "resuming the parked turn failed; starting afresh")
                    }
                }
            } else {
                info!(
                    conversation = short(&conv),
                    "request does not answer the parked tool calls; closing that turn"
                );
                let mut p = p;
                cancel_quietly(&mut p.run).await;
            }
        }
        self.fresh(&conv, req).await
    }

    /// [`Engine::start`] for callers that see nothing until the turn is complete (non-streaming
    /// responses): the turn is run to its end before anything is returned, so a retryable
    /// failure after upstream output began is still invisible to the caller and is retried
    /// (at most `max_attempts` turns). The returned channel holds the whole turn.
    pub async fn start_complete(
        self: &Arc<Self>,
        caller_key: &str,
        req: &Turn,
    ) -> Result<mpsc::Receiver<TurnItem>, ApiError> {
        let mut attempt = 1;
        loop {
            let mut rx = self.start(caller_key, req).await?;
            let mut items = Vec::new();
            while let Some(item) = rx.recv().await {
                let end = matches!(item, TurnItem::Done { .. } | TurnItem::Failed(_));
                items.push(item);
                if end {
                    break;
                }
            }
            if let Some(TurnItem::Failed(e)) = items.last()
                && e.retryable
                && attempt < self.cfg.max_attempts
            {
                attempt += 1;
                warn!(status = e.status.as_u16(), category = %e.category, attempt,
                      "turn failed before the caller saw any of it; retrying");
                continue;
            }
            let (tx, out) = mpsc::channel(items.len().max(1));
            for item in items {
                // Capacity is the item count: never full.
                let _ = tx.try_send(item);
            }
            return Ok(out);
        }
    }

    async fn resume(
        self: &Arc<Self>,
        conv: &str,
        mut p: Parked,
        results: &[ToolOutput],
        covered: usize,
    ) -> Result<mpsc::Receiver<TurnItem>, UpstreamError> {
        debug!(
            conversation = short(conv),
            calls = p.call_ids.len(),
            "resuming parked turn with tool results"
        );
        for id in &p.call_ids {
            if let Some(r) = results.iter().find(|r| &r.call_id == id) {
                timeout(self.cfg.idle_timeout, p.run.respond(r.clone()))
                    .await
                    .map_err(|_| timeout_error("sending tool result"))??;
            }
        }
        let mut pre = Vec::new();
        if let Some(ev) = p.stash.take() {
            pre.push(ev);
        } else {
            self.prefetch(&mut *p.run, &mut pre).await?;
        }
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let key = TurnKey {
            conv: conv.to_owned(),
            account: p.account,
            covered,
        };
        tokio::spawn(Arc::clone(self).pump(p.run, key, pre, tx));
        Ok(rx)
    }

    async fn fresh(
        self: &Arc<Self>,
        conv: &str,
        req: &Turn,
    ) -> Result<mpsc::Receiver<TurnItem>, ApiError> {
        let mut excluded: Vec<String> = Vec::new();
        let mut last: Option<UpstreamError> = None;
        for attempt in 1..=self.cfg.max_attempts {
            let now = self.pool.now();
            // A checkpoint covers the conversation up to the request that produced it; a request
            // with no more messages than that (a regenerate or an edit) cannot build on it.
            let saved = self
                .checkpoints
                .get(conv, now)
                .filter(|(_, _, covered)| req.messages.len() > *covered)
                .map(|(cp, account, _)| (cp, account));
            let pick = match self
                .pool
                .pick(saved.as_ref().map(|(_, a)| a.as_str()), &excluded, now)
            {
                Ok(p) => p,
                Err(e) => return Err(ApiError::no_account(e, last.as_ref())),
            };
            let account = pick.account;
            if pick.needs_refresh && !self.refresh(account).await {
                excluded.push(account.name().to_owned());
                continue;
            }
            let (checkpoint, user_text) = match saved {
                Some((cp, owner)) if owner == account.name() => (Some(cp), req.latest_turn_text()),
                Some((_, owner)) => {
                    debug!(conversation = short(conv), from = %owner, to = account.name(), "checkpoint belongs to another account; flattening history");
                    self.checkpoints.remove(conv);
                    (None, req.flattened_text())
                }
                None => (None, req.flattened_text()),
            };
            let request = TurnRequest {
                model: req.model.clone(),
                user_text,
                system_prompt: req.effective_system(),
                tools: req.effective_tools(),
                conversation_id: conv.to_owned(),
                checkpoint,
                images: req.latest_images(),
                thinking: req.thinking,
            };
            match self.open(account, request).await {
                Ok((run, pre)) => {
                    self.pool.record_success(account);
                    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                    let key = TurnKey {
                        conv: conv.to_owned(),
                        account: account.name().to_owned(),
                        covered: req.messages.len(),
                    };
                    tokio::spawn(Arc::clone(self).pump(run, key, pre, tx));
                    return Ok(rx);
                }
                Err(e) => {
                    let cooldown = self.pool.record_failure(account, e.category, &e.advice);
                    warn!(
                        conversation = short(conv), account = account.name(), attempt, status = e.status.as_u16(),
                        code = e.code, category = %e.category, retry_other = e.advice.retry_other_account, retry_same = e.advice.retry_same_account,
                        refresh = e.advice.refresh_credentials, cooldown_ms = cooldown.map(|d| d.as_millis() as u64),
                        message = %e.message, "upstream attempt failed"
                    );
                    if !e.retryable() {
                        return Err(ApiError::from(&e));
                    }
                    if !e.advice.retry_same_account || cooldown.is_some() {
                        excluded.push(account.name().to_owned());
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.map_or_else(
            || {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    "no upstream account available",
                )
            },
            |e| ApiError::from(&e),
        ))
    }

    /// Refreshes an account's credentials; false when it stays unusable.
    async fn refresh(&self, account: &Account) -> bool {
        match timeout(Duration::from_secs(30), self.upstream.refresh(account)).await {
            Ok(Ok(true)) => {
                info!(account = account.name(), "credentials refreshed");
                self.pool.record_refreshed(account);
                true
            }
            outcome => {
                let why = match outcome {
                    Ok(Ok(_)) => "credentials unchanged".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "refresh timed out".to_owned(),
                };
                let advice = FailureAdvice {
                    refresh_credentials: true,
                    ..FailureAdvice::default()
                };
                let cooldown = self.pool.record_failure(account, "refresh_failed", &advice);
                warn!(account = account.name(), reason = %why, cooldown_ms = cooldown.map(|d| d.as_millis() as u64), "credential refresh failed");
                false
            }
        }
    }

    /// Opens a run and reads until its first content event.
    async fn open(
        &self,
        account: &Account,
        request: TurnRequest,
    ) -> Result<(Box<dyn UpstreamRun>, Vec<UpEvent>), UpstreamError> {
        let mut run = timeout(
            self.cfg.first_event_timeout,
            self.upstream.run(account, request),
        )
        .await
        .map_err(|_| timeout_error("opening the upstream turn"))??;
        let mut pre = Vec::new();
        if let Err(e) = self.prefetch(&mut *run, &mut pre).await {
            cancel_quietly(&mut run).await;
            return Err(e);
        }
        Ok((run, pre))
    }

    async fn prefetch(
        &self,
        run: &mut dyn UpstreamRun,
        pre: &mut Vec<UpEvent>,
    ) -> Result<(), UpstreamError> {
        let deadline = tokio::time::Instant::now() + self.cfg.first_event_timeout;
        loop {
            let ev = tokio::time::timeout_at(deadline, run.next_event())
                .await
                .map_err(|_| timeout_error("waiting for the first upstream event"))??;
            match ev {
                None => return Ok(()),
                Some(ev) => {
                    let content = matches!(
                        ev,
                        UpEvent::Text(_)
                            | UpEvent::Thinking(_)
                            | UpEvent::ToolCall(_)
                            | UpEvent::TurnEnded(_)
                    );
                    pre.push(ev);
                    if content {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn pump(
        self: Arc<Self>,
        mut run: Box<dyn UpstreamRun>,
        key: TurnKey,
        pre: Vec<UpEvent>,
        tx: mpsc::Sender<TurnItem>,
    ) {
        let mut pre = pre.into_iter();
        let mut tokens = 0u64;
        let mut calls: Vec<String> = Vec::new();
        loop {
            let next = match pre.next() {
                Some(ev) => Ok(Some(ev)),
                // While calls are collected, a short quiet spell means the batch is complete.
                None if !calls.is_empty() => {
                    match timeout(self.cfg.tool_batch_window, run.next_event()).await {
                        Ok(r) => r,
                        Err(_) => {
                            self.park(key, run, calls, None, tokens, &tx).await;
                            return;
                        }
                    }
                }
                None => timeout(self.cfg.idle_timeout, run.next_event())
                    .await
                    .unwrap_or_else(|_| Err(timeout_error("upstream went quiet"))),
            };
            let item = match next {
                Ok(Some(UpEvent::Text(t))) => TurnItem::Text(t),
                Ok(Some(UpEvent::Thinking(t))) => TurnItem::Thinking(t),
                Ok(Some(UpEvent::ThinkingDone)) => TurnItem::ThinkingDone,
                Ok(Some(UpEvent::TokenDelta(n))) => {
                    tokens = tokens.saturating_add(n);
                    continue;
                }
                Ok(Some(UpEvent::Checkpoint(cp))) => {
                    self.checkpoints
                        .put(&key.conv, &key.account, cp, key.covered, Instant::now());
                    continue;
                }
                Ok(Some(UpEvent::ToolCall(c))) => {
                    calls.push(c.id.clone());
                    TurnItem::ToolCall(c)
                }
                Ok(Some(ev)) if !calls.is_empty() => {
                    // Output after the calls without a result: replay it when the caller resumes.
                    self.park(key, run, calls, Some(ev), tokens, &tx).await;
                    return;
                }
                Ok(Some(UpEvent::TurnEnded(mut usage))) => {
                    if usage.output_tokens == 0 {
                        usage.output_tokens = tokens;
                    }
                    self.drain(&mut *run, &key).await;
                    let _ = self
                        .deliver(
                            &tx,
                            TurnItem::Done {
                                stop: Stop::EndTurn,
                                usage,
                            },
                        )
                        .await;
                    return;
                }
                Ok(None) => {
                    let usage = TokenUsage {
                        output_tokens: tokens,
                        ..TokenUsage::default()
                    };
                    let _ = self
                        .deliver(
                            &tx,
                            TurnItem::Done {
                                stop: Stop::EndTurn,
                                usage,
                            },
                        )
                        .await;
                    return;
                }
                Err(e) => {
                    let cooldown = self
                        .pool
                        .get(&key.account)
                        .and_then(|a| self.pool.record_failure(a, e.category, &e.advice));
                    warn!(
                        conversation = short(&key.conv), account = %key.account, status = e.status.as_u16(), code = e.code, category = %e.category,
                        cooldown_ms = cooldown.map(|d| d.as_millis() as u64), message = %e.message,
                        "upstream failed after output began; ending the caller's stream with an error event"
                    );
                    let _ = self
                        .deliver(&tx, TurnItem::Failed(ApiError::from(&e)))
                        .await;
                    return;
                }
            };
            if !self.deliver(&tx, item).await {
                debug!(
                    conversation = short(&key.conv),
                    "caller went away or stopped reading; cancelling the upstream turn"
                );
                cancel_quietly(&mut run).await;
                return;
            }
        }
    }

    /// Hands `item` to the caller's response; false when the caller went away or stopped reading
    /// for `idle_timeout` (a caller that keeps its connection open but never reads must not hold
    /// the upstream turn, or this task, forever).
    async fn deliver(&self, tx: &mpsc::Sender<TurnItem>, item: TurnItem) -> bool {
        tx.send_timeout(item, self.cfg.idle_timeout).await.is_ok()
    }

    /// After `turn_ended`, reads the clean end of the stream (bounded in time).
    async fn drain(&self, run: &mut dyn UpstreamRun, key: &TurnKey) {
        let conv = key.conv.as_str();
        for _ in 0..16 {
            match timeout(Duration::from_secs(5), run.next_event()).await {
                Ok(Ok(None)) => return,
                Ok(Ok(Some(UpEvent::Checkpoint(cp)))) => {
                    self.checkpoints
                        .put(conv, &key.account, cp, key.covered, Instant::now())
                }
                Ok(Ok(Some(_))) => continue,
                Ok(Err(e)) => {
                    warn!(conversation = short(conv), error = %e, "upstream failed after the turn ended");
                    return;
                }
                Err(_) => return,
            }
        }
    }

    async fn park(
        &self,
        key: TurnKey,
        run: Box<dyn UpstreamRun>,
        call_ids: Vec<String>,
        stash: Option<UpEvent>,
        tokens: u64,
        tx: &mpsc::Sender<TurnItem>,
    ) {
        debug!(
            conversation = short(&key.conv),
            calls = call_ids.len(),
            "turn parked until the caller sends tool results"
        );
        let evicted = {
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
            evicted.extend(map.insert(
                key.conv.clone(),
                Parked {
                    run,
                    account: key.account,
                    call_ids,
                    stash,
                    since: Instant::now(),
                },
            ));
            evicted
        };
        for mut p in evicted {
            cancel_quietly(&mut p.run).await;
        }
        let usage = TokenUsage {
            output_tokens: tokens,
            ..TokenUsage::default()
        };
        let _ = self
            .deliver(
                tx,
                TurnItem::Done {
                    stop: Stop::ToolUse,
                    usage,
                },
            )
            .await;
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
        for (conv, mut p) in expired {
            info!(conversation = short(&conv), account = %p.account, "tool results never came; closing the parked turn");
            cancel_quietly(&mut p.run).await;
        }
        self.checkpoints.sweep(now);
        n
    }
}

async fn reaper(engine: Weak<Engine>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        engine.reap(Instant::now()).await;
    }
}

async fn cancel_quietly(run: &mut Box<dyn UpstreamRun>) {
    let _ = timeout(Duration::from_secs(2), run.cancel()).await;
}

fn timeout_error(what: &str) -> UpstreamError {
    let mut e = UpstreamError::local(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
        format!("timed out {what}"),
    );
    e.advice.retry_other_account = true;
    e
}
