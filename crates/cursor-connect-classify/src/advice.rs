//! What a failure means ([`Category`]) and what to do about it ([`Advice`]).

use std::fmt;
use std::time::Duration;

/// The kind of failure, independent of the wire that carried it.
///
/// Deliberately `#[non_exhaustive]`: Cursor adds error kinds over time and a new category must not
/// break callers. Match the ones you act on and send the rest through a `_` arm (which should
/// usually behave like [`Category::Unknown`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Too many requests in a short window. Cool this account down briefly, try another one.
    RateLimited,
    /// A plan or usage quota is spent (monthly limits, usage pricing required). Long cooldown.
    QuotaExhausted,
    /// The credentials were rejected. Refresh them, then try again.
    Unauthenticated,
    /// The access token expired. Refresh it, then retry on the same account.
    TokenExpired,
    /// The account may not do this (plan, team policy, blocked account).
    PermissionDenied,
    /// The server rejects this client version, or no longer serves the service called (the
    /// legacy ChatService). Retrying anywhere fails the same way.
    OutdatedClient,
    /// The conversation no longer fits the model's context. Start a new one or compact it.
    ConversationTooLong,
    /// The model does not exist, is retired, or is not allowed for this request or plan.
    ModelUnavailable,
    /// The request itself is wrong; retrying it unchanged fails again.
    BadRequest,
    /// The backend or its model provider is temporarily unavailable or overloaded.
    UpstreamUnavailable,
    /// The connection failed: an HTTP/2 reset, GOAWAY, I/O error or protocol error.
    Transport,
    /// The call was canceled (by the caller, or by the user on the server side).
    Canceled,
    /// A deadline passed before the call finished.
    DeadlineExceeded,
    /// The server failed internally.
    Internal,
    /// Nothing typed was known about the failure.
    Unknown,
}

impl Category {
    /// Every category, in declaration order (used by the rendered docs and tests).
    pub const ALL: [Self; 15] = [
        Self::RateLimited,
        Self::QuotaExhausted,
        Self::Unauthenticated,
        Self::TokenExpired,
        Self::PermissionDenied,
        Self::OutdatedClient,
        Self::ConversationTooLong,
        Self::ModelUnavailable,
        Self::BadRequest,
        Self::UpstreamUnavailable,
        Self::Transport,
        Self::Canceled,
        Self::DeadlineExceeded,
        Self::Internal,
        Self::Unknown,
    ];

    /// A stable snake_case name, suitable for logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::Unauthenticated => "unauthenticated",
            Self::TokenExpired => "token_expired",
            Self::PermissionDenied => "permission_denied",
            Self::OutdatedClient => "outdated_client",
            Self::ConversationTooLong => "conversation_too_long",
            Self::ModelUnavailable => "model_unavailable",
            Self::BadRequest => "bad_request",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::Transport => "transport",
            Self::Canceled => "canceled",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the failure belongs to the account that made the call, so another account may
    /// succeed even when the server says the request itself is not retryable.
    pub const fn is_account_specific(self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::QuotaExhausted
                | Self::Unauthenticated
                | Self::TokenExpired
                | Self::PermissionDenied
        )
    }

    /// Whether this is an authentication failure (bad, missing or expired credentials).
    pub const fn is_auth(self) -> bool {
        matches!(self, Self::Unauthenticated | Self::TokenExpired)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cooldown classes the decision tables use. The tracker escalates from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CooldownClass {
    /// No cooldown: the failure says nothing bad about the account.
    None,
    /// [`SHORT_COOLDOWN`]: rate limits and HTTP/2 `ENHANCE_YOUR_CALM`.
    Short,
    /// [`LONG_COOLDOWN`]: spent quotas, blocked accounts that a person may fix.
    Long,
}

/// Base cooldown for rate limits: long enough for a per-minute window to roll over.
pub const SHORT_COOLDOWN: Duration = Duration::from_secs(60);
/// Base cooldown for spent quotas: an hour, escalated by the tracker up to its cap.
pub const LONG_COOLDOWN: Duration = Duration::from_secs(60 * 60);

impl CooldownClass {
    /// The base duration of this class, `None` for [`CooldownClass::None`].
    pub const fn duration(self) -> Option<Duration> {
        match self {
            Self::None => None,
            Self::Short => Some(SHORT_COOLDOWN),
            Self::Long => Some(LONG_COOLDOWN),
        }
    }

    /// The name used in the rendered tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "–",
            Self::Short => "short",
            Self::Long => "long",
        }
    }
}

