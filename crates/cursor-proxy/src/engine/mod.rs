//! The engine: one caller request, end to end. Conversation lookup, account choice,
//! transparent retry before the first byte, the event pump, and turns parked while the caller
//! runs tools.

mod forward;
mod parked;
pub mod pool;
mod pump;
pub mod session;
mod state;
#[cfg(test)]
mod tests;
pub mod turn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use cursor_connect::classify::{Advice, Category, Classification, Context, classify};
use cursor_connect::frame::{Code, ConnectError};
use cursor_connect::{Error, Event, Usage};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::parked::Parked;
use self::pool::{Account, Pool};
use self::pump::Pump;
use self::session::conversation_id;
use self::state::StoreLog;
use self::turn::Turn;
use crate::api::error::ApiError;
use crate::store::{Limits, Store, caller_hash, memory::MemoryStore};
use crate::upstream::{Upstream, UpstreamRun};

/// Why a turn's output ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model finished.
    EndTurn,
    /// The model waits for tool results.
    ToolUse,
}

/// What the dialects render: the turn's answer events as `cursor-connect` produced them, then
/// exactly one of `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnItem {
    /// An answer event: [`Event::TextDelta`], [`Event::ThinkingDelta`],
    /// [`Event::ThinkingCompleted`] or [`Event::ToolCall`].
    Event(Event),
    /// The output is complete.
    Done {
        /// Why.
        stop: Stop,
        /// Token counters (Cursor's own, never estimates).
        usage: Usage,
    },
    /// The turn failed after output began (or before, for non-streaming callers).
    Failed(ApiError),
}

/// Requests in a row that may leave a conversation's tool calls unanswered (each closes the
/// parked turn and starts a new one); the next one is refused, so a client that keeps retrying
/// the same unanswered turn does not loop without end.
pub const MAX_UNANSWERED_REPEATS: u32 = 3;
/// Conversations whose unanswered count is kept at once.
const MAX_TRACKED_UNANSWERED: usize = 4096;

/// Engine tunables. Upstream deadlines are not here: they are the client's (its stall timeout,
/// see [`CursorUpstream::with_stall_timeout`](crate::upstream::cursor::CursorUpstream)).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Attempts per request before the error reaches the caller.
    pub max_attempts: u32,
    /// How long a parked turn waits for the caller's tool results.
    pub tool_wait_timeout: Duration,
    /// How long to wait for more tool calls after one arrives before ending the response.
    pub tool_batch_window: Duration,
    /// How long a caller may stop reading its response before it is treated as gone.
    pub caller_idle_timeout: Duration,
    /// Checkpoint lifetime.
    pub checkpoint_ttl: Duration,
    /// This instance's internal address and the secret shared by the instances of one shared
    /// store: parked tool turns are registered under it, and tool results that reach another
    /// instance are forwarded here.
    pub cluster: Option<(String, crate::ops::config::Secret)>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            tool_wait_timeout: Duration::from_secs(300),
            tool_batch_window: Duration::from_millis(30),
            caller_idle_timeout: Duration::from_secs(300),
            checkpoint_ttl: Duration::from_secs(30 * 60),
            cluster: None,
        }
    }
}

/// The result sent upstream for a parked tool call the caller's results left out.
pub const MISSING_RESULT: &str = "the client sent no result for this tool call";

/// Items buffered between the pump and the HTTP writer.
const CHANNEL_DEPTH: usize = 64;

/// Which conversation a turn belongs to, on which account, and how many caller messages the
/// request that produced it had (a checkpoint only fits a later request with more messages).
#[derive(Debug, Clone)]
struct TurnKey {
    conv: String,
    account: String,
    /// [`caller_hash`] of the caller's key (usage is counted by it).
    caller: String,
    /// The model requested.
    model: String,
    covered: usize,
    /// One tool call per response ([`Turn::one_tool_call`]).
    one_call: bool,
}

/// The request engine shared by all handlers.
#[derive(Debug)]
pub struct Engine {
    upstream: Arc<dyn Upstream>,
    pool: Arc<Pool>,
    store: Arc<dyn Store>,
    store_log: StoreLog,
    /// The upstream's store-backed KV blobs, settled before a checkpoint is saved.
    blobs: std::sync::OnceLock<Arc<crate::store::blobs::StoreBlobs>>,
    parked: Mutex<HashMap<String, Parked>>,
    /// Per conversation: how many requests in a row left its parked tool calls unanswered.
    unanswered: Mutex<HashMap<String, u32>>,
    /// Failed attempts after which a turn moved to another account (for `/metrics`).
    failovers: std::sync::atomic::AtomicU64,
    cfg: EngineConfig,
}

