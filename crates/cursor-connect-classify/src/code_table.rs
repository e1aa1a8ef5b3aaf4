//! Layer 2: the Connect code, and the HTTP status when no peer-sent code exists.

use cursor_connect_frame::Code;

use crate::advice::Category::{
    BadRequest, Canceled, DeadlineExceeded, Internal, OutdatedClient, PermissionDenied,
    RateLimited, Unauthenticated, Unknown, UpstreamUnavailable,
};
use crate::advice::CooldownClass::Short;
use crate::rule::{Rule, push_rule_table};

/// One row of the Connect code table.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeRow {
    /// The code.
    pub code: Code,
    /// The decision. The status is the Connect table (connect-protocol §1.4) unchanged.
    pub rule: Rule,
    /// Why, in a few words.
    pub why: &'static str,
}

const fn c(code: Code, rule: Rule, why: &'static str) -> CodeRow {
    CodeRow { code, rule, why }
}

const fn r(category: crate::Category, status: u16) -> Rule {
    Rule::new(category, status)
}

/// Every Connect code, in gRPC numeric order.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const CODES: [CodeRow; 16] = [
    c(Code::Canceled, r(Canceled, 499), "canceled; not a fault of the account"),
    c(Code::Unknown, r(Unknown, 500), "nothing known: no blind retries"),
    c(Code::InvalidArgument, r(BadRequest, 400), "the request is wrong"),
    c(Code::DeadlineExceeded, r(DeadlineExceeded, 504).any(), "may succeed with more time"),
    c(Code::NotFound, r(BadRequest, 404), "the request names something missing"),
    c(Code::AlreadyExists, r(BadRequest, 409), "the request conflicts"),
    c(Code::PermissionDenied, r(PermissionDenied, 403).other(), "this account may not; another may"),
    c(Code::ResourceExhausted, r(RateLimited, 429).other().cool(Short), "limit on this account: cool down, switch"),
    c(Code::FailedPrecondition, r(BadRequest, 400), "state is wrong for this request"),
    c(Code::Aborted, r(UpstreamUnavailable, 409).any(), "concurrency conflict: retry"),
    c(Code::OutOfRange, r(BadRequest, 400), "the request is wrong"),
    c(Code::Unimplemented, r(OutdatedClient, 501), "the server lacks this method for our client"),
    c(Code::Internal, r(Internal, 500).any(), "server bug, usually transient"),
    c(Code::Unavailable, r(UpstreamUnavailable, 503).any(), "transient"),
    c(Code::DataLoss, r(Internal, 500), "data was lost; do not replay blindly"),
    c(Code::Unauthenticated, r(Unauthenticated, 401).same().other().refresh().reconnect(), "refresh and drop the handle: a stale session looks exactly like this (SDK bug report)"),
];

/// The decision for a Connect code.
pub fn code_rule(code: Code) -> Rule {
    CODES
        .iter()
        .find(|row| row.code == code)
        .map_or(UNLISTED_CODE, |row| row.rule)
}

/// Decision for a code newer than this table (`Code` is `#[non_exhaustive]`).
pub const UNLISTED_CODE: Rule = r(Unknown, 500);

/// One row of the HTTP status table, used for errors that carry no code from the peer
/// (a non-200 response without a usable Connect error body).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpRow {
    /// The HTTP status received from upstream.
    pub status: u16,
    /// The decision.
    pub rule: Rule,
    /// Why, in a few words.
    pub why: &'static str,
}

const fn h(status: u16, rule: Rule, why: &'static str) -> HttpRow {
    HttpRow { status, rule, why }
}

/// HTTP statuses that decide when the peer sent no Connect code. These refine connect-protocol
/// §1.5 (which maps 429 to `unavailable`): to a proxy a 429 is a rate limit on this account.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const HTTP_STATUSES: [HttpRow; 16] = [
    h(400, r(BadRequest, 400), "request rejected"),
    h(401, r(Unauthenticated, 401).same().other().refresh(), "credentials rejected"),
    h(403, r(PermissionDenied, 403).other(), "forbidden for this account"),
    h(404, r(OutdatedClient, 501), "no such RPC path: our client is out of date"),
    h(408, r(DeadlineExceeded, 504).any(), "upstream request timeout"),
    h(409, r(BadRequest, 409), "conflict"),
    h(412, r(BadRequest, 400), "precondition failed"),
    h(413, r(BadRequest, 413), "request too large"),
    h(415, r(BadRequest, 415), "content type refused"),
    h(429, r(RateLimited, 429).other().cool(Short), "rate limited"),
    h(431, r(BadRequest, 431), "headers too large"),
    h(500, r(Internal, 500).any(), "upstream failed"),
    h(502, r(UpstreamUnavailable, 503).any(), "gateway in front of Cursor failed"),
    h(503, r(UpstreamUnavailable, 503).any(), "unavailable"),
    h(504, r(DeadlineExceeded, 504).any(), "gateway timeout"),
    h(505, r(Internal, 500), "HTTP version refused; retrying repeats it"),
];

/// Looks up an upstream HTTP status; `None` when the table has no row for it.
pub fn http_rule(status: u16) -> Option<Rule> {
    HTTP_STATUSES
        .iter()
        .find(|row| row.status == status)
        .map(|row| row.rule)
}

/// Renders [`CODES`] and [`HTTP_STATUSES`] as markdown.
pub(crate) fn render_code_tables(out: &mut String) {
    let codes = CODES.iter().map(|row| {
        let code = format!("`{}`", row.code.as_str());
        (code, row.rule.markdown_cells(), row.why)
    });
    push_rule_table(out, "code", codes);
    out.push('\n');
    let statuses = HTTP_STATUSES
        .iter()
        .map(|row| (row.status, row.rule.markdown_cells(), row.why));
    push_rule_table(out, "upstream HTTP", statuses);
}
