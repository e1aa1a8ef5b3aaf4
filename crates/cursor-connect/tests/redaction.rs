//! Secrets never reach logs: a full run and a failed run at TRACE level, captured by the global
//! subscriber. This file holds one test on purpose: the process-wide subscriber is installed once.

mod common;

use std::sync::{Arc, Mutex};

use common::{TOKEN, client, expect_error, run_to_end};
use cursor_connect::RunRequest;
use cursor_mock::{MockServer, Scenario, names};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The global subscriber, in a test binary of its own: a thread-scoped one races with
    // callsite-interest caching when other tests log from other threads at the same time.
    tracing::subscriber::set_global_default(subscriber).expect("first and only subscriber");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let out = run_to_end(&c, RunRequest::new("composer-2.5", "x")).await;
    assert!(matches!(out.end, Some(Ok(()))));
    let out = run_to_end(&c, RunRequest::new(names::ERROR_UNAUTHENTICATED, "x")).await;
    let e = expect_error(&out);
    tracing::error!(error = %e, debug = ?e, client = ?c, "logged by the application");
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("agent run opened"),
        "logging was not captured"
    );
    assert!(!logs.contains(TOKEN), "token leaked into logs");
    assert!(!format!("{e:?} {e} {c:?}").contains(TOKEN));
}