fn short(conv: &str) -> &str {
    &conv[..conv.len().min(8)]
}

/// The classifier's verdict on an upstream failure. `cursor-connect` classifies every error it
/// returns; an error from another source that carries none is classified from its text.
pub fn classification(e: &Error) -> Classification {
    e.classification().cloned().unwrap_or_else(|| {
        classify(
            &ConnectError::new(Code::Unknown, e.to_string()),
            Context::new(),
        )
    })
}

/// Whether `event` is part of the answer (what makes a turn visible to its caller).
fn is_answer(event: &Event) -> bool {
    matches!(
        event,
        Event::TextDelta(_) | Event::ThinkingDelta(_) | Event::ToolCall(_) | Event::TurnEnded(_)
    )
}

impl Engine {
    /// An engine over `upstream` and `pool` with its state in memory; spawns the reaper for
    /// abandoned tool waits.
    pub fn new(upstream: Arc<dyn Upstream>, pool: Arc<Pool>, cfg: EngineConfig) -> Arc<Self> {
        let store = Arc::new(MemoryStore::new(Limits {
            conversation_ttl: cfg.checkpoint_ttl,
            ..Limits::default()
        }));
        Self::with_store(upstream, pool, cfg, store)
    }

    /// An engine whose conversations, account state and usage live in `store`.
    pub fn with_store(
        upstream: Arc<dyn Upstream>,
        pool: Arc<Pool>,
        cfg: EngineConfig,
        store: Arc<dyn Store>,
    ) -> Arc<Self> {
        let engine = Arc::new(Self {
            upstream,
            pool,
            store,
            store_log: StoreLog::default(),
            blobs: std::sync::OnceLock::new(),
            parked: Mutex::new(HashMap::new()),
            unanswered: Mutex::new(HashMap::new()),
            failovers: std::sync::atomic::AtomicU64::new(0),
            cfg,
        });
        let period = (engine.cfg.tool_wait_timeout / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(5));
        tokio::spawn(reaper(Arc::downgrade(&engine), period));
        engine
    }

    /// Failed upstream attempts after which a turn moved to another account, since start.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The account pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The upstream.
    pub fn upstream(&self) -> &Arc<dyn Upstream> {
        &self.upstream
    }

