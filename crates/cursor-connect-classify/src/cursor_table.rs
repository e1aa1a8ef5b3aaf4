//! Layer 1: Cursor's `aiserver.v1.ErrorDetails.Error` enum, every value decided on purpose.

use std::fmt;

use crate::advice::Category::{
    BadRequest, Canceled, ConversationTooLong, DeadlineExceeded, Internal, ModelUnavailable,
    OutdatedClient, PermissionDenied, QuotaExhausted, RateLimited, TokenExpired, Unauthenticated,
    UpstreamUnavailable,
};
use crate::advice::CooldownClass::{Long, Short};
use crate::rule::{Rule, push_rule_table};

/// What the table does with one `Error` enum value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The value carries no meaning of its own (unspecified, or a free-form message):
    /// the Connect code decides, Cursor's title, detail and `is_retryable` still apply.
    Defer,
    /// The value decides category, status and advice.
    Rule(Rule),
}

/// One row of the `Error` enum table.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorErrorRow {
    /// The wire number.
    pub value: i32,
    /// The proto name, e.g. `ERROR_NOT_LOGGED_IN`.
    pub name: &'static str,
    /// What the classifier does with it.
    pub decision: Decision,
    /// Why, in a few words (rendered into the docs).
    pub why: &'static str,
}

const fn row(value: i32, name: &'static str, rule: Rule, why: &'static str) -> CursorErrorRow {
    CursorErrorRow {
        value,
        name,
        decision: Decision::Rule(rule),
        why,
    }
}

const fn defer(value: i32, name: &'static str, why: &'static str) -> CursorErrorRow {
    CursorErrorRow {
        value,
        name,
        decision: Decision::Defer,
        why,
    }
}

const fn r(category: crate::Category, status: u16) -> Rule {
    Rule::new(category, status)
}

