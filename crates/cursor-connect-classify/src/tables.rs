//! The decision tables, rendered as the markdown that the crate docs show.
//!
//! `doc/decision-tables.md` is included in the crate docs; a test renders the tables in code
//! with [`render_markdown`] and fails when the file differs, so code and docs cannot drift.

pub use crate::code_table::{
    CODES, CodeRow, HTTP_STATUSES, HttpRow, UNLISTED_CODE, code_rule, http_rule,
};
pub use crate::cursor_table::{
    CURSOR_ERRORS, CursorErrorRow, Decision, cursor_error_by_name, cursor_error_row,
};
pub use crate::rule::Rule;
pub use crate::text_table::{TEXT_PATTERNS, TextRow, text_rule};
pub use crate::transport_table::{
    CodeRefinementRow, H2_REASONS, H2ReasonRow, KindRow, LOCAL_CANCEL, LOCAL_ENHANCE_YOUR_CALM,
    TRANSPORT_CODE_REFINEMENTS, TRANSPORT_KINDS, UNKNOWN_REASON_GO_AWAY, UNKNOWN_REASON_RESET,
    h2_reason_row, transport_rule, transport_rule_with_code,
};

/// Renders every decision table as markdown, exactly as `doc/decision-tables.md` holds it.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("## Decision tables\n\n");
    out.push_str(
        "Generated from the tables in code by `tables::render_markdown()`; a test keeps this \
         section identical to the code.\n\
         Columns: *same/other acct* = retry on the same / another account is advised; \
         *cooldown* = base cooldown class (short = 60 s, long = 1 h; the tracker escalates); \
         *refresh* = refresh credentials first; *reconnect* = drop the connection or handle; \
         *disable* = out of rotation until a person fixes the account.\n\n",
    );
    out.push_str("### Layer 1: Cursor `ErrorDetails.Error`\n\n");
    out.push_str(
        "Applies when Cursor's details are known, read in this order: an \
         `aiserver.v1.ErrorDetails` detail whose `value` decodes; else the first `debug` JSON \
         (of an `ErrorDetails` or untyped detail) that names an `Error`; else the \
         `x-cursor-inference-request-error-type` metadata (a name only). Details the caller \
         read itself can be passed to `classify_with_details`. In every layer, \
         `CustomErrorDetails.is_retryable = false` clears the same-account retry unless \
         credentials are refreshed first, keeps the other-account retry only for \
         account-specific categories, and turns a short cooldown long; `true` allows both \
         retries (the same account only if the row does not disable it), except for \
         `outdated_client`, which every account shares and no retry fixes. A suggested model \
         (`additionalInfo.autoSwitchToModel` / `fallbackModel`, or a \"switch model\" \
         button) becomes the fallback model.\n\n",
    );
    crate::cursor_table::render_cursor_table(&mut out);
    out.push_str("\nValues above 65 (newer than this table) fall through to the Connect code.\n\n");
    out.push_str(
        "**Legacy ChatService.** With `Context::legacy_chat` set (a call to \
         `aiserver.v1.ChatService/StreamUnifiedChatWithTools` or its SSE / poll forms), the \
         sunset answers (`ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT` 28 titled \"Update Required\", \
         `ERROR_OUTDATED_CLIENT` 30, `ERROR_DEPRECATED` 40, `ERROR_UNSUPPORTED_REGION` 64, or \
         any error titled \"Update Required\") override this table: `outdated_client`, 502, no \
         retry, and `Classification::hint` tells the user to use the agent service.\n\n",
    );
    out.push_str("### Layer 2: Connect code, and upstream HTTP status without a code\n\n");
    out.push_str(
        "The code decides when the peer sent it; otherwise a transport cause decides first, \
         then the upstream HTTP status (non-2xx rows below; only when the peer sent no code of \
         its own), then the code of a local error.\n\n",
    );
    crate::code_table::render_code_tables(&mut out);
    out.push_str("\n### Layer 3: transport cause (HTTP/2 reason, else kind)\n\n");
    out.push_str(
        "A cause marked retry-safe (REFUSED_STREAM, a GOAWAY whose last-stream-id is below ours) \
         always allows a retry on another account and a transparent retry, and a retry on the \
         same account unless the row has a cooldown. Without a reason, the refinements by the \
         transport's own code (which tells apart what its kinds lump together) come first, \
         then the kind.\n\n",
    );
    crate::transport_table::render_transport_tables(&mut out);
    out.push_str("\n### Layer 4: text fallback (local `unknown` errors only)\n\n");
    out.push_str(
        "Case-insensitive substring match on the message of a *local* error (origin `Local`) \
         with code `unknown` and nothing typed, first match wins, first 4 KiB only. Never \
         applied to text the peer sent.\n\n",
    );
    crate::text_table::render_text_table(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cursor_connect_frame::Reason;

    fn every_rule() -> Vec<Rule> {
        let mut rules: Vec<Rule> = CURSOR_ERRORS
            .iter()
            .filter_map(|r| match r.decision {
                Decision::Rule(rule) => Some(rule),
                Decision::Defer => None,
            })
            .collect();
        rules.extend(CODES.iter().map(|r| r.rule));
        rules.extend(HTTP_STATUSES.iter().map(|r| r.rule));
        rules.extend(H2_REASONS.iter().flat_map(|r| [r.reset, r.go_away]));
        rules.extend(TRANSPORT_KINDS.iter().map(|r| r.rule));
        rules.extend(TRANSPORT_CODE_REFINEMENTS.iter().map(|r| r.rule));
        rules.extend(TEXT_PATTERNS.iter().map(|r| r.rule));
        rules.extend([
            UNLISTED_CODE,
            UNKNOWN_REASON_RESET,
            UNKNOWN_REASON_GO_AWAY,
            LOCAL_CANCEL,
        ]);
        rules
    }

    #[test]
    fn every_status_is_a_real_error_status() {
        for rule in every_rule() {
            let status = http::StatusCode::from_u16(rule.status_u16()).expect("valid status");
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{rule:?}"
            );
            assert_eq!(rule.status(), status);
        }
    }

    #[test]
    fn disabling_rows_never_retry_the_same_account() {
        for rule in every_rule() {
            let advice = rule.advice();
            if advice.disable_account() {
                assert!(!advice.retry_same_account(), "{rule:?}");
            }
            if advice.refresh_credentials() {
                assert!(rule.category().is_auth(), "{rule:?}");
            }
        }
    }

    #[test]
    fn h2_rows_are_in_code_order() {
        for (i, row) in H2_REASONS.iter().enumerate() {
            assert_eq!(row.reason.code() as usize, i, "{}", row.reason);
            assert_eq!(row.reason, Reason::ALL[i]);
            assert_eq!(
                h2_reason_row(row.reason).map(|r| r.reason),
                Some(row.reason)
            );
        }
        assert!(h2_reason_row(Reason::new(0xe)).is_none());
        assert!(h2_reason_row(Reason::new(u32::MAX)).is_none());
    }
}
