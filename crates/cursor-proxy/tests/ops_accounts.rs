//! Accounts changed on a running proxy through the admin API, against cursor-mock: an added
//! account takes turns with its own token (the mock's recorder shows it) and is saved to the
//! accounts file; a removed one takes no more turns and leaves the file. Caller keys pinned to
//! an account group use only that group's accounts.

use cursor_mock::{DEFAULT_USAGE, MockServer, Scenario, Step};
use cursor_proxy::Proxy;
use cursor_proxy::engine::pool::Account;
use cursor_proxy::ops::accounts::AccountBook;
use cursor_proxy::ops::config::{AccountConfig, Config, Secret};
use cursor_proxy::ops::keys::{KeyPolicy, KeySpec};
use cursor_test_support::proxy::http::{Reply, bearer, chat, messages, request};
use cursor_test_support::proxy::process::Scratch;
use cursor_test_support::proxy::{config, mock_account, start};

const CALLER: &str = "sk-accounts-test-caller";
const ADMIN: &str = "admin-key-accounts-0123456789";
const MODEL: &str = "composer-2.5";
const SLOW: &str = "slow-model";
const BASE_TOKEN: &str = "tok-base-account";
const ADDED_TOKEN: &str = "tok-added-account";

async fn call(proxy: &Proxy, method: &str, path: &str, key: &str, body: &str) -> Reply {
    let (h, v) = bearer(key);
    let headers = [("content-type", "application/json"), (h, v.as_str())];
    request(proxy.addr(), method, path, &headers, body).await
}

async fn turn(proxy: &Proxy) -> Reply {
    call(
        proxy,
        "POST",
        "/v1/chat/completions",
        CALLER,
        &chat(MODEL, false),
    )
    .await
}

/// How many `Run` calls reached the mock with `token` as their bearer.
fn runs_with(mock: &MockServer, token: &str) -> usize {
    let want = format!("Bearer {token}");
    mock.received()
        .iter()
        .filter(|c| c.path.ends_with("/Run"))
        .filter(|c| c.headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&want))
        .count()
}

async fn stored_credentials(proxy: &Proxy, name: &str) -> serde_json::Value {
    let bytes = proxy
        .state()
        .engine
        .store()
        .credentials(name)
        .await
        .expect("store answers")
        .expect("credentials row");
    serde_json::from_slice(&bytes).expect("json")
}

