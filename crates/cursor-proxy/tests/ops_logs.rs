//! A full run through the proxy on cursor-mock with every log line captured raw at debug level
//! (no redactor in between): no caller key, admin key or account token appears, and the request
//! ids do.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cursor_mock::{MockServer, Scenario, names};
use cursor_proxy::ops::config::Secret;
use cursor_proxy::ops::keys::{KeyPolicy, KeySpec};
use cursor_test_support::proxy::http::{bearer, chat, messages, request};
use cursor_test_support::proxy::{config, mock_account, start};

const CALLER: &str = "sk-logs-caller-key-1";
const LIMITED: &str = "sk-logs-limited-key-2";
const ADMIN: &str = "admin-key-logs-0123456789";
/// JWT-shaped, like Cursor's access tokens.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2dzIn0.c2lnbmF0dXJlLWxvZ3M";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_log_of_a_full_run_holds_no_key_or_token() {
    let capture = Capture::default();
    let sink = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let mut cfg = config(CALLER);
    cfg.ops.admin_key = Some(Secret::new(ADMIN));
    cfg.ops.keys = vec![KeySpec {
        name: "limited".into(),
        secret: Secret::new(LIMITED),
        policy: KeyPolicy {
            requests_per_minute: Some(1),
            models: vec!["composer-*".into()],
            ..KeyPolicy::default()
        },
    }];
    let proxy = start(&cfg, vec![mock_account("acct0", &mock.url(), TOKEN)]).await;
    let addr = proxy.addr();
    let (h, caller) = bearer(CALLER);
    let json = ("content-type", "application/json");
    for body in [
        chat("composer-2.5", true),
        chat("composer-2.5", false),
        chat(names::TOOL_CALL, true),
    ] {
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[(h, &caller), json],
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let anthropic = [
        ("x-api-key", CALLER),
        ("anthropic-version", "2023-06-01"),
        json,
    ];
    assert_eq!(
        request(
            addr,
            "POST",
            "/v1/messages",
            &anthropic,
            &messages("composer-2.5")
        )
        .await
        .status,
        200
    );
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[(h, &caller), json],
        &chat(names::ERROR_UNAUTHENTICATED, false),
    )
    .await;
    assert!(r.status >= 400);
    let (_, limited) = bearer(LIMITED);
    request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[(h, &limited), json],
        &chat("composer-2.5", false),
    )
    .await;
    assert_eq!(
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[(h, &limited), json],
            &chat("composer-2.5", false)
        )
        .await
        .status,
        429
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[(h, &limited), json],
            &chat("gpt-5", false)
        )
        .await
        .status,
        404
    );
    let (_, admin) = bearer(ADMIN);
    for path in [
        "/admin/v1/accounts",
        "/admin/v1/keys",
        "/admin/v1/usage",
        "/metrics",
    ] {
        assert_eq!(
            request(addr, "GET", path, &[(h, &admin)], "").await.status,
            200
        );
        assert_eq!(
            request(addr, "GET", path, &[(h, &caller)], "").await.status,
            403
        );
    }
    let r = request(
        addr,
        "POST",
        "/admin/v1/keys",
        &[(h, &admin), json],
        r#"{"name":"made","key":"sk-logs-made-key-3"}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    // The added key is accepted (the only account may be resting after the error turn).
    let r = request(
        addr,
        "GET",
        "/v1/models",
        &[("x-api-key", "sk-logs-made-key-3")],
        "",
    )
    .await;
    assert_ne!(r.status, 401, "{}", r.body);
    proxy.shutdown().await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains(" DEBUG "), "debug lines were captured");
    assert!(log.contains("request_id=req_"), "request ids in the log");
    assert!(log.contains("refused by the key's policy"));
    for secret in [CALLER, LIMITED, ADMIN, TOKEN, "sk-logs-made-key-3"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    // Neither the token's payload nor its signature alone.
    for part in TOKEN.split('.') {
        assert!(!log.contains(part), "token part {part} in the log");
    }
}
