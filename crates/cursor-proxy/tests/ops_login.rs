//! `cursor-proxy login`, `import` and `accounts` as a user runs them: the binary against
//! cursor-mock's login page and poll endpoint, end to end into a proxy that serves with the
//! saved account.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser as _;
use cursor_mock::{LOGIN_EMAIL, MockServer, Scenario};
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{Cli, Config};
use cursor_test_support::proxy::http::{bearer, chat, request};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_cursor-proxy");

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("login-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(args: &[&str], file: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .arg("--accounts-file")
        .arg(file)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Runs a short subcommand; (success, stdout, stderr).
async fn run(args: &[&str], file: &Path) -> (bool, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), command(args, file).output())
        .await
        .expect("subcommand finishes")
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Starts `login` against `mock`, plays the browser (visiting the printed page with `extra`
/// appended, unless `None`), and returns (success, stdout, stderr).
async fn login(
    mock: &MockServer,
    file: &Path,
    visit: Option<&str>,
    extra_args: &[&str],
) -> (bool, String, String) {
    let url = mock.url();
    let mut args = vec![
        "login",
        "--no-browser",
        "--website",
        &url,
        "--api",
        &url,
        "--poll-base-ms",
        "20",
    ];
    args.extend_from_slice(extra_args);
    let mut child = command(&args, file).spawn().expect("login starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let page = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the login page is printed")
            .unwrap()
            .expect("more output");
        out.push_str(&line);
        out.push('\n');
        if let Some(u) = line.trim().strip_prefix(url.as_str()) {
            break u.to_owned();
        }
    };
    assert!(page.starts_with("/loginDeepControl?challenge="), "{page}");
    assert!(
        !page.contains("verifier"),
        "the verifier is never in the page URL"
    );
    if let Some(extra) = visit {
        let addr = mock.addr();
        let r = request(addr, "GET", &format!("{page}{extra}"), &[], "").await;
        assert_eq!(r.status, 200, "the browser signs in: {}", r.body);
    }
    while let Ok(Some(line)) = lines.next_line().await {
        out.push_str(&line);
        out.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("login finishes")
        .unwrap();
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
        .await
        .unwrap();
    (status.success(), out, err)
}

fn saved(file: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_end_to_end_then_the_proxy_serves_with_the_account() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let dir = scratch("e2e");
    let file = dir.join("accounts.json");
    let (ok, out, err) = login(&mock, &file, Some(""), &["--name", "mine"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "Signed in as {LOGIN_EMAIL}; saved as account \"mine\""
        )),
        "{out}"
    );
    let book = saved(&file);
    let token = book["accounts"][0]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        book["accounts"][0]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("mock-refresh-")
    );
    assert_eq!(book["accounts"][0]["email"], LOGIN_EMAIL);
    assert!(
        !out.contains(&token) && !err.contains(&token),
        "the token is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let (ok, list, _) = run(&["accounts"], &file).await;
    assert!(ok);
    assert!(
        list.starts_with(&format!("mine\tenabled\t{LOGIN_EMAIL}\tlogin\t")),
        "{list}"
    );
    assert!(!list.contains(&token));

    // A proxy started with this accounts file serves with the account, on the host it
    // logged in against.
    let cli = Cli::parse_from([
        "cursor-proxy",
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        "sk-login-caller",
    ]);
    let cli = Cli {
        accounts_file: Some(file.clone()),
        ..cli
    };
    let config = Config::resolve(&cli, &|_| None).unwrap();
    assert_eq!(config.accounts.len(), 1);
    let proxy = Proxy::start(config).await.unwrap();
    let (h, v) = bearer("sk-login-caller");
    let r = request(
        proxy.addr(),
        "POST",
        "/v1/chat/completions",
        &[(h, &v)],
        &chat("composer-2.5", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run_call = mock
        .received()
        .into_iter()
        .find(|c| c.path.contains("AgentService"))
        .expect("a turn reached the mock");
    let auth = run_call
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(auth, format!("Bearer {token}"));
    proxy.shutdown().await;

    let (ok, out, _) = run(&["accounts", "disable", "mine"], &file).await;
    assert!(ok, "{out}");
    assert!(
        run(&["accounts", "list"], &file)
            .await
            .1
            .starts_with("mine\tdisabled")
    );
    let config = Config::resolve(
        &Cli {
            accounts_file: Some(file.clone()),
            ..Cli::parse_from(["cursor-proxy", "--api-key", "k"])
        },
        &|_| None,
    )
    .unwrap();
    assert!(
        config.accounts.is_empty(),
        "a disabled account is not served"
    );
    assert!(run(&["accounts", "enable", "mine"], &file).await.0);
    assert!(run(&["accounts", "remove", "mine"], &file).await.0);
    let (ok, _, err) = run(&["accounts", "remove", "mine"], &file).await;
    assert!(
        !ok && err.contains("no saved account named \"mine\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reports_policy_violation_timeout_and_failures() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let dir = scratch("fail");
    let file = dir.join("accounts.json");
    let (ok, _, err) = login(&mock, &file, Some("&mock=policy"), &[]).await;
    assert!(!ok);
    assert!(err.contains("sign_in_policy_violation"), "{err}");

    let (ok, _, err) = login(&mock, &file, None, &["--max-polls", "3"]).await;
    assert!(!ok);
    assert!(err.contains("did not finish after 3 polls"), "{err}");

    let (ok, _, err) = login(&mock, &file, Some("&mock=fail"), &[]).await;
    assert!(!ok);
    assert!(
        err.contains("failed 3 times in a row") && err.contains("http 500"),
        "{err}"
    );
    assert!(!file.exists(), "nothing saved by a failed login");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_the_cli_auth_file_and_the_ide_state_db() {
    let dir = scratch("import");
    let file = dir.join("accounts.json");
    let auth = dir.join("auth.json");
    std::fs::write(
        &auth,
        r#"{"accessToken":"cli-access-token-1","refreshToken":"cli-refresh-1"}"#,
    )
    .unwrap();
    let (ok, out, err) = run(
        &["import", "--from", "cli", "--path", auth.to_str().unwrap()],
        &file,
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("as account \"cli\""), "{out}");

    let db = dir.join("state.vscdb");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
             INSERT INTO ItemTable VALUES ('cursorAuth/accessToken', 'ide-access-token-1');
             INSERT INTO ItemTable VALUES ('cursorAuth/refreshToken', 'ide-refresh-1');",
        )
        .unwrap();
    }
    let (ok, out, err) = run(
        &[
            "import",
            "--from",
            "ide",
            "--path",
            db.to_str().unwrap(),
            "--name",
            "work",
        ],
        &file,
    )
    .await;
    assert!(ok, "{out}{err}");
    let book = saved(&file);
    let names: Vec<_> = book["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cli", "work"]);
    assert_eq!(book["accounts"][1]["access_token"], "ide-access-token-1");
    assert_eq!(book["accounts"][1]["source"], "ide");

    let (ok, _, err) = run(
        &[
            "import",
            "--from",
            "cli",
            "--path",
            dir.join("missing.json").to_str().unwrap(),
        ],
        &file,
    )
    .await;
    assert!(
        !ok && err.contains("no Cursor login could be imported"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
