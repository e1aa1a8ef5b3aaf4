//! Settings at the edge of their range (`Duration::MAX` heartbeats and stall timeouts) do not panic.

mod common;

use std::time::Duration;

use common::{RUN_DEADLINE, TOKEN, run_to_end};
use cursor_connect::{Credentials, CursorClient, RunRequest};
use cursor_mock::{MockServer, Scenario};

/// `Duration::MAX` for the heartbeat interval and stall timeout ("never") must not panic
/// on `Instant` arithmetic inside the run.
#[tokio::test]
async fn unbounded_heartbeat_and_stall_settings_do_not_panic() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let client = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .heartbeat_interval(Duration::MAX)
        .stall_timeout(Duration::MAX)
        .unary_timeout(Duration::MAX)
        .build()
        .unwrap();
    let out = tokio::time::timeout(
        RUN_DEADLINE,
        run_to_end(&client, RunRequest::new("composer-2.5", "hello")),
    )
    .await
    .unwrap();
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(!out.text.is_empty());
    let models = tokio::time::timeout(RUN_DEADLINE, client.usable_models())
        .await
        .unwrap()
        .unwrap();
    assert!(!models.is_empty());
}
