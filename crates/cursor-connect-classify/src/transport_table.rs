//! Layer 3: transport failures, by their typed HTTP/2 reason and kind (never by message text).

use cursor_connect_frame::{Code, Reason, TransportCause, TransportKind};

use crate::advice::Category::{
    BadRequest, Canceled, DeadlineExceeded, RateLimited, Transport, UpstreamUnavailable,
};
use crate::advice::CooldownClass::Short;
use crate::rule::{RULE_HEADER, RULE_SEPARATOR, Rule, push_rule_table};

/// One HTTP/2 error code (RFC 9113 §7) in its two forms.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2ReasonRow {
    /// The error code (its RFC name is [`Reason::name`]).
    pub reason: Reason,
    /// Decision when it arrives in `RST_STREAM` (one stream failed, the connection lives).
    pub reset: Rule,
    /// Decision when it arrives in `GOAWAY` (the connection is going away).
    pub go_away: Rule,
    /// Why, in a few words.
    pub why: &'static str,
}

const fn t(category: crate::Category, status: u16) -> Rule {
    Rule::new(category, status)
}

const fn h2(reason: Reason, reset: Rule, go_away: Rule, why: &'static str) -> H2ReasonRow {
    H2ReasonRow {
        reason,
        reset,
        go_away,
        why,
    }
}

/// Every HTTP/2 error code defined by RFC 9113 §7. A GOAWAY always means "reconnect".
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const H2_REASONS: [H2ReasonRow; 14] = [
    h2(Reason::NO_ERROR, t(UpstreamUnavailable, 503).any(), t(UpstreamUnavailable, 503).any().reconnect(), "stream/connection ended early but gracefully: unavailable, not a protocol error"),
    h2(Reason::PROTOCOL_ERROR, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "protocol violation"),
    h2(Reason::INTERNAL_ERROR, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "peer's HTTP/2 layer failed"),
    h2(Reason::FLOW_CONTROL_ERROR, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "flow-control violation"),
    h2(Reason::SETTINGS_TIMEOUT, t(Transport, 502).any().reconnect(), t(Transport, 502).any().reconnect(), "connection-level by nature"),
    h2(Reason::STREAM_CLOSED, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "frame on a closed stream"),
    h2(Reason::FRAME_SIZE_ERROR, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "bad frame size"),
    h2(Reason::REFUSED_STREAM, t(UpstreamUnavailable, 503).any(), t(UpstreamUnavailable, 503).any().reconnect(), "not processed: always safe to retry"),
    h2(Reason::CANCEL, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "peer canceled (ours: `canceled`, 499)"),
    h2(Reason::COMPRESSION_ERROR, t(Transport, 502).any().reconnect(), t(Transport, 502).any().reconnect(), "HPACK state is connection-wide: reconnect"),
    h2(Reason::CONNECT_ERROR, t(Transport, 502).any(), t(Transport, 502).any().reconnect(), "tunnel failed"),
    h2(Reason::ENHANCE_YOUR_CALM, t(RateLimited, 429).other().cool(Short), t(RateLimited, 429).other().cool(Short).reconnect(), "peer throttles us: back off"),
    h2(Reason::INADEQUATE_SECURITY, t(Transport, 502).reconnect(), t(Transport, 502).reconnect(), "TLS setup refused; retrying repeats it"),
    h2(Reason::HTTP_1_1_REQUIRED, t(Transport, 502).reconnect(), t(Transport, 502).reconnect(), "peer wants HTTP/1.1; retrying repeats it"),
];

