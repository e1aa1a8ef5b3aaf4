//! Layer 4: a small string fallback, only for foreign errors that arrive as bare text.
//!
//! It applies when nothing typed is known: no Cursor details, code `unknown`, no transport
//! cause, no upstream HTTP status. Typical inputs are errors from another library flattened to
//! a string before they reached us. Patterns are matched case-insensitively as substrings, in
//! table order; the first match wins.

use crate::advice::Category::{
    Canceled, DeadlineExceeded, QuotaExhausted, RateLimited, Transport, Unauthenticated,
    UpstreamUnavailable,
};
use crate::advice::CooldownClass::{Long, Short};
use crate::rule::{RULE_HEADER, RULE_SEPARATOR, Rule};

/// One substring pattern.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRow {
    /// Lowercase substring to look for.
    pub pattern: &'static str,
    /// The decision.
    pub rule: Rule,
}

const fn m(pattern: &'static str, rule: Rule) -> TextRow {
    TextRow { pattern, rule }
}

const fn r(category: crate::Category, status: u16) -> Rule {
    Rule::new(category, status)
}

/// The patterns, most specific first.
#[rustfmt::skip] // one row per line: this is the table the docs render
pub const TEXT_PATTERNS: [TextRow; 14] = [
    m("refused stream", r(UpstreamUnavailable, 503).any()),
    m("enhance your calm", r(RateLimited, 429).other().cool(Short)),
    m("rst_stream", r(Transport, 502).any()),
    m("stream error", r(Transport, 502).any()),
    m("goaway", r(Transport, 502).any().reconnect()),
    m("connection reset", r(Transport, 502).any().reconnect()),
    m("broken pipe", r(Transport, 502).any().reconnect()),
    m("unexpected eof", r(Transport, 502).any().reconnect()),
    m("timed out", r(DeadlineExceeded, 504).any()),
    m("quota", r(QuotaExhausted, 429).other().cool(Long)),
    m("rate limit", r(RateLimited, 429).other().cool(Short)),
    m("too many requests", r(RateLimited, 429).other().cool(Short)),
    m("unauthenticated", r(Unauthenticated, 401).same().other().refresh().reconnect()),
    m("canceled", r(Canceled, 499)),
];

/// The first pattern found in `text` (case-insensitive), if any.
pub fn text_rule(text: &str) -> Option<&'static TextRow> {
    // Bound the work on a peer-sized string: the patterns are short, a message this long is
    // not a flattened library error anyway.
    const MAX_SCAN: usize = 4096;
    let mut end = text.len().min(MAX_SCAN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let lower = text[..end].to_ascii_lowercase();
    TEXT_PATTERNS.iter().find(|row| lower.contains(row.pattern))
}

/// Renders [`TEXT_PATTERNS`] as markdown.
pub(crate) fn render_text_table(out: &mut String) {
    out.push_str(&format!("| substring | {RULE_HEADER} |\n"));
    out.push_str(&format!("|---|{RULE_SEPARATOR}|\n"));
    for row in &TEXT_PATTERNS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            row.pattern,
            row.rule.markdown_cells()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_case_is_ignored() {
        let cases = [
            (
                "h2 protocol error: stream error received: refused stream before processing",
                Some(UpstreamUnavailable),
            ),
            ("RST_STREAM received with INTERNAL_ERROR", Some(Transport)),
            ("connection error received: GOAWAY", Some(Transport)),
            ("read tcp: connection reset by peer", Some(Transport)),
            ("operation timed out", Some(DeadlineExceeded)),
            ("You've reached the rate limit", Some(RateLimited)),
            ("monthly quota exceeded", Some(QuotaExhausted)),
            ("[unauthenticated] Error", Some(Unauthenticated)),
            ("something else", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                text_rule(text).map(|row| row.rule.category()),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn long_and_multibyte_text_is_safe() {
        let long = "é".repeat(5000) + "rate limit";
        assert!(text_rule(&long).is_none(), "beyond the scan bound");
        let short = "é".repeat(10) + "Rate Limit";
        assert!(text_rule(&short).is_some());
    }

    #[test]
    fn patterns_are_lowercase() {
        for row in &TEXT_PATTERNS {
            assert_eq!(row.pattern, row.pattern.to_ascii_lowercase());
        }
    }
}
