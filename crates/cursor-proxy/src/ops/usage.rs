//! Usage counters per UTC day, caller key and model: what `tokens_per_day` is checked against
//! and what the admin API and the status page report.
//!
//! [`UsageBook`] is the seam for persistence: a store-backed book (issue "State that survives")
//! only has to provide `record`, `tokens_today` and `rows`, and then the limits hold across
//! instances.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Days kept; older rows are dropped when a new day starts.
const DAYS_KEPT: u64 = 8;
/// Rows kept at most (a flood of distinct model names must not grow memory without bound).
const MAX_ROWS: usize = 20_000;
/// Models counted separately per key and day; the rest go under `other`.
const MAX_MODELS_PER_KEY_DAY: usize = 64;

/// Counters of one (day, key, model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Completed turns.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// One row of the usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Caller key name.
    pub key: String,
    /// Model.
    pub model: String,
    /// Counters.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The in-memory usage book.
#[derive(Debug, Default)]
pub struct UsageBook {
    rows: Mutex<BTreeMap<(u64, String, String), Counts>>,
}

impl UsageBook {
    /// Adds a finished turn's tokens for `key` and `model` today.
    pub fn record(&self, key: &str, model: &str, input: u64, output: u64) {
        let today = day_number(now_secs());
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.retain(|(d, _, _), _| d + DAYS_KEPT > today);
        let known = rows.contains_key(&(today, key.to_owned(), model.to_owned()));
        let models_today = rows
            .range((today, key.to_owned(), String::new())..)
            .take_while(|((d, k, _), _)| *d == today && k == key)
            .count();
        let model = if known || models_today < MAX_MODELS_PER_KEY_DAY {
            model
        } else {
            "other"
        };
        if rows.len() >= MAX_ROWS && !rows.contains_key(&(today, key.to_owned(), model.to_owned()))
        {
            return;
        }
        let c = rows
            .entry((today, key.to_owned(), model.to_owned()))
            .or_default();
        c.requests += 1;
        c.input_tokens += input;
        c.output_tokens += output;
    }

    /// Input plus output tokens `key` used today (UTC).
    pub fn tokens_today(&self, key: &str) -> u64 {
        let today = day_number(now_secs());
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.range((today, key.to_owned(), String::new())..)
            .take_while(|((d, k, _), _)| *d == today && k == key)
            .map(|(_, c)| c.input_tokens + c.output_tokens)
            .sum()
    }

    /// Every row, oldest day first.
    pub fn rows(&self) -> Vec<UsageRow> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.iter()
            .map(|((d, k, m), c)| UsageRow {
                day: civil_date(*d),
                key: k.clone(),
                model: m.clone(),
                counts: *c,
            })
            .collect()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn day_number(secs: u64) -> u64 {
    secs / 86_400
}

/// Seconds until the next UTC midnight (when `tokens_per_day` starts over).
pub fn seconds_to_utc_midnight() -> u64 {
    86_400 - now_secs() % 86_400
}

/// Today as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    civil_date(day_number(now_secs()))
}

/// The UTC date of a Unix time, `YYYY-MM-DD`.
pub fn date_of_unix(secs: u64) -> String {
    civil_date(day_number(secs))
}

/// Days since 1970-01-01 as a proleptic Gregorian `YYYY-MM-DD` (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_513), "2026-03-01");
    }

    #[test]
    fn records_and_sums_per_key() {
        let b = UsageBook::default();
        b.record("a", "m1", 10, 5);
        b.record("a", "m2", 1, 1);
        b.record("b", "m1", 100, 100);
        assert_eq!(b.tokens_today("a"), 17);
        assert_eq!(b.tokens_today("b"), 200);
        assert_eq!(b.tokens_today("c"), 0);
        assert_eq!(b.rows().len(), 3);
        for i in 0..100 {
            b.record("a", &format!("flood-{i}"), 1, 0);
        }
        assert!(b.rows().len() <= 3 + MAX_MODELS_PER_KEY_DAY);
        assert!(b.rows().iter().any(|r| r.model == "other"));
    }
}