/// Decision for an HTTP/2 error code this table does not know, in reset form.
pub const UNKNOWN_REASON_RESET: Rule = t(Transport, 502).any();
/// Decision for an HTTP/2 error code this table does not know, in GOAWAY form.
pub const UNKNOWN_REASON_GO_AWAY: Rule = t(Transport, 502).any().reconnect();
/// Decision for a `CANCEL` we sent ourselves: the caller canceled.
pub const LOCAL_CANCEL: Rule = t(Canceled, 499);
/// Decision for an `ENHANCE_YOUR_CALM` *our* HTTP/2 library raised (the peer flooded us, e.g.
/// with empty DATA frames): the peer misbehaved, nobody asked us to slow down.
pub const LOCAL_ENHANCE_YOUR_CALM: Rule = t(Transport, 502).any().reconnect();

/// One failure kind without (or before) an HTTP/2 reason.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindRow {
    /// The kind's name as rendered.
    pub name: &'static str,
    /// The decision.
    pub rule: Rule,
    /// Why, in a few words.
    pub why: &'static str,
}

/// Decisions by [`TransportKind`] when no HTTP/2 reason is known.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const TRANSPORT_KINDS: [KindRow; 7] = [
    KindRow { name: "Reset", rule: t(Transport, 502).any(), why: "stream reset, reason unknown" },
    KindRow { name: "GoAway", rule: t(Transport, 502).any().reconnect(), why: "connection going away, reason unknown" },
    KindRow { name: "Io", rule: t(Transport, 502).any().reconnect(), why: "socket failed: the connection is dead" },
    KindRow { name: "Timeout", rule: t(DeadlineExceeded, 504).any().reconnect(), why: "connect/keepalive/idle timeout: connection suspect" },
    KindRow { name: "Protocol", rule: t(Transport, 502).any().reconnect(), why: "peer broke HTTP/2 or Connect framing" },
    KindRow { name: "Closed", rule: t(Transport, 502).any().reconnect(), why: "connection closed under the call" },
    KindRow { name: "(other)", rule: t(Transport, 502).any().reconnect(), why: "a kind newer than this table" },
];

/// One refinement for a cause *without* an HTTP/2 reason: the transport's kinds are coarse
/// (a caller's cancel and a closed connection share `Closed`; a call deadline and a keepalive
/// timeout share `Timeout`), and the code the transport chose from its own typed error
/// tells them apart.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeRefinementRow {
    /// The kind it applies to, `None` for any kind.
    pub kind: Option<TransportKind>,
    /// The transport's code.
    pub code: Code,
    /// The decision.
    pub rule: Rule,
    /// Why, in a few words.
    pub why: &'static str,
}

/// Refinements, tried in order before [`TRANSPORT_KINDS`] when the cause has no reason.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const TRANSPORT_CODE_REFINEMENTS: [CodeRefinementRow; 3] = [
    CodeRefinementRow { kind: None, code: Code::Canceled, rule: t(Canceled, 499), why: "the caller canceled; the connection is fine" },
    CodeRefinementRow { kind: None, code: Code::InvalidArgument, rule: t(BadRequest, 400), why: "our request could not be sent as given" },
    CodeRefinementRow { kind: Some(TransportKind::Timeout), code: Code::Unavailable, rule: t(Transport, 502).any().reconnect(), why: "keepalive/idle timeout: transport loss, not a call deadline" },
];

/// The decision for a typed transport cause, given the code the transport chose.
///
/// Without an HTTP/2 reason, [`TRANSPORT_CODE_REFINEMENTS`] is tried first, then
/// [`transport_rule`].
pub fn transport_rule_with_code(cause: &TransportCause, code: Code) -> Rule {
    if cause.reason.is_none()
        && let Some(row) = TRANSPORT_CODE_REFINEMENTS
            .iter()
            .find(|row| row.code == code && row.kind.is_none_or(|k| k == cause.kind))
    {
        return row.rule;
    }
    transport_rule(cause)
}

/// Looks up an HTTP/2 error code.
pub fn h2_reason_row(reason: Reason) -> Option<&'static H2ReasonRow> {
    usize::try_from(reason.code())
        .ok()
        .and_then(|i| H2_REASONS.get(i))
}

