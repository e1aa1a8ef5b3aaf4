//! The layered decision: Cursor details, Connect code, transport cause, HTTP status, text.

use http::StatusCode;

use cursor_connect_frame::{Code, ConnectError, Origin};

use crate::advice::{Advice, Category};
use crate::code_table::{code_rule, http_rule};
use crate::cursor_table::{CursorError, Decision, cursor_error_row};
use crate::details::CursorDetails;
use crate::retry::retry_after;
use crate::rule::Rule;
use crate::text_table::text_rule;
use crate::transport_table::transport_rule_with_code;

/// What the caller knows about the call besides the error itself.
///
/// `#[non_exhaustive]` so more facts can be added: build it with [`Context::new`] and the
/// `with_*` methods (or `Context::default()` and field assignment).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Whether any response data (model output) already reached *our* caller. Once it has, a
    /// retry is no longer invisible, so [`Classification::transparent_retry_allowed`] is false
    /// unless the request provably never reached the server.
    pub response_started: bool,
    /// The HTTP status of the upstream response, when one was seen and the error may not carry
    /// it (the error's own [`ConnectError::http_status_seen`] is used otherwise).
    pub http_status: Option<StatusCode>,
    /// The call went to the legacy `aiserver.v1.ChatService` (`StreamUnifiedChatWithTools` and
    /// its SSE / poll forms), which Cursor is sunsetting: its sunset answers
    /// ([`LEGACY_CHAT_SUNSET_ERRORS`], or a title "Update Required") then classify as
    /// [`Category::OutdatedClient`] with [`LEGACY_CHAT_HINT`], never as a rate limit or a
    /// region or model problem.
    pub legacy_chat: bool,
}

/// The `ErrorDetails.Error` values Cursor answers the legacy ChatService with while sunsetting
/// it (reference/cursor-protocol.md §1.5): `ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT` (28, titled
/// "Update Required"), `ERROR_OUTDATED_CLIENT` (30), `ERROR_DEPRECATED` (40),
/// `ERROR_UNSUPPORTED_REGION` (64).
pub const LEGACY_CHAT_SUNSET_ERRORS: [i32; 4] = [28, 30, 40, 64];

/// What to tell the user when the legacy ChatService is refused.
pub const LEGACY_CHAT_HINT: &str = "Cursor no longer serves the legacy ChatService \
    (StreamUnifiedChatWithTools) to this client; use the agent service \
    (agent.v1.AgentService/Run) instead";

impl Context {
    /// Nothing reached the caller and no HTTP status is known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Context::response_started`].
    pub fn with_response_started(mut self, started: bool) -> Self {
        self.response_started = started;
        self
    }

    /// Sets [`Context::legacy_chat`].
    pub fn with_legacy_chat(mut self, legacy: bool) -> Self {
        self.legacy_chat = legacy;
        self
    }

    /// Sets [`Context::http_status`].
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.http_status = Some(status);
        self
    }
}

/// Which layer of the decision order made the decision.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Cursor's `aiserver.v1.ErrorDetails` (the `Error` enum table).
    CursorDetails,
    /// The Connect code the peer sent, or that a local error carries.
    ConnectCode,
    /// The typed transport cause (HTTP/2 reason and kind).
    Transport,
    /// The upstream HTTP status, for errors the peer sent no code for.
    HttpStatus,
    /// The string fallback for foreign text errors.
    Text,
}

/// The result of [`classify`]: what to tell the caller and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    status: StatusCode,
    category: Category,
    advice: Advice,
    transparent_retry_allowed: bool,
    layer: Layer,
    details: Option<CursorDetails>,
    hint: Option<&'static str>,
}

impl Classification {
    /// The HTTP status a proxy should return to its own caller.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The kind of failure.
    pub fn category(&self) -> Category {
        self.category
    }

    /// What to do next.
    pub fn advice(&self) -> &Advice {
        &self.advice
    }

    /// Whether the call may be retried without the caller noticing: the advice allows a retry
    /// and either nothing reached the caller yet or the request provably never reached the
    /// server (then it produced none of what the caller saw, so a replay duplicates nothing).
    pub fn transparent_retry_allowed(&self) -> bool {
        self.transparent_retry_allowed
    }

    /// The layer that decided.
    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// Cursor's error details, when the error carried them.
    pub fn cursor_details(&self) -> Option<&CursorDetails> {
        self.details.as_ref()
    }

    /// What the user should do, when the decision has a fixed answer (today: use the agent
    /// service instead of the sunset legacy ChatService, [`LEGACY_CHAT_HINT`]).
    pub fn hint(&self) -> Option<&'static str> {
        self.hint
    }

    /// Cursor's `Error` enum value, when the error carried one.
    pub fn cursor_error(&self) -> Option<CursorError> {
        self.details.as_ref().map(CursorDetails::error)
    }
}