    /// Starts (or resumes) the turn for `req`. Returns once the first answer event is in hand,
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
        let caller = caller_hash(caller_key);
        if let Some(p) = self.unpark(&conv) {
            self.disown(&conv).await;
            let results = req.trailing_tool_results();
            if p.answered_by(&results) {
                let key = self.key(&conv, &caller, &p.account, req);
                match self.resume(key, p, &results).await {
                    Ok(rx) => return Ok(rx),
                    // The classifier's advice drives the account's health here too, so the
                    // fresh attempt below does not go straight back to an exhausted account.
                    Err((key, e)) => self.resume_failed(&key, &e).await,
                }
            } else {
                info!(
                    conversation = short(&conv),
                    "request does not answer the parked tool calls; closing that turn"
                );
                let ids = p.call_ids.join(", ");
                p.close().await;
                if self.count_unanswered(&conv) > MAX_UNANSWERED_REPEATS {
                    self.forget_unanswered(&conv);
                    return Err(ApiError::bad_request(format!(
                        "the tool calls of this conversation went unanswered {} times in a row \
                         (last: {ids}); send tool results whose ids match the calls, or start a \
                         new conversation",
                        MAX_UNANSWERED_REPEATS + 1
                    )));
                }
                return self.fresh(&conv, &caller, req).await;
            }
        }
        self.forget_unanswered(&conv);
        self.fresh(&conv, &caller, req).await
    }

    /// The key of a turn of `conv` by `caller` on `account`.
    fn key(&self, conv: &str, caller: &str, account: &str, req: &Turn) -> TurnKey {
        TurnKey {
            conv: conv.to_owned(),
            account: account.to_owned(),
            caller: caller.to_owned(),
            model: req.model.clone(),
            covered: req.messages.len(),
            one_call: req.one_tool_call,
        }
    }

    /// Counts one more request that left `conv`'s tool calls unanswered; returns the count.
    fn count_unanswered(&self, conv: &str) -> u32 {
        let mut map = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED_UNANSWERED && !map.contains_key(conv) {
            // Bounded: past this many conversations the count restarts (a loop still ends,
            // one round later).
            map.clear();
        }
        let count = map.entry(conv.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    fn forget_unanswered(&self, conv: &str) {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(conv);
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
            let items = collect(self.start(caller_key, req).await?).await;
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

    /// Sends the caller's tool results on the parked turn and continues it.
    async fn resume(
        self: &Arc<Self>,
        key: TurnKey,
        mut p: Parked,
        results: &[(String, cursor_connect::ToolResult)],
    ) -> Result<mpsc::Receiver<TurnItem>, (TurnKey, Error)> {
        let conv = &key.conv;
        debug!(
            conversation = short(conv),
            calls = p.call_ids.len(),
            "resuming parked turn with tool results"
        );
        for id in &p.call_ids {
            let result = match results.iter().find(|(call, _)| call == id) {
                Some((_, result)) => result.clone(),
                None => {
                    info!(conversation = short(conv), call = %id,
                          "the caller sent no result for this tool call; answering it with an error");
                    cursor_connect::ToolResult::error(MISSING_RESULT)
                }
            };
            if let Err(e) = p.run.respond(id, result).await {
                return Err((key, e));
            }
        }
        let pre = if p.held.is_empty() {
            match prefetch(&mut *p.run).await {
                Ok(pre) => pre,
                Err(e) => return Err((key, e)),
            }
        } else {
            std::mem::take(&mut p.held)
        };
        Ok(self.spawn_pump(p.run, key, pre))
    }

    async fn resume_failed(&self, key: &TurnKey, e: &Error) {
        let c = classification(e);
        let cooldown = self.failed(key, c.category(), c.advice()).await;
        warn!(conversation = short(&key.conv), account = %key.account, error = %e,
              cooldown_ms = cooldown.map(|d| d.as_millis() as u64),
              "resuming the parked turn failed; starting afresh");
    }

    /// A new upstream turn, retried on other accounts while nothing reached the caller.
    async fn fresh(
        self: &Arc<Self>,
        conv: &str,
        caller: &str,
        req: &Turn,
    ) -> Result<mpsc::Receiver<TurnItem>, ApiError> {
        let mut excluded: Vec<String> = Vec::new();
        let mut last: Option<ApiError> = None;
        for attempt in 1..=self.cfg.max_attempts {
            match self.attempt(conv, caller, req, &mut excluded).await {
                Attempt::Started(rx) => return Ok(rx),
                Attempt::NoAccount(e) => return Err(ApiError::no_account(&e, last)),
                Attempt::Skipped => {}
                Attempt::Failed { account, error } => {
                    let verdict = classification(&error);
                    let e = ApiError::upstream(&error, &verdict);
                    let key = self.key(conv, caller, &account, req);
                    let cooldown = self
                        .failed(&key, verdict.category(), verdict.advice())
                        .await;
                    log_attempt(conv, &account, attempt, &error, &verdict, cooldown);
                    if !verdict.advice().is_retryable() {
                        return Err(e);
                    }
                    if !verdict.advice().retry_same_account() || cooldown.is_some() {
                        excluded.push(account);
                        if attempt < self.cfg.max_attempts {
                            self.failovers
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(ApiError::unavailable))
    }

    /// One attempt of [`Engine::fresh`]: pick an account, open the run, read to the first answer.
    async fn attempt(
        self: &Arc<Self>,
        conv: &str,
        caller: &str,
        req: &Turn,
        excluded: &mut Vec<String>,
    ) -> Attempt {
        // A checkpoint covers the conversation up to the request that produced it; a request
        // with no more messages than that (a regenerate or an edit) cannot build on it.
        let saved = self
            .saved(conv)
            .await
            .filter(|c| req.messages.len() > c.covered);
        let now = self.pool.now();
        let prefer = saved.as_ref().map(|c| c.account.as_str());
        let account = match self
            .pool
            .pick_in(req.account_group.as_deref(), prefer, excluded, now)
        {
            Ok(pick) if pick.needs_refresh && !self.refresh(&pick.account).await => {
                excluded.push(pick.account.name().to_owned());
                return Attempt::Skipped;
            }
            Ok(pick) => pick.account,
            Err(e) => return Attempt::NoAccount(e),
        };
        let account = &*account;
        let checkpoint = match saved {
            Some(c) if c.account == account.name() => Some(c.checkpoint),
            Some(c) => {
                state::log_rebind(conv, &c.account, account.name());
                self.forget(conv).await;
                None
            }
            None => None,
        };
        match self.open(account, req.run_request(conv, checkpoint)).await {
            Ok((run, pre)) => {
                self.succeeded(account).await;
                let key = self.key(conv, caller, account.name(), req);
                Attempt::Started(self.spawn_pump(run, key, pre))
            }
            Err(error) => Attempt::Failed {
                account: account.name().to_owned(),
                error,
            },
        }
    }

    /// Renews an account's credentials; false when it stays unusable.
    async fn refresh(&self, account: &Account) -> bool {
        // One refresh at a time per account: a turn that waited here while another refreshed
        // finds the account renewed and uses the new credentials.
        let _guard = account.refresh_guard().await;
        if !account.needs_refresh() {
            return true;
        }
        let outcome = self.upstream.refresh(account).await;
        if let Ok(true) = outcome {
            info!(account = account.name(), "credentials refreshed");
            self.pool.record_refreshed(account);
            return true;
        }
        let (category, advice, why) = match outcome {
            Err(e) => {
                let c = classification(&e);
                let advice = c.advice().clone().with_refresh_credentials(true);
                (c.category(), advice, e.to_string())
            }
            Ok(_) => (
                Category::Unauthenticated,
                Advice::new().with_refresh_credentials(true),
                "credentials unchanged".to_owned(),
            ),
        };
        let key = TurnKey {
            conv: String::new(),
            account: account.name().to_owned(),
            caller: String::new(),
            model: String::new(),
            covered: 0,
            one_call: false,
        };
        let cooldown = self.failed(&key, category, &advice).await;
        warn!(account = account.name(), reason = %why,
              cooldown_ms = cooldown.map(|d| d.as_millis() as u64), "credential refresh failed");
        false
    }

    /// Opens a run and reads until its first answer event (bounded by the client's stall
    /// timeout).
    async fn open(
        &self,
        account: &Account,
        request: cursor_connect::RunRequest,
    ) -> Result<(Box<dyn UpstreamRun>, Vec<Event>), Error> {
        let mut run = self.upstream.run(account, request).await?;
        match prefetch(&mut *run).await {
            Ok(pre) => Ok((run, pre)),
            Err(e) => {
                run.cancel().await;
                Err(e)
            }
        }
    }

    fn spawn_pump(
        self: &Arc<Self>,
        run: Box<dyn UpstreamRun>,
        key: TurnKey,
        pre: Vec<Event>,
    ) -> mpsc::Receiver<TurnItem> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        // The pump logs under the request's span (its request id), which `spawn` would drop.
        let pump = Arc::clone(self).pump(Pump::new(run, key, pre, tx));
        tokio::spawn(tracing::Instrument::instrument(
            pump,
            tracing::Span::current(),
        ));
        rx
    }

    /// Hands `item` to the caller's response; false when the caller went away or stopped
    /// reading for `caller_idle_timeout` (a caller that keeps its connection open but never
    /// reads must not hold the upstream turn, or this task, forever).
    async fn deliver(&self, tx: &mpsc::Sender<TurnItem>, item: TurnItem) -> bool {
        tx.send_timeout(item, self.cfg.caller_idle_timeout)
            .await
            .is_ok()
    }
}

/// The outcome of one [`Engine::attempt`].
enum Attempt {
    Started(mpsc::Receiver<TurnItem>),
    /// The account needed new credentials and could not get them.
    Skipped,
    NoAccount(pool::NoAccount),
    Failed {
        account: String,
        error: Error,
    },
}

fn log_attempt(
    conv: &str,
    account: &str,
    attempt: u32,
    e: &Error,
    c: &Classification,
    cooldown: Option<Duration>,
) {
    let a = c.advice();
    warn!(
        conversation = short(conv), account, attempt, status = c.status().as_u16(),
        code = e.connect_error().map(|c| c.code().as_str()), category = %c.category(),
        retry_other = a.retry_other_account(), retry_same = a.retry_same_account(),
        refresh = a.refresh_credentials(), cooldown_ms = cooldown.map(|d| d.as_millis() as u64),
        error = %e, "upstream attempt failed"
    );
}

/// Reads a run until its first answer event (or its end); returns what it read.
async fn prefetch(run: &mut dyn UpstreamRun) -> Result<Vec<Event>, Error> {
    let mut pre = Vec::new();
    while let Some(ev) = run.next_event().await? {
        let answer = is_answer(&ev);
        pre.push(ev);
        if answer {
            break;
        }
    }
    Ok(pre)
}

/// Every item of a turn, up to and including its last one.
pub(crate) async fn collect(mut rx: mpsc::Receiver<TurnItem>) -> Vec<TurnItem> {
    let mut items = Vec::new();
    while let Some(item) = rx.recv().await {
        let end = matches!(item, TurnItem::Done { .. } | TurnItem::Failed(_));
        items.push(item);
        if end {
            break;
        }
    }
    items
}

/// Reads the shared account state into the pool every `period` while the engine lives.
pub async fn sync_account_state(engine: Weak<Engine>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        engine.load_account_state().await;
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