/// Every value of `aiserver.v1.ErrorDetails.Error` (numbers from the 2026 descriptor
/// extraction, including values removed from the newest enum), in wire order.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const CURSOR_ERRORS: [CursorErrorRow; 66] = [
    defer(0, "ERROR_UNSPECIFIED", "no information: the Connect code decides"),
    row(1, "ERROR_BAD_API_KEY", r(Unauthenticated, 401).other().disable(), "key is invalid; refreshing cannot fix it"),
    row(2, "ERROR_NOT_LOGGED_IN", r(Unauthenticated, 401).same().other().refresh(), "refresh, then retry"),
    row(3, "ERROR_INVALID_AUTH_ID", r(Unauthenticated, 401).same().other().refresh(), "refresh, then retry"),
    row(4, "ERROR_NOT_HIGH_ENOUGH_PERMISSIONS", r(PermissionDenied, 403).other().cool(Long), "this account's plan/role lacks it"),
    row(5, "ERROR_BAD_MODEL_NAME", r(ModelUnavailable, 404), "unknown model name"),
    row(6, "ERROR_USER_NOT_FOUND", r(Unauthenticated, 401).other().disable(), "account is gone"),
    row(7, "ERROR_FREE_USER_RATE_LIMIT_EXCEEDED", r(RateLimited, 429).other().cool(Short), "per-account rate limit"),
    row(8, "ERROR_PRO_USER_RATE_LIMIT_EXCEEDED", r(RateLimited, 429).other().cool(Short), "per-account rate limit"),
    row(9, "ERROR_FREE_USER_USAGE_LIMIT", r(QuotaExhausted, 429).other().cool(Long), "plan usage spent"),
    row(10, "ERROR_PRO_USER_USAGE_LIMIT", r(QuotaExhausted, 429).other().cool(Long), "plan usage spent"),
    row(11, "ERROR_AUTH_TOKEN_NOT_FOUND", r(Unauthenticated, 401).same().other().refresh(), "refresh, then retry"),
    row(12, "ERROR_AUTH_TOKEN_EXPIRED", r(TokenExpired, 401).same().other().refresh(), "refresh, then retry"),
    row(13, "ERROR_OPENAI", r(UpstreamUnavailable, 502).any(), "model provider failed"),
    row(14, "ERROR_OPENAI_RATE_LIMIT_EXCEEDED", r(RateLimited, 429).any().cool(Short), "provider-wide limit; back off"),
    row(15, "ERROR_OPENAI_ACCOUNT_LIMIT_EXCEEDED", r(QuotaExhausted, 429).other().cool(Long), "account's provider quota spent (removed in 2026)"),
    row(16, "ERROR_TASK_UUID_NOT_FOUND", r(BadRequest, 404), "unknown task (removed in 2026)"),
    row(17, "ERROR_TASK_NO_PERMISSIONS", r(PermissionDenied, 403), "task belongs to someone else (removed in 2026)"),
    row(18, "ERROR_AGENT_REQUIRES_LOGIN", r(Unauthenticated, 401).same().other().refresh(), "refresh, then retry"),
    row(19, "ERROR_AGENT_ENGINE_NOT_FOUND", r(ModelUnavailable, 404), "unknown engine (removed in 2026)"),
    row(20, "ERROR_MAX_TOKENS", r(ConversationTooLong, 400), "input exceeds the token limit"),
    row(21, "ERROR_USER_ABORTED_REQUEST", r(Canceled, 499), "canceled on purpose"),
    row(22, "ERROR_GENERIC_RATE_LIMIT_EXCEEDED", r(RateLimited, 429).other().cool(Short), "rate limit"),
    row(23, "ERROR_PRO_USER_ONLY", r(ModelUnavailable, 403).other(), "needs a paid plan; another account may have one"),
    row(24, "ERROR_API_KEY_NOT_SUPPORTED", r(PermissionDenied, 403).other(), "not allowed with API-key auth (removed in 2026)"),
    row(25, "ERROR_TIMEOUT", r(DeadlineExceeded, 504).any(), "server-side timeout"),
    row(26, "ERROR_SLASH_EDIT_FILE_TOO_LONG", r(BadRequest, 413), "input too large (removed in 2026)"),
    row(27, "ERROR_FILE_UNSUPPORTED", r(BadRequest, 415), "unsupported file (removed in 2026)"),
    row(28, "ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT", r(ModelUnavailable, 403), "reused as \"model not allowed / update required\" (E05)"),
    defer(29, "ERROR_CUSTOM_MESSAGE", "free-form message: the Connect code decides"),
    row(30, "ERROR_OUTDATED_CLIENT", r(OutdatedClient, 502), "our client version is rejected; no retry helps"),
    row(31, "ERROR_CLAUDE_IMAGE_TOO_LARGE", r(BadRequest, 413), "image too large"),
    row(32, "ERROR_GITGRAPH_NOT_FOUND", r(BadRequest, 404), "not found (removed in 2026)"),
    row(33, "ERROR_FILE_NOT_FOUND", r(BadRequest, 404), "not found"),
    row(34, "ERROR_API_KEY_RATE_LIMIT", r(RateLimited, 429).other().cool(Short), "per-key rate limit"),
    row(35, "ERROR_DEBOUNCED", r(RateLimited, 429).same(), "superseded by a newer request; no account fault"),
    row(36, "ERROR_BAD_REQUEST", r(BadRequest, 400), "request rejected"),
    row(37, "ERROR_REPOSITORY_SERVICE_REPOSITORY_IS_NOT_INITIALIZED", r(BadRequest, 400), "precondition not met"),
    row(38, "ERROR_UNAUTHORIZED", r(Unauthenticated, 401).other().refresh().cool(Long), "blocked (e.g. suspicious activity, E11); log in again"),
    row(39, "ERROR_NOT_FOUND", r(BadRequest, 404), "not found"),
    row(40, "ERROR_DEPRECATED", r(OutdatedClient, 502), "API retired for this client"),
    row(41, "ERROR_RESOURCE_EXHAUSTED", r(UpstreamUnavailable, 503).any(), "provider overloaded, not an account limit (E08)"),
    row(42, "ERROR_BAD_USER_API_KEY", r(Unauthenticated, 401).other().disable(), "the account's own provider key is bad"),
    row(43, "ERROR_CONVERSATION_TOO_LONG", r(ConversationTooLong, 400), "start a new or compacted conversation"),
    row(44, "ERROR_USAGE_PRICING_REQUIRED", r(QuotaExhausted, 429).other().cool(Long), "included usage spent"),
    row(45, "ERROR_USAGE_PRICING_REQUIRED_CHANGEABLE", r(QuotaExhausted, 429).other().cool(Long), "included usage spent; a fallback model may be offered"),
    row(46, "ERROR_GITHUB_NO_USER_CREDENTIALS", r(PermissionDenied, 403).other(), "account has no GitHub link"),
    row(47, "ERROR_GITHUB_USER_NO_ACCESS", r(PermissionDenied, 403).other(), "account's GitHub user lacks access"),
    row(48, "ERROR_GITHUB_APP_NO_ACCESS", r(PermissionDenied, 403).other(), "GitHub app lacks access"),
    row(49, "ERROR_GITHUB_MULTIPLE_OWNERS", r(BadRequest, 400), "ambiguous request"),
    row(50, "ERROR_RATE_LIMITED", r(RateLimited, 429).other().cool(Short), "rate limit (with is_retryable=false: long)"),
    row(51, "ERROR_RATE_LIMITED_CHANGEABLE", r(RateLimited, 429).other().cool(Short), "limit on this model; a fallback model may be offered"),
    defer(52, "ERROR_CUSTOM", "free-form message: the Connect code decides"),
    row(53, "ERROR_HOOKS_BLOCKED", r(PermissionDenied, 403), "a hook blocked this request"),
    row(54, "ERROR_SUSPICIOUS_USAGE_BLOCKED", r(PermissionDenied, 403).other().disable(), "account blocked"),
    row(55, "ERROR_EXTENSION_HOST_TIMEOUT", r(DeadlineExceeded, 504).any(), "timeout"),
    row(56, "ERROR_NETWORK_ERROR", r(UpstreamUnavailable, 503).any(), "backend network failure"),
    row(57, "ERROR_PROVIDER_ERROR", r(UpstreamUnavailable, 502).any(), "model provider failed (E07)"),
    row(58, "ERROR_MODEL_BLOCKED", r(ModelUnavailable, 403).other(), "model blocked for this account or team"),
    row(59, "ERROR_INTERNAL", r(Internal, 500).any(), "server bug, usually transient"),
    row(60, "ERROR_MAX_MODE_REQUIRED", r(ModelUnavailable, 403), "model needs Max mode in the request"),
    row(61, "ERROR_MODEL_NO_LONGER_SUPPORTED", r(ModelUnavailable, 404), "retired model; fallback offered (E02)"),
    row(62, "ERROR_PRICING_WARNING", r(QuotaExhausted, 429).other().cool(Long), "would incur charges; do not spend on this account"),
    row(63, "ERROR_SLOW_POOL", r(QuotaExhausted, 429).other().cool(Long), "fast requests spent"),
    row(64, "ERROR_UNSUPPORTED_REGION", r(PermissionDenied, 403), "our region is refused; every account shares it"),
    row(65, "ERROR_ACCOUNT_CLOSED", r(PermissionDenied, 403).other().disable(), "account closed"),
];

