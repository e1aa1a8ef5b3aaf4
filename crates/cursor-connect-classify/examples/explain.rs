//! Classifies a captured Connect error and prints the decision.
//!
//! ```text
//! cargo run -p cursor-connect-classify --example explain -- FILE [HTTP_STATUS] [--after-output]
//! ```
//!
//! `FILE` holds an end-stream JSON (`{"error":{…}}`) or a unary error body (`{code, message,
//! details}`; give the HTTP status). Details that only survive in `debug` JSON are read too.
//! With `EXPLAIN_REPEAT=N` it also times N calls of `classify` (details decoded from the error
//! each time, as a client does) and prints the mean.

use std::process::ExitCode;
use std::time::Instant;

use cursor_connect_classify::{Context, CursorDetails, classify, classify_with_details};
use cursor_connect_frame::{ConnectError, EndStream};
use http::{HeaderMap, StatusCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: explain FILE [HTTP_STATUS] [--after-output]");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let status = args.iter().skip(1).find_map(|a| a.parse::<u16>().ok());
    let after_output = args.iter().any(|a| a == "--after-output");
    let err = match status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(s) => ConnectError::from_unary_response(s, &HeaderMap::new(), &body),
        None => match EndStream::parse(&body) {
            Ok(end) => match end.into_result() {
                Ok(_) => {
                    println!("end-stream carries no error");
                    return ExitCode::SUCCESS;
                }
                Err(e) => e,
            },
            Err(e) => ConnectError::from(e),
        },
    };
    let ctx = Context::new().with_response_started(after_output);
    let details = CursorDetails::from_error(&err).or_else(|| CursorDetails::from_error_json(&body));
    let c = classify_with_details(&err, ctx, details.clone());
    println!("error:       {err}");
    println!("status:      {}", c.status());
    println!("category:    {}", c.category());
    println!("layer:       {:?}", c.layer());
    if let Some(d) = c.cursor_details() {
        println!(
            "cursor:      {} ({:?}) {:?} / {:?}",
            d.error(),
            d.source(),
            d.title(),
            d.detail()
        );
    }
    println!("advice:      {:?}", c.advice());
    println!("transparent: {}", c.transparent_retry_allowed());
    if let Some(n) = std::env::var("EXPLAIN_REPEAT")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(classify(std::hint::black_box(&err), ctx));
        }
        let per = start.elapsed() / n.max(1);
        println!("classify:    {per:?} per call over {n} calls");
    }
    ExitCode::SUCCESS
}