/// What to do next about a failure.
///
/// All flags are independent. A retry on the same account is meant *after* the other advice
/// has been followed (wait [`retry_after`](Self::retry_after), refresh credentials, reconnect).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advice {
    retry_same_account: bool,
    retry_other_account: bool,
    retry_after: Option<Duration>,
    cooldown: Option<Duration>,
    refresh_credentials: bool,
    reconnect: bool,
    fallback_model: Option<String>,
    disable_account: bool,
}

impl Advice {
    /// Advice that says nothing: no retry, no cooldown. Use the `with_*` methods to build one
    /// by hand (for example to drive a [`CooldownTracker`](crate::CooldownTracker) in tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// A retry on the same account may succeed (after following the rest of the advice).
    pub fn retry_same_account(&self) -> bool {
        self.retry_same_account
    }

    /// A retry on a different account may succeed.
    pub fn retry_other_account(&self) -> bool {
        self.retry_other_account
    }

    /// Whether any retry (same or other account) is advised.
    pub fn is_retryable(&self) -> bool {
        self.retry_same_account || self.retry_other_account
    }

    /// How long the server asked us to wait, from `google.rpc.RetryInfo`, `retry-after`
    /// metadata or Cursor's `additionalInfo.retryAfter`. Clamped to [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// How long to keep this account out of rotation (the base; a
    /// [`CooldownTracker`](crate::CooldownTracker) escalates it on repeated failures).
    pub fn cooldown(&self) -> Option<Duration> {
        self.cooldown
    }

    /// Refresh the account's credentials before using it again.
    pub fn refresh_credentials(&self) -> bool {
        self.refresh_credentials
    }

    /// The connection or client handle is poisoned: drop it and reconnect before the next call.
    pub fn reconnect(&self) -> bool {
        self.reconnect
    }

    /// A model Cursor suggested instead of the requested one.
    pub fn fallback_model(&self) -> Option<&str> {
        self.fallback_model.as_deref()
    }

    /// The account cannot be used until a person fixes it (closed, blocked, bad key, unpaid).
    pub fn disable_account(&self) -> bool {
        self.disable_account
    }

    /// Sets [`retry_same_account`](Self::retry_same_account).
    pub fn with_retry_same_account(mut self, on: bool) -> Self {
        self.retry_same_account = on;
        self
    }

    /// Sets [`retry_other_account`](Self::retry_other_account).
    pub fn with_retry_other_account(mut self, on: bool) -> Self {
        self.retry_other_account = on;
        self
    }

    /// Sets [`retry_after`](Self::retry_after).
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// Sets [`cooldown`](Self::cooldown).
    pub fn with_cooldown(mut self, cooldown: Option<Duration>) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets [`refresh_credentials`](Self::refresh_credentials).
    pub fn with_refresh_credentials(mut self, on: bool) -> Self {
        self.refresh_credentials = on;
        self
    }

    /// Sets [`reconnect`](Self::reconnect).
    pub fn with_reconnect(mut self, on: bool) -> Self {
        self.reconnect = on;
        self
    }

    /// Sets [`fallback_model`](Self::fallback_model).
    pub fn with_fallback_model(mut self, model: Option<String>) -> Self {
        self.fallback_model = model;
        self
    }

    /// Sets [`disable_account`](Self::disable_account).
    pub fn with_disable_account(mut self, on: bool) -> Self {
        self.disable_account = on;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_are_unique_snake_case() {
        let mut names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        for (c, n) in Category::ALL.iter().zip(&names) {
            assert_eq!(c.to_string(), *n);
            assert!(
                n.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{n}"
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Category::ALL.len());
    }

    #[test]
    fn account_specific_categories() {
        let specific: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|c| c.is_account_specific())
            .collect();
        assert_eq!(
            specific,
            [
                Category::RateLimited,
                Category::QuotaExhausted,
                Category::Unauthenticated,
                Category::TokenExpired,
                Category::PermissionDenied
            ]
        );
    }
}
