//! The decision tables in the crate docs are the tables in the code, rendered.
//!
//! Regenerate after changing a table: `UPDATE_DECISION_TABLES=1 cargo test -p
//! cursor-connect-classify --test doc_tables`, then review the diff.

use std::path::PathBuf;

use cursor_connect_classify::tables::render_markdown;

#[test]
fn doc_tables_match_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("doc/decision-tables.md");
    let rendered = render_markdown();
    if std::env::var_os("UPDATE_DECISION_TABLES").is_some() {
        std::fs::write(&path, &rendered).expect("write doc/decision-tables.md");
    }
    let on_disk = std::fs::read_to_string(&path).expect("read doc/decision-tables.md");
    if on_disk != rendered {
        let first = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "doc/decision-tables.md is out of date ({first}); rerun with UPDATE_DECISION_TABLES=1"
        );
    }
}

#[test]
fn every_row_is_rendered() {
    use cursor_connect_classify::tables::{
        CODES, CURSOR_ERRORS, H2_REASONS, HTTP_STATUSES, TEXT_PATTERNS,
    };
    let md = render_markdown();
    for row in &CURSOR_ERRORS {
        assert!(
            md.contains(&format!("| {} | `{}` |", row.value, row.name)),
            "{}",
            row.name
        );
    }
    for row in &CODES {
        assert!(
            md.contains(&format!("| `{}` |", row.code.as_str())),
            "{:?}",
            row.code
        );
    }
    for row in &H2_REASONS {
        assert!(md.contains(&format!(
            "| {:#x} | `{}` | RST_STREAM |",
            row.reason.code(),
            row.reason
        )));
        assert!(md.contains(&format!(
            "| {:#x} | `{}` | GOAWAY |",
            row.reason.code(),
            row.reason
        )));
    }
    for row in &HTTP_STATUSES {
        assert!(
            md.contains(&format!("\n| {} | `", row.status)),
            "{}",
            row.status
        );
    }
    for row in &TEXT_PATTERNS {
        assert!(md.contains(&format!("| `{}` |", row.pattern)));
    }
}
