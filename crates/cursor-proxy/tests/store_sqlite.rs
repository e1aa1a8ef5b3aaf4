//! The proxy binary on its SQLite state file: a conversation's checkpoint, its account binding
//! and an account's cooldown survive `kill -9`; a corrupt, newer-schema or read-only file stops
//! startup with an error naming the file and what to do.

use cursor_mock::{ErrorSpec, MockServer, Scenario};
use cursor_test_support::proxy::http::{answer_text, chat_body, http_as, turn2_messages};
use cursor_test_support::proxy::process::{
    KEY, ProxyProcess, Scratch, config_file, http, run_requests,
};

/// Three accounts, one mock each; the first answers model `limited` with a long rate limit.
async fn mocks() -> [MockServer; 3] {
    let limited =
        Scenario::end_stream_error(ErrorSpec::rate_limited().with_metadata("retry-after", "600"));
    let a = MockServer::builder()
        .named("limited", limited)
        .start()
        .await
        .unwrap();
    let b = MockServer::start(Scenario::default()).await.unwrap();
    let c = MockServer::start(Scenario::default()).await.unwrap();
    [a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_binding_and_cooldown_survive_kill_9() {
    let dir = Scratch::new("restart");
    let [a, b, c] = mocks().await;
    let cfg = config_file(&dir, &[("a", a.url()), ("b", b.url()), ("c", c.url())]);
    let db = dir.path("state.sqlite3");
    let state = ["--state", db.to_str().unwrap()];

    let p = ProxyProcess::spawn(&cfg, &state, dir.path("log1")).await;
    assert!(
        p.stdout
            .iter()
            .any(|l| l.contains(&format!("state: sqlite file {}", db.display()))),
        "the state file is printed at startup: {:?}",
        p.stdout
    );
    // Round robin starts at `a`: the rate limit cools it down and the turn moves to `b`.
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("limited", r#"[{"role":"user","content":"warm up"}]"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The conversation lands on `c`, the next in the rotation, and gets a checkpoint there.
    let first = r#"[{"role":"user","content":"remember me"}]"#;
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("composer-2.5", first),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer = answer_text(&body);
    let on_c = run_requests(&c);
    assert_eq!(on_c.len(), 1, "turn 1 ran on c");
    let conv = on_c[0].conversation_id.clone().expect("a conversation id");
    let checkpoint = c.checkpoint(&conv).expect("the mock sent a checkpoint");
    let runs_on_a = run_requests(&a).len();
    assert_eq!(runs_on_a, 1, "only the rate-limited turn reached a");
    p.kill9().await;

    let p = ProxyProcess::spawn(&cfg, &state, dir.path("log2")).await;
    // The cooldown still holds: `a` shows it, and a new conversation skips it.
    let (status, health) = http(p.addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["accounts"][0]["name"], "a");
    assert_eq!(health["accounts"][0]["state"], "cooldown", "{health}");
    assert!(
        health["accounts"][0]["cooldown_remaining_ms"]
            .as_u64()
            .unwrap()
            > 500_000
    );
    assert_eq!(health["store"]["kind"], "sqlite");
    // Turn 2 of the conversation goes to `c` with the checkpoint it made, byte-exact; without
    // the stored binding the rotation (restarted at `a`, cooling) would have picked `b`.
    let turn2 = turn2_messages("remember me", &answer, "and now?");
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("composer-2.5", &turn2),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let on_c = run_requests(&c);
    assert_eq!(on_c.len(), 2, "turn 2 ran on c");
    assert_eq!(on_c[1].conversation_id.as_deref(), Some(conv.as_str()));
    assert_eq!(on_c[1].conversation_state.as_deref(), Some(&checkpoint[..]));
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body(
            "composer-2.5",
            r#"[{"role":"user","content":"a new conversation"}]"#,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        run_requests(&a).len(),
        runs_on_a,
        "the cooling account was skipped"
    );
    p.kill9().await;
    assert_file_mode_0600(&db);
}

#[cfg(unix)]
fn assert_file_mode_0600(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the state file is owner-only");
}

#[cfg(not(unix))]
fn assert_file_mode_0600(_: &std::path::Path) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_files_stop_startup_with_a_clear_error_and_are_left_alone() {
    let dir = Scratch::new("badfiles");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);

    let corrupt = dir.path("corrupt.sqlite3");
    let garbage = vec![0x5Au8; 8192];
    std::fs::write(&corrupt, &garbage).unwrap();
    let err = ProxyProcess::fail(
        &cfg,
        &["--state", corrupt.to_str().unwrap()],
        dir.path("l1"),
    )
    .await;
    assert!(
        err.contains(&corrupt.display().to_string())
            && err.contains("corrupt")
            && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(std::fs::read(&corrupt).unwrap(), garbage, "never replaced");

    let newer = dir.path("newer.sqlite3");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = ProxyProcess::fail(&cfg, &["--state", newer.to_str().unwrap()], dir.path("l2")).await;
    assert!(
        err.contains(&newer.display().to_string())
            && err.contains("schema version 99")
            && err.contains("upgrade cursor-proxy"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&newer).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99, "left untouched");

    let readonly = dir.path("readonly.sqlite3");
    let p = ProxyProcess::spawn(
        &cfg,
        &["--state", readonly.to_str().unwrap()],
        dir.path("l3"),
    )
    .await;
    p.kill9().await;
    let mut perms = std::fs::metadata(&readonly).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&readonly, perms).unwrap();
    let err = ProxyProcess::fail(
        &cfg,
        &["--state", readonly.to_str().unwrap()],
        dir.path("l4"),
    )
    .await;
    assert!(
        err.contains(&readonly.display().to_string()) && err.contains("read-only"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_credentials_are_stored_before_use_and_reused_after_restart() {
    let dir = Scratch::new("creds");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = dir.path("proxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[accounts]]\nname = \"k\"\ncursor_api_key = \"key_store_test\"\nupstream = \"{}\"\n",
            mock.url()
        ),
    )
    .unwrap();
    let db = dir.path("state.sqlite3");
    let state = ["--state", db.to_str().unwrap()];
    let exchanges = || {
        mock.received()
            .iter()
            .filter(|c| c.path == cursor_mock::EXCHANGE_API_KEY_PATH)
            .count()
    };
    let hi = r#"[{"role":"user","content":"hi"}]"#;

    let p = ProxyProcess::spawn(&cfg, &state, dir.path("log1")).await;
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("composer-2.5", hi),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        exchanges(),
        1,
        "the API key was exchanged for an access token"
    );
    p.kill9().await;
    let stored: Vec<u8> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT tokens FROM credentials WHERE account = 'k'",
            [],
            |r| r.get(0),
        )
        .expect("the new access token was stored");
    let stored = String::from_utf8(stored).unwrap();
    assert!(
        stored.contains("access_token") && !stored.contains("key_store_test"),
        "{stored}"
    );

    let p = ProxyProcess::spawn(&cfg, &state, dir.path("log2")).await;
    let (status, body) = http(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("composer-2.5", hi),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        exchanges(),
        1,
        "after the restart the stored token was used, no new exchange"
    );
    assert!(
        p.log()
            .contains("using the credentials stored by the last refresh")
    );
    p.kill9().await;
}

const ADMIN: &str = "admin-key-for-the-store-tests";
const TEAM: &str = "sk-team-added-through-admin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_key_changes_and_usage_survive_kill_9() {
    let dir = Scratch::new("keys-restart");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);
    let db = dir.path("state.sqlite3");
    let args = ["--state", db.to_str().unwrap(), "--admin-key", ADMIN];
    let admin = |p: &ProxyProcess, method: &'static str, path: &'static str, body: &'static str| {
        let addr = p.addr;
        async move { http_as(addr, ADMIN, method, path, body).await }
    };
    let chat = |p: &ProxyProcess, key: &'static str, model: &'static str| {
        let addr = p.addr;
        let body = chat_body(model, r#"[{"role":"user","content":"keys"}]"#);
        async move {
            http_as(addr, key, "POST", "/v1/chat/completions", &body)
                .await
                .0
        }
    };

    let p = ProxyProcess::spawn(&cfg, &args, dir.path("log1")).await;
    let new_key = r#"{"name":"team","key":"sk-team-added-through-admin"}"#;
    let (status, body) = admin(&p, "POST", "/admin/v1/keys", new_key).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(r#""persisted":true"#), "{body}");
    let limits = r#"{"models":["composer-*"]}"#;
    let (status, body) = admin(&p, "PUT", "/admin/v1/keys/team/limits", limits).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(&p, "DELETE", "/admin/v1/keys/key-1", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(chat(&p, TEAM, "composer-2.5").await, 200);
    p.kill9().await;

    let p = ProxyProcess::spawn(&cfg, &args, dir.path("log2")).await;
    assert_eq!(
        chat(&p, KEY, "composer-2.5").await,
        401,
        "revoked stays revoked"
    );
    assert_eq!(
        chat(&p, TEAM, "composer-2.5").await,
        200,
        "added key restored"
    );
    assert_eq!(chat(&p, TEAM, "gpt-5").await, 404, "its changed limits too");
    let (status, body) = admin(&p, "GET", "/admin/v1/usage?key=team", "").await;
    assert_eq!(status, 200, "{body}");
    let usage: serde_json::Value = serde_json::from_str(&body).unwrap();
    let requests: u64 = usage["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["requests"].as_u64())
        .sum();
    assert_eq!(
        requests, 2,
        "usage from before the restart is counted: {body}"
    );
    p.kill9().await;
    let file = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.path("state.sqlite3-wal")).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(
            !bytes.windows(TEAM.len()).any(|w| w == TEAM.as_bytes()),
            "the secret is never stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_a_burst_loses_nothing_that_was_acknowledged() {
    let dir = Scratch::new("burst");
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let cfg = config_file(&dir, &[("a", mock.url())]);
    let db = dir.path("state.sqlite3");
    let p = ProxyProcess::spawn(&cfg, &["--state", db.to_str().unwrap()], dir.path("log")).await;
    const BURST: usize = 40;
    let mut calls = Vec::new();
    for i in 0..BURST {
        let addr = p.addr;
        calls.push(tokio::spawn(async move {
            let msg = format!(r#"[{{"role":"user","content":"burst {i}"}}]"#);
            http(
                addr,
                "POST",
                "/v1/chat/completions",
                &chat_body("composer-2.5", &msg),
            )
            .await
        }));
    }
    for c in calls {
        let (status, body) = c.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // Every acknowledged turn's checkpoint and counters are on disk when the process dies.
    p.kill9().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let conversations: i64 = conn
        .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(conversations, BURST as i64);
    let requests: i64 = conn
        .query_row(
            "SELECT sum(value) FROM usage WHERE counter = 'requests'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(requests, BURST as i64);
    let callers: Vec<String> = conn
        .prepare("SELECT DISTINCT caller FROM usage")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        callers,
        [cursor_proxy::store::caller_hash(KEY)],
        "only the key's hash is stored"
    );
}