/// Classifies one failure. Pure and cheap: no I/O, no clock, no allocation beyond the result.
///
/// Decision order (the first layer that has an answer decides):
/// 1. Cursor's `ErrorDetails` when present and its `Error` value is not a deferring one; the
///    details are read from the first decodable `aiserver.v1.ErrorDetails` value, else a
///    detail's `debug` JSON, else the `x-cursor-inference-request-error-type` metadata (see
///    [`CursorDetails::from_error`]);
/// 2. the Connect code, when the peer sent one (other than `unknown`);
/// 3. the typed transport cause;
/// 4. the upstream HTTP status, when the peer sent no code of its own;
/// 5. the Connect code of a local error (other than `unknown`);
/// 6. the string fallback on the message, for local `unknown` errors with nothing typed
///    (foreign errors flattened to text);
/// 7. otherwise `unknown`.
///
/// Then, whatever decided: `CustomErrorDetails.is_retryable` adjusts the retries, the server's
/// retry-after and Cursor's suggested model are attached, and a retry-safe transport cause
/// (REFUSED_STREAM, an unprocessed GOAWAY) allows a retry on another account, and on the same
/// one unless the decision carries a cooldown.
pub fn classify(err: &ConnectError, ctx: Context) -> Classification {
    classify_with_details(err, ctx, CursorDetails::from_error(err))
}

/// [`classify`] with Cursor details the caller read itself (for example with
/// [`CursorDetails::from_error_json`] from a raw body the frame crate could not parse, such as
/// an end-stream cut mid-JSON). `None` means the error has no Cursor details.
pub fn classify_with_details(
    err: &ConnectError,
    ctx: Context,
    details: Option<CursorDetails>,
) -> Classification {
    let sunset = ctx.legacy_chat && legacy_chat_sunset(details.as_ref());
    let (rule, layer) = if sunset {
        (
            Rule::new(Category::OutdatedClient, 502),
            Layer::CursorDetails,
        )
    } else {
        decide(
            err,
            details.as_ref(),
            ctx.http_status.or_else(|| err.http_status_seen()),
        )
    };
    let rule = rule.with_server_retryable(details.as_ref().and_then(CursorDetails::is_retryable));
    let retry_safe = err.transport_cause().is_some_and(|c| c.retry_safe);
    let mut advice = rule
        .advice()
        .with_retry_after(retry_after(err, details.as_ref()))
        .with_fallback_model(
            details
                .as_ref()
                .and_then(|d| d.fallback_model())
                .map(str::to_owned),
        );
    if retry_safe {
        // The request was never processed, so replaying it is safe anywhere; only a peer that
        // asked us to back off (a cooldown) keeps the same account out.
        let same = advice.cooldown().is_none();
        advice = advice.with_retry_other_account(true);
        if same {
            advice = advice.with_retry_same_account(true);
        }
    }
    let transparent_retry_allowed = advice.is_retryable() && (!ctx.response_started || retry_safe);
    Classification {
        status: rule.status(),
        category: rule.category(),
        advice,
        transparent_retry_allowed,
        layer,
        details,
        hint: sunset.then_some(LEGACY_CHAT_HINT),
    }
}

/// Whether Cursor's details are one of the legacy ChatService's sunset answers.
fn legacy_chat_sunset(details: Option<&CursorDetails>) -> bool {
    details.is_some_and(|d| {
        LEGACY_CHAT_SUNSET_ERRORS.contains(&d.error().0)
            || d.title().eq_ignore_ascii_case("update required")
    })
}

fn decide(
    err: &ConnectError,
    details: Option<&CursorDetails>,
    http_status: Option<StatusCode>,
) -> (Rule, Layer) {
    if let Some(row) = details.and_then(|d| cursor_error_row(d.error().0))
        && let Decision::Rule(rule) = row.decision
    {
        return (rule, Layer::CursorDetails);
    }
    let code = err.code();
    if err.is_wire() && code != Code::Unknown {
        return (code_rule(code), Layer::ConnectCode);
    }
    if let Some(cause) = err.transport_cause() {
        return (transport_rule_with_code(cause, code), Layer::Transport);
    }
    // A peer-sent code (even `unknown`) already produced the HTTP status: only a status the
    // peer gave without a code says more.
    if !err.is_wire()
        && let Some(rule) = http_status
            .filter(|s| !s.is_success())
            .and_then(|s| http_rule(s.as_u16()))
    {
        return (rule, Layer::HttpStatus);
    }
    if code != Code::Unknown {
        return (code_rule(code), Layer::ConnectCode);
    }
    // Only local errors are foreign text flattened into a `ConnectError`; text from the peer
    // (a message, an error page) is never matched.
    if matches!(err.origin(), Origin::Local)
        && let Some(row) = text_rule(err.message())
    {
        return (row.rule, Layer::Text);
    }
    (code_rule(code), Layer::ConnectCode)
}