fn kind_index(kind: TransportKind) -> usize {
    match kind {
        TransportKind::Reset => 0,
        TransportKind::GoAway => 1,
        TransportKind::Io => 2,
        TransportKind::Timeout => 3,
        TransportKind::Protocol => 4,
        TransportKind::Closed => 5,
        _ => 6,
    }
}

/// The decision for a typed transport cause.
///
/// An HTTP/2 reason decides when present (in the form the kind says; kinds other than reset and
/// GOAWAY that carry a reason use the reset form, except that a dead connection still means
/// reconnect); otherwise the kind decides. A `CANCEL` we sent ourselves is a cancellation, an
/// `ENHANCE_YOUR_CALM` our library raised is a transport failure (not a rate limit).
pub fn transport_rule(cause: &TransportCause) -> Rule {
    let kind_rule = TRANSPORT_KINDS[kind_index(cause.kind)].rule;
    let Some(reason) = cause.reason else {
        return kind_rule;
    };
    if !cause.remote_initiated {
        match reason {
            Reason::CANCEL => return LOCAL_CANCEL,
            Reason::ENHANCE_YOUR_CALM => return LOCAL_ENHANCE_YOUR_CALM,
            _ => {}
        }
    }
    let go_away = matches!(cause.kind, TransportKind::GoAway);
    let rule = match (h2_reason_row(reason), go_away) {
        (Some(row), true) => row.go_away,
        (Some(row), false) => row.reset,
        (None, true) => UNKNOWN_REASON_GO_AWAY,
        (None, false) => UNKNOWN_REASON_RESET,
    };
    if kind_rule.advice().reconnect() && !matches!(cause.kind, TransportKind::Reset) {
        rule.reconnect()
    } else {
        rule
    }
}

/// Renders [`H2_REASONS`] and [`TRANSPORT_KINDS`] as markdown.
pub(crate) fn render_transport_tables(out: &mut String) {
    out.push_str(&format!("| code | name | form | {RULE_HEADER} | why |\n"));
    out.push_str(&format!("|---|---|---|{RULE_SEPARATOR}|---|\n"));
    for row in &H2_REASONS {
        for (form, rule) in [("RST_STREAM", row.reset), ("GOAWAY", row.go_away)] {
            out.push_str(&format!(
                "| {:#x} | `{}` | {form} | {} | {} |\n",
                row.reason.code(),
                row.reason,
                rule.markdown_cells(),
                row.why
            ));
        }
    }
    for (form, rule) in [
        ("RST_STREAM", UNKNOWN_REASON_RESET),
        ("GOAWAY", UNKNOWN_REASON_GO_AWAY),
    ] {
        out.push_str(&format!(
            "| other | | {form} | {} | code newer than RFC 9113 |\n",
            rule.markdown_cells()
        ));
    }
    out.push_str(&format!(
        "| 0x8 | `CANCEL` | sent by us | {} | the caller canceled |\n",
        LOCAL_CANCEL.markdown_cells()
    ));
    out.push_str(&format!(
        "| 0xb | `ENHANCE_YOUR_CALM` | raised by us | {} | the peer flooded us; nobody asked us to slow down |\n",
        LOCAL_ENHANCE_YOUR_CALM.markdown_cells()
    ));
    out.push('\n');
    let refinements = TRANSPORT_CODE_REFINEMENTS.iter().map(|row| {
        let kind = row
            .kind
            .map_or_else(|| "any".to_owned(), |k| format!("`{k:?}`"));
        let lead = format!("{kind} + `{}`", row.code.as_str());
        (lead, row.rule.markdown_cells(), row.why)
    });
    push_rule_table(out, "no reason: kind + transport's code", refinements);
    out.push('\n');
    let kinds = TRANSPORT_KINDS.iter().map(|row| {
        let name = format!("`{}`", row.name);
        (name, row.rule.markdown_cells(), row.why)
    });
    push_rule_table(out, "kind (no reason)", kinds);
}
