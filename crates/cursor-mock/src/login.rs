//! Cursor's browser login, played by the mock as both the website and the API host (reference
//! §6.3, the login rows).
//!
//! * `GET /loginDeepControl?challenge=…&uuid=…&mode=login` is the page the user opens: visiting
//!   it "signs in" and records the PKCE challenge for that uuid. An extra `mock=` parameter picks
//!   a failure for the login's later polls: `policy` (403 `sign_in_policy_violation`), `never`
//!   (pending for ever) or `fail` (500 on every poll).
//! * `GET /auth/poll?uuid=…&verifier=…` answers 404 while the login is pending (before the
//!   visit, then [`PENDING_POLLS`] more times), then 200 with `{accessToken, refreshToken,
//!   authId, uuid, challenge}` if `base64url(sha256(verifier)) == challenge`, else 400.
//!
//! Logins are kept per uuid (uuids are random, so mocks in one process do not meet), at most
//! [`MAX_LOGINS`] at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::unary::Reply;

/// The website's login page path.
pub const LOGIN_PAGE_PATH: &str = "/loginDeepControl";
/// The API host's poll path.
pub const AUTH_POLL_PATH: &str = "/auth/poll";
/// Polls answered "pending" after the page was visited, before the tokens.
pub const PENDING_POLLS: u32 = 2;
/// The email claim of the tokens the mock issues.
pub const LOGIN_EMAIL: &str = "mock-user@example.com";
/// Logins remembered at once.
const MAX_LOGINS: usize = 1024;

#[derive(Debug, Clone)]
struct Login {
    challenge: String,
    mode: Mode,
    polls: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Policy,
    Never,
    Fail,
}

static LOGINS: Mutex<Option<HashMap<String, Login>>> = Mutex::new(None);

/// Whether `path` is one of the login endpoints.
pub(crate) fn serves(path: &str) -> bool {
    path == LOGIN_PAGE_PATH || path == AUTH_POLL_PATH
}

/// The answer to one request on these endpoints.
pub(crate) fn answer(method: &http::Method, uri: &http::Uri) -> Reply {
    let query = parse_query(uri.query().unwrap_or(""));
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if method != http::Method::GET {
        return json(
            http::StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method"}"#,
        );
    }
    match (uri.path(), get("uuid")) {
        (LOGIN_PAGE_PATH, Some(uuid)) => visit(uuid, get("challenge"), get("mock")),
        (AUTH_POLL_PATH, Some(uuid)) => poll(uuid, get("verifier").unwrap_or("")),
        _ => json(
            http::StatusCode::BAD_REQUEST,
            r#"{"error":"uuid required"}"#,
        ),
    }
}

fn visit(uuid: &str, challenge: Option<&str>, mock: Option<&str>) -> Reply {
    let Some(challenge) = challenge else {
        return json(
            http::StatusCode::BAD_REQUEST,
            r#"{"error":"challenge required"}"#,
        );
    };
    let mode = match mock {
        Some("policy") => Mode::Policy,
        Some("never") => Mode::Never,
        Some("fail") => Mode::Fail,
        _ => Mode::Normal,
    };
    let mut guard = LOGINS.lock().unwrap_or_else(|e| e.into_inner());
    let logins = guard.get_or_insert_with(HashMap::new);
    if logins.len() >= MAX_LOGINS {
        logins.clear();
    }
    logins.insert(
        uuid.to_owned(),
        Login {
            challenge: challenge.to_owned(),
            mode,
            polls: 0,
        },
    );
    Reply::ok(
        "text/html; charset=utf-8",
        Bytes::from_static(b"<!doctype html><p>Signed in to cursor-mock. You can close this tab."),
    )
}

fn poll(uuid: &str, verifier: &str) -> Reply {
    let mut guard = LOGINS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(login) = guard.get_or_insert_with(HashMap::new).get_mut(uuid) else {
        return pending();
    };
    login.polls += 1;
    match login.mode {
        Mode::Policy => {
            return json(
                http::StatusCode::FORBIDDEN,
                r#"{"error":"sign_in_policy_violation"}"#,
            );
        }
        Mode::Never => return pending(),
        Mode::Fail => {
            return json(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"internal"}"#,
            );
        }
        Mode::Normal if login.polls <= PENDING_POLLS => return pending(),
        Mode::Normal => {}
    }
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if expected != login.challenge {
        return json(
            http::StatusCode::BAD_REQUEST,
            r#"{"error":"verifier does not match the challenge"}"#,
        );
    }
    let body = serde_json::json!({
        "accessToken": access_token(),
        "refreshToken": format!("mock-refresh-{uuid}"),
        "authId": "auth0|user_cursor_mock",
        "uuid": uuid,
        "challenge": login.challenge,
    });
    json(http::StatusCode::OK, &body.to_string())
}

fn pending() -> Reply {
    json(http::StatusCode::NOT_FOUND, r#"{"error":"pending"}"#)
}

fn json(status: http::StatusCode, body: &str) -> Reply {
    let mut reply = Reply::ok("application/json", Bytes::from(body.to_owned()));
    reply.status = status;
    reply
}

/// A JWT-shaped session token with a subject, an email and an expiry a day ahead.
fn access_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let b64 = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let header = b64(serde_json::json!({ "alg": "HS256", "typ": "JWT" }));
    let claims = b64(serde_json::json!({
        "sub": "auth0|user_cursor_mock",
        "email": LOGIN_EMAIL,
        "iss": "https://authentication.cursor.sh",
        "type": "session",
        "exp": now + 86_400,
    }));
    format!("{header}.{claims}.cursor-mock-login")
}

/// `a=b&c=d` with `%XX` and `+` decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(b).unwrap_or(b'?'));
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