/// Looks up an `Error` enum value. `None` for values newer than this table.
pub fn cursor_error_row(value: i32) -> Option<&'static CursorErrorRow> {
    usize::try_from(value)
        .ok()
        .and_then(|i| CURSOR_ERRORS.get(i))
}

/// Looks up an `Error` enum value by its proto name (`ERROR_…`), as the `debug` JSON and the
/// `x-cursor-inference-request-error-type` metadata (without the prefix) carry it.
pub fn cursor_error_by_name(name: &str) -> Option<&'static CursorErrorRow> {
    let trimmed = name.trim();
    CURSOR_ERRORS.iter().find(|row| {
        row.name == trimmed
            || row
                .name
                .strip_prefix("ERROR_")
                .is_some_and(|bare| bare == trimmed)
    })
}

/// A Cursor `ErrorDetails.Error` value as seen on the wire (known or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CursorError(pub i32);

impl CursorError {
    /// The proto name, `None` for a value this table does not know.
    pub fn name(self) -> Option<&'static str> {
        cursor_error_row(self.0).map(|row| row.name)
    }
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ERROR_{}", self.0),
        }
    }
}

/// Renders [`CURSOR_ERRORS`] as the markdown table in the crate docs.
pub(crate) fn render_cursor_table(out: &mut String) {
    let rows = CURSOR_ERRORS.iter().map(|row| {
        let cells = match row.decision {
            Decision::Rule(rule) => rule.markdown_cells(),
            Decision::Defer => "*Connect code* | | | | | | | ".to_owned(),
        };
        (format!("{} | `{}`", row.value, row.name), cells, row.why)
    });
    push_rule_table(out, "# | Error", rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_wire_order_and_names_are_unique() {
        for (i, row) in CURSOR_ERRORS.iter().enumerate() {
            assert_eq!(usize::try_from(row.value).unwrap(), i, "{}", row.name);
            assert!(row.name.starts_with("ERROR_"));
            assert_eq!(
                cursor_error_by_name(row.name).map(|r| r.value),
                Some(row.value)
            );
        }
    }

    #[test]
    fn lookups_reject_unknown_values() {
        assert!(cursor_error_row(-1).is_none());
        assert!(cursor_error_row(66).is_none());
        assert_eq!(CursorError(66).to_string(), "ERROR_66");
        assert_eq!(CursorError(2).to_string(), "ERROR_NOT_LOGGED_IN");
        assert_eq!(
            cursor_error_by_name("PROVIDER_ERROR").map(|r| r.value),
            Some(57)
        );
        assert!(cursor_error_by_name("ERROR_").is_none());
        assert!(cursor_error_by_name("").is_none());
    }

    #[test]
    fn confirmed_numbers_from_captures() {
        for (n, name) in [
            (2, "ERROR_NOT_LOGGED_IN"),
            (28, "ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT"),
            (29, "ERROR_CUSTOM_MESSAGE"),
            (50, "ERROR_RATE_LIMITED"),
            (61, "ERROR_MODEL_NO_LONGER_SUPPORTED"),
            (9, "ERROR_FREE_USER_USAGE_LIMIT"),
            (10, "ERROR_PRO_USER_USAGE_LIMIT"),
            (25, "ERROR_TIMEOUT"),
        ] {
            assert_eq!(CursorError(n).name(), Some(name));
        }
    }
}
