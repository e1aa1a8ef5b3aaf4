//! Classification cost per failure, per input class, next to the substring baseline.
//!
//! Inputs: a plain Connect JSON error, every captured end-stream `ErrorDetails` error
//! (cursor-test-support's `vectors/E*-endstream-*.json`, plus E01's bare detail value), and
//! transport failures (RST_STREAM, GOAWAY, I/O, timeout). For each:
//!
//! * `classify`: `cursor_connect_classify::classify` on the already-parsed `ConnectError`
//!   (what the proxy calls per failure);
//! * `parse+classify`: for JSON inputs, also parsing the end-stream JSON into the error;
//! * `substring`: the baseline, classifying by lowercase substrings of the error text, as the
//!   seeds' Go executor does (`strings.Contains(strings.ToLower(err.Error()), ...)` over a
//!   table tried in order).
//!
//! Each sample classifies the same failure `BATCH` times; reported figures are medians of
//! interleaved rounds, in ns per failure.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion};
use cursor_connect_benches::{Variant, emit, interleaved};
use cursor_connect_classify::{Context, classify};
use cursor_connect_frame::{
    Code, ConnectError, EndStream, ErrorDetail, Reason, TransportCause, TransportKind,
};
use cursor_test_support::vectors;

const BATCH: usize = 200;

/// The baseline's table: the first pattern found in the lowercased text decides.
const SUBSTRINGS: [(&str, &str); 16] = [
    ("not logged in", "unauthenticated"),
    ("unauthenticated", "unauthenticated"),
    ("unauthorized", "unauthenticated"),
    ("rate limit", "rate_limited"),
    ("resource_exhausted", "rate_limited"),
    ("too many", "rate_limited"),
    ("unpaid", "billing"),
    ("payment", "billing"),
    ("no longer supported", "model_unavailable"),
    ("model", "model_unavailable"),
    ("deadline", "timeout"),
    ("timeout", "timeout"),
    ("connection reset", "network"),
    ("goaway", "network"),
    ("refused", "network"),
    ("unavailable", "network"),
];

/// Classifies by substrings of the text, the baseline's way.
fn by_substring(text: &str) -> &'static str {
    let lower = text.to_lowercase();
    SUBSTRINGS
        .iter()
        .find(|(p, _)| lower.contains(p))
        .map_or("unknown", |(_, c)| c)
}

/// One input: its name, the error as a client holds it, its raw text (the baseline's input),
/// and the end-stream JSON when it came as one.
struct Case {
    name: String,
    class: &'static str,
    err: ConnectError,
    text: String,
    json: Option<Vec<u8>>,
}

fn from_json(name: &str, class: &'static str, json: &str) -> Case {
    let json = json.trim().as_bytes().to_vec();
    let err = EndStream::parse(&json)
        .expect("end-stream JSON")
        .into_result()
        .expect_err("an error end-stream");
    Case {
        name: name.to_owned(),
        class,
        err,
        text: String::from_utf8_lossy(&json).into_owned(),
        json: Some(json),
    }
}

fn transport(name: &str, code: Code, msg: &str, cause: TransportCause) -> Case {
    Case {
        name: name.to_owned(),
        class: "transport",
        err: ConnectError::transport(code, msg, cause),
        text: msg.to_owned(),
        json: None,
    }
}

fn cases() -> Vec<Case> {
    let mut out = vec![from_json(
        "connect JSON error",
        "connect",
        r#"{"error":{"code":"resource_exhausted","message":"rate limit exceeded"}}"#,
    )];
    let value = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(vectors::text("E01-errordetails-not-logged-in.b64").trim())
        .expect("E01 base64");
    out.push(Case {
        name: "E01 details value".into(),
        class: "ErrorDetails",
        err: ConnectError::remote(Code::Unauthenticated, "Error").with_detail(ErrorDetail::new(
            "aiserver.v1.ErrorDetails",
            Bytes::from(value),
        )),
        text: "unauthenticated: Error".into(),
        json: None,
    });
    for name in vectors::names() {
        if name.starts_with('E') && name.contains("-endstream-") && name.ends_with(".json") {
            let label = name.trim_end_matches(".json").replace("-endstream", "");
            out.push(from_json(&label, "ErrorDetails", &vectors::text(&name)));
        }
    }
    let reset = TransportCause::new(TransportKind::Reset)
        .with_reason(Reason::REFUSED_STREAM)
        .remote(true)
        .retry_safe(true);
    let goaway = TransportCause::new(TransportKind::GoAway)
        .with_reason(Reason::ENHANCE_YOUR_CALM)
        .remote(true)
        .response_started(true);
    out.push(transport(
        "RST_STREAM REFUSED_STREAM",
        Code::Unavailable,
        "stream error: refused stream",
        reset,
    ));
    out.push(transport(
        "GOAWAY ENHANCE_YOUR_CALM",
        Code::Unavailable,
        "connection error: received GOAWAY",
        goaway,
    ));
    out.push(transport(
        "I/O connection reset",
        Code::Unavailable,
        "connection reset by peer",
        TransportCause::new(TransportKind::Io),
    ));
    out.push(transport(
        "timeout",
        Code::DeadlineExceeded,
        "deadline exceeded",
        TransportCause::new(TransportKind::Timeout),
    ));
    out
}

fn variants(case: &Case) -> Vec<Variant<'_>> {
    let mut v: Vec<Variant<'_>> = vec![
        (
            "classify",
            Box::new(|| {
                for _ in 0..BATCH {
                    black_box(classify(black_box(&case.err), Context::new()));
                }
            }),
        ),
        (
            "substring",
            Box::new(|| {
                for _ in 0..BATCH {
                    black_box(by_substring(black_box(&case.text)));
                }
            }),
        ),
    ];
    if let Some(json) = &case.json {
        v.push((
            "parse+classify",
            Box::new(move || {
                for _ in 0..BATCH {
                    let err = EndStream::parse(black_box(json))
                        .expect("parse")
                        .into_result()
                        .expect_err("error");
                    black_box(classify(&err, Context::new()));
                }
            }),
        ));
    }
    v
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300))
        .sample_size(10)
        .configure_from_args();
    let mut out = vec![
        "\n## Classification (`benches/benches/classify.rs`)\n".to_string(),
        format!(
            "ns per failure (each sample classifies one failure {BATCH} times), medians of interleaved rounds. Target: `classify` < 1 µs per failure. `substring` is the baseline (lowercase + substring table, as the seeds' Go executor does); it only sees text, so it cannot tell retry-safe resets, Cursor's error values or cooldowns apart.\n"
        ),
        "| input | class | rounds | classify | parse+classify | substring | classify / substring |"
            .into(),
        "|---|---|---|---|---|---|---|".into(),
    ];
    for case in cases() {
        let mut vs = variants(&case);
        let mut g = c.benchmark_group("classify");
        for (name, f) in vs.iter_mut() {
            g.bench_function(BenchmarkId::new(*name, &case.name), |b| b.iter(&mut *f));
        }
        g.finish();
        let m = interleaved(&mut vs, 21, 200, Duration::from_millis(250));
        let per = |ns: f64| ns / BATCH as f64;
        let parse =
            m.ns.get(2)
                .map_or_else(|| "–".to_string(), |ns| format!("{:.0} ns", per(*ns)));
        out.push(format!(
            "| {} | {} | {} | {:.0} ns | {} | {:.0} ns | {:.2}x |",
            case.name,
            case.class,
            m.rounds,
            per(m.ns[0]),
            parse,
            per(m.ns[1]),
            m.ns[0] / m.ns[1],
        ));
    }
    c.final_summary();
    emit(&out);
}
