//! The admin API and the status page against the proxy on cursor-mock: every route refused
//! without, with a wrong and with a caller key; accounts, keys, usage and reload; the page
//! rendered by a real headless Chromium.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cursor_mock::{MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{Config, Secret};
use cursor_proxy::ops::keys::{KeyPolicy, KeySpec};
use cursor_test_support::proxy::http::{Reply, bearer, chat, request};
use cursor_test_support::proxy::{config, mock_account, start};

const CALLER: &str = "sk-admin-test-caller";
const ADMIN: &str = "admin-key-0123456789abcdef";
const MODEL: &str = "composer-2.5";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Every admin route with a body that would be accepted.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/admin/v1/accounts", ""),
    ("POST", "/admin/v1/accounts", r#"{"name":"x"}"#),
    ("DELETE", "/admin/v1/accounts/acct0", ""),
    ("POST", "/admin/v1/accounts/acct0/disable", ""),
    ("POST", "/admin/v1/accounts/acct0/enable", ""),
    ("POST", "/admin/v1/accounts/acct0/clear-cooldown", ""),
    ("GET", "/admin/v1/keys", ""),
    ("POST", "/admin/v1/keys", r#"{"name":"new"}"#),
    ("DELETE", "/admin/v1/keys/key-1", ""),
    ("PUT", "/admin/v1/keys/key-1/limits", "{}"),
    ("GET", "/admin/v1/usage", ""),
    ("POST", "/admin/v1/reload", ""),
    ("GET", "/metrics", ""),
];

fn admin_config() -> Config {
    let mut cfg = config(CALLER);
    cfg.ops.admin_key = Some(Secret::new(ADMIN));
    cfg
}

async fn setup(cfg: &Config) -> (MockServer, Proxy) {
    let mock = MockServer::start(Scenario::default()).await.expect("mock");
    let accounts = vec![
        mock_account("acct0", &mock.url(), "tok-admin-secret"),
        mock_account("acct1", &mock.url(), "tok-admin-secret"),
    ];
    (mock, start(cfg, accounts).await)
}

async fn call(proxy: &Proxy, method: &str, path: &str, key: Option<&str>, body: &str) -> Reply {
    let auth = key.map(bearer);
    let mut headers = vec![("content-type", "application/json")];
    if let Some((h, v)) = &auth {
        headers.push((h, v.as_str()));
    }
    request(proxy.addr(), method, path, &headers, body).await
}

fn assert_admin_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{}", r.body);
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["request_id"].as_str(), r.header("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_refuses_no_key_a_wrong_key_and_a_caller_key() {
    let (mock, proxy) = setup(&admin_config()).await;
    for (method, path, body) in ROUTES {
        let r = call(&proxy, method, path, None, body).await;
        assert_admin_error(&r, 401, "missing_admin_key");
        let r = call(
            &proxy,
            method,
            path,
            Some("admin-key-0123456789abcdeX"),
            body,
        )
        .await;
        assert_admin_error(&r, 401, "invalid_admin_key");
        let r = call(&proxy, method, path, Some(CALLER), body).await;
        assert_admin_error(&r, 403, "caller_key");
        assert!(!r.body.contains(CALLER), "{method} {path}: key echoed");
    }
    // Nothing was changed by the refused calls.
    let r = call(&proxy, "GET", "/admin/v1/keys", Some(ADMIN), "").await;
    assert_eq!(r.json()["keys"].as_array().unwrap().len(), 1);
    assert!(mock.received().is_empty());
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_key_the_admin_api_is_off() {
    let (_mock, proxy) = setup(&config(CALLER)).await;
    for path in ["/admin/v1/accounts", "/admin"] {
        let r = call(&proxy, "GET", path, Some(CALLER), "").await;
        assert_admin_error(&r, 404, "admin_disabled");
    }
    // Metrics stay readable (they hold no secrets).
    assert_eq!(call(&proxy, "GET", "/metrics", None, "").await.status, 200);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_disable_enable_and_clear_cooldown() {
    let (_mock, proxy) = setup(&admin_config()).await;
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts/acct0/disable",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = call(&proxy, "GET", "/admin/v1/accounts", Some(ADMIN), "")
        .await
        .json();
    let states: Vec<(&str, &str)> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("acct0", "disabled"), ("acct1", "healthy")]);
    // Turns go to the other account.
    for _ in 0..3 {
        let (h, v) = bearer(CALLER);
        let r = request(
            proxy.addr(),
            "POST",
            "/v1/chat/completions",
            &[(h, &v)],
            &chat(MODEL, false),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let list = call(&proxy, "GET", "/admin/v1/accounts", Some(ADMIN), "")
        .await
        .json();
    assert_eq!(list["accounts"][0]["successes"], 0);
    assert_eq!(list["accounts"][1]["successes"], 3);
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts/acct0/clear-cooldown",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let list = call(&proxy, "GET", "/admin/v1/accounts", Some(ADMIN), "")
        .await
        .json();
    assert_eq!(
        list["accounts"][0]["state"], "disabled",
        "clearing a cooldown keeps it disabled"
    );
    call(
        &proxy,
        "POST",
        "/admin/v1/accounts/acct0/enable",
        Some(ADMIN),
        "",
    )
    .await;
    let list = call(&proxy, "GET", "/admin/v1/accounts", Some(ADMIN), "")
        .await
        .json();
    assert_eq!(list["accounts"][0]["state"], "healthy");
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts/nobody/disable",
        Some(ADMIN),
        "",
    )
    .await;
    assert_admin_error(&r, 404, "not_found");
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/accounts",
        Some(ADMIN),
        r#"{"name":"x"}"#,
    )
    .await;
    assert_admin_error(&r, 422, "invalid");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_add_limit_revoke_and_usage() {
    let (_mock, proxy) = setup(&admin_config()).await;
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/keys",
        Some(ADMIN),
        r#"{"name":"team","models":["composer-*"]}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.json()["key"]
        .as_str()
        .expect("generated key shown once")
        .to_owned();
    let (h, v) = bearer(&secret);
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = call(&proxy, "GET", "/admin/v1/keys", Some(ADMIN), "").await;
    assert!(
        !r.body.contains(&secret) && !r.body.contains(CALLER),
        "no secrets listed"
    );
    let keys = r.json();
    let team = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "team")
        .unwrap()
        .clone();
    assert_eq!(team["policy"]["models"][0], "composer-*");
    assert!(team["tokens_today"].as_u64().unwrap() > 0);

    let usage = call(&proxy, "GET", "/admin/v1/usage?key=team", Some(ADMIN), "")
        .await
        .json();
    let rows = usage["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["model"].as_str(), rows[0]["requests"].as_u64()),
        (Some(MODEL), Some(1))
    );

    let r = call(
        &proxy,
        "PUT",
        "/admin/v1/keys/team/limits",
        Some(ADMIN),
        r#"{"models":["gpt-*"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = call(
        &proxy,
        "PUT",
        "/admin/v1/keys/team/limits",
        Some(ADMIN),
        r#"{"requests_per_minute":0}"#,
    )
    .await;
    assert_admin_error(&r, 422, "invalid");
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/keys",
        Some(ADMIN),
        r#"{"name":"team"}"#,
    )
    .await;
    assert_admin_error(&r, 409, "conflict");
    let r = call(
        &proxy,
        "POST",
        "/admin/v1/keys",
        Some(ADMIN),
        r#"{"name":"x","bogus":1}"#,
    )
    .await;
    assert_admin_error(&r, 400, "bad_request");

    let r = call(&proxy, "DELETE", "/admin/v1/keys/team", Some(ADMIN), "").await;
    assert_eq!(r.status, 200);
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 401);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_valid_config_and_refuses_an_invalid_one() {
    let (_mock, proxy) = setup(&admin_config()).await;
    let next = std::sync::Arc::new(std::sync::Mutex::new(Ok::<_, String>(())));
    let choice = std::sync::Arc::clone(&next);
    proxy.state().ops.set_config_source(Box::new(move || {
        choice.lock().unwrap().clone()?;
        let mut cfg = admin_config();
        cfg.ops.keys = vec![KeySpec {
            name: "reloaded".into(),
            secret: Secret::new("sk-reloaded-key"),
            policy: KeyPolicy::default(),
        }];
        Ok(cfg)
    }));
    let r = call(&proxy, "POST", "/admin/v1/reload", Some(ADMIN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (h, v) = bearer("sk-reloaded-key");
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 200);

    *next.lock().unwrap() = Err("invalid config file proxy.toml: bad key".into());
    let r = call(&proxy, "POST", "/admin/v1/reload", Some(ADMIN), "").await;
    assert_admin_error(&r, 422, "reload_refused");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad key")
    );
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 200, "the old config stays");
    let metrics = call(&proxy, "GET", "/metrics", Some(ADMIN), "").await.body;
    assert!(
        metrics.contains(r#"cursor_proxy_config_reloads_total{result="refused"} 1"#),
        "{metrics}"
    );
    proxy.shutdown().await;
}