fn admin_config(accounts_file: std::path::PathBuf) -> Config {
    let mut cfg = config(CALLER);
    cfg.ops.admin_key = Some(Secret::new(ADMIN));
    cfg.accounts_file = Some(accounts_file);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_added_and_removed_while_serving() {
    let dir = Scratch::new("admin-accounts");
    let file = dir.path("accounts.json");
    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let proxy = start(
        &admin_config(file.clone()),
        vec![mock_account("base", &mock.url(), BASE_TOKEN)],
    )
    .await;

    // Refused: no credential, a bad name, a duplicate.
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        ADMIN,
        r#"{"name":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        ADMIN,
        r#"{"name":"a b","token":"t"}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        ADMIN,
        r#"{"name":"base","token":"t"}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);

    let body = serde_json::json!({
        "name": "added", "token": ADDED_TOKEN, "upstream": mock.url(), "group": "team",
    });
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        ADMIN,
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["persisted"], true);
    assert!(!r.body.contains(ADDED_TOKEN), "token echoed: {}", r.body);
    let list = call(&proxy, "GET", "/admin/v1/accounts", ADMIN, "")
        .await
        .json();
    assert_eq!(list["accounts"][1]["name"], "added");
    assert_eq!(list["accounts"][1]["group"], "team");

    // The store's renewed-credentials row starts from the added tokens (an older row of the
    // same name would otherwise win at the next start).
    assert_eq!(
        stored_credentials(&proxy, "added").await["access_token"],
        ADDED_TOKEN
    );

    // Saved like `login` saves: owner-only, read back with the group.
    let book = AccountBook::open(&file).expect("accounts file");
    let saved = &book.list()[0];
    assert_eq!(
        (saved.name.as_str(), saved.source.as_str()),
        ("added", "admin")
    );
    assert_eq!(saved.access_token.expose(), ADDED_TOKEN);
    assert_eq!(saved.group.as_deref(), Some("team"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // With the configured account out of rotation, the turn can only go to the added one.
    let r = call(&proxy, "POST", "/admin/v1/accounts/base/disable", ADMIN, "").await;
    assert_eq!(r.status, 200);
    let r = turn(&proxy).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(runs_with(&mock, ADDED_TOKEN), 1);
    assert_eq!(runs_with(&mock, BASE_TOKEN), 0);

    let r = call(&proxy, "DELETE", "/admin/v1/accounts/added", ADMIN, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["persisted"], true);
    let r = call(&proxy, "DELETE", "/admin/v1/accounts/added", ADMIN, "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(AccountBook::open(&file).unwrap().list().is_empty());
    assert_eq!(
        stored_credentials(&proxy, "added").await,
        serde_json::json!({})
    );
    let list = call(&proxy, "GET", "/admin/v1/accounts", ADMIN, "")
        .await
        .json();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);

    // Only the disabled account is left: no account, and nothing reaches the mock.
    let before = mock.received().len();
    let r = turn(&proxy).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(mock.received().len(), before);
    // Back on the configured account, turns never use the removed one's token again.
    call(&proxy, "POST", "/admin/v1/accounts/base/enable", ADMIN, "").await;
    for _ in 0..3 {
        assert_eq!(turn(&proxy).await.status, 200);
    }
    assert_eq!(runs_with(&mock, ADDED_TOKEN), 1);
    assert_eq!(runs_with(&mock, BASE_TOKEN), 3);
    proxy.shutdown().await;
}

/// A turn running on an account when it is removed finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_turn_on_a_removed_account_finishes() {
    let steps = vec![
        Step::Heartbeat,
        Step::TextDelta("first ".into()),
        Step::Sleep(std::time::Duration::from_millis(600)),
        Step::TextDelta("second".into()),
        Step::TurnEnded(DEFAULT_USAGE),
        Step::EndOk,
    ];
    let mock = MockServer::builder()
        .named(SLOW, Scenario::new(steps))
        .start()
        .await
        .expect("mock");
    let dir = Scratch::new("admin-accounts-running");
    let proxy = start(
        &admin_config(dir.path("accounts.json")),
        vec![mock_account("only", &mock.url(), BASE_TOKEN)],
    )
    .await;
    let addr = proxy.addr();
    let running = tokio::spawn(async move {
        let (h, v) = bearer(CALLER);
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[("content-type", "application/json"), (h, &v)],
            &chat(SLOW, true),
        )
        .await
    });
    // Removed once its Run reached the mock (bounded wait).
    for _ in 0..200 {
        if runs_with(&mock, BASE_TOKEN) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(runs_with(&mock, BASE_TOKEN), 1);
    let r = call(&proxy, "DELETE", "/admin/v1/accounts/only", ADMIN, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = running.await.expect("request task");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("second") && done.body.contains("[DONE]"),
        "{}",
        done.body
    );
    assert_eq!(turn(&proxy).await.status, 503);
    proxy.shutdown().await;
}

const RED_KEY: &str = "sk-accounts-red-key";
const BLUE_KEY: &str = "sk-accounts-blue-key";
const GHOST_KEY: &str = "sk-accounts-ghost-key";

fn pinned(name: &str, secret: &str, group: &str) -> KeySpec {
    KeySpec {
        name: name.into(),
        secret: Secret::new(secret),
        policy: KeyPolicy {
            account_group: Some(group.into()),
            ..KeyPolicy::default()
        },
    }
}

fn grouped(name: &str, url: &str, token: &str, group: Option<&str>) -> Account {
    let cfg = AccountConfig {
        upstream: Some(url.to_owned()),
        group: group.map(str::to_owned),
        ..AccountConfig::named(name)
    };
    Account::new(cfg, Secret::new(token), url)
}

async fn turn_as(proxy: &Proxy, key: &str, path: &str, body: &str) -> Reply {
    call(proxy, "POST", path, key, body).await
}

/// Keys pinned to an account group use only its accounts; with none of them usable the caller
/// gets an error in its API's shape naming the group, and nothing goes upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_pinned_to_a_group_use_only_its_accounts() {
    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let url = mock.url();
    let dir = Scratch::new("admin-accounts-groups");
    let mut cfg = admin_config(dir.path("accounts.json"));
    cfg.ops.keys = vec![
        pinned("red", RED_KEY, "red"),
        pinned("blue", BLUE_KEY, "blue"),
        pinned("ghost", GHOST_KEY, "ghost"),
    ];
    let accounts = vec![
        grouped("red1", &url, "tok-red-1", Some("red")),
        grouped("blue1", &url, "tok-blue-1", Some("blue")),
        grouped("free", &url, "tok-free", None),
        grouped("red2", &url, "tok-red-2", Some("red")),
    ];
    let proxy = start(&cfg, accounts).await;
    let chat_path = "/v1/chat/completions";
    for _ in 0..4 {
        let r = turn_as(&proxy, RED_KEY, chat_path, &chat(MODEL, false)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Round robin within the group: both red accounts, nothing else.
    let (r1, r2) = (runs_with(&mock, "tok-red-1"), runs_with(&mock, "tok-red-2"));
    assert_eq!(r1 + r2, 4);
    assert!(r1 > 0 && r2 > 0, "red1 {r1}, red2 {r2}");
    assert_eq!(
        runs_with(&mock, "tok-blue-1") + runs_with(&mock, "tok-free"),
        0
    );
    for _ in 0..2 {
        let r = turn_as(&proxy, BLUE_KEY, chat_path, &chat(MODEL, false)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(runs_with(&mock, "tok-blue-1"), 2);
    // An account added through the admin API joins its group.
    let body = serde_json::json!({
        "name": "blue2", "token": "tok-blue-2", "upstream": url, "group": "blue",
    });
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        ADMIN,
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    call(
        &proxy,
        "POST",
        "/admin/v1/accounts/blue1/disable",
        ADMIN,
        "",
    )
    .await;
    let r = turn_as(&proxy, BLUE_KEY, chat_path, &chat(MODEL, false)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(runs_with(&mock, "tok-blue-2"), 1);

    // The whole group out: an error naming it, in the OpenAI and the Anthropic shape.
    call(
        &proxy,
        "POST",
        "/admin/v1/accounts/blue2/disable",
        ADMIN,
        "",
    )
    .await;
    let before = mock.received().len();
    let r = turn_as(&proxy, BLUE_KEY, chat_path, &chat(MODEL, false)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(r#"account group "blue""#), "{message}");
    let r = turn_as(&proxy, BLUE_KEY, "/v1/messages", &messages(MODEL)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["type"], "error", "{}", r.body);
    assert!(r.body.contains(r#"account group \"blue\""#), "{}", r.body);
    let r = turn_as(&proxy, GHOST_KEY, chat_path, &chat(MODEL, false)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains(r#"account group \"ghost\""#), "{}", r.body);
    assert_eq!(mock.received().len(), before, "nothing went upstream");
    // Red and unpinned callers are not affected.
    assert_eq!(
        turn_as(&proxy, RED_KEY, chat_path, &chat(MODEL, false))
            .await
            .status,
        200
    );
    assert_eq!(turn(&proxy).await.status, 200);
    proxy.shutdown().await;
}
