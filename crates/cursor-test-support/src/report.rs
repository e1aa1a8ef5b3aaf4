//! Markdown report lines from the benches: printed, and appended to the file `BENCH_REPORT`
//! names when it is set (how `benches/run-all.sh` assembles `benches/RESULTS.md`).

use std::io::Write as _;

/// Prints `lines` and, when `BENCH_REPORT` names a file, appends them to it; a file that
/// cannot be written is reported on stderr (the bench's own output still stands).
pub fn emit(lines: &[String]) {
    let text = lines.join("\n");
    println!("{text}");
    if let Ok(path) = std::env::var("BENCH_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{text}"));
        if let Err(e) = appended {
            eprintln!("cannot append to BENCH_REPORT {path}: {e}");
        }
    }
}