/// A fresh Chromium profile directory under the target dir.
fn profile(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page's DOM after its script ran, from headless Chromium.
async fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run .ci/peers"
    );
    let child = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // Virtual time runs until the page's fetches have settled (bounded).
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_the_accounts_in_headless_chromium() {
    let (_mock, proxy) = setup(&admin_config()).await;
    call(
        &proxy,
        "POST",
        "/admin/v1/accounts/acct1/disable",
        Some(ADMIN),
        "",
    )
    .await;
    let (h, v) = bearer(CALLER);
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat(MODEL, false),
    )
    .await;
    assert_eq!(r.status, 200);

    // Without the key the page only asks for it.
    let dir = profile("nokey");
    let dom = dump_dom(&format!("http://{}/admin", proxy.addr()), &dir).await;
    assert!(dom.contains("Admin key"), "{dom}");
    assert!(!dom.contains("data-account"), "no data without the key");

    let dir = profile("key");
    let dom = dump_dom(&format!("http://{}/admin#key={ADMIN}", proxy.addr()), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the script rendered: {dom}"
    );
    let rows: Vec<&str> = dom.split("<tr data-account=").skip(1).collect();
    assert_eq!(rows.len(), 2, "{dom}");
    assert!(
        rows[0].starts_with(r#""acct0""#)
            && rows[0].contains(r#"<td class="healthy">healthy</td>"#),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with(r#""acct1""#)
            && rows[1].contains(r#"<td class="disabled">disabled</td>"#),
        "{}",
        rows[1]
    );
    assert!(
        dom.contains("<td>key-1</td><td>composer-2.5</td>"),
        "today's usage row: {dom}"
    );
    proxy.shutdown().await;
}
