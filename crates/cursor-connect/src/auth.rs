//! Login sources and token-endpoint request shapes (reference §6).
//!
//! * [`ide_state_db_path`] / [`read_ide_state_db`]: the Cursor IDE's SQLite `state.vscdb`
//!   (`ItemTable`, keys `cursorAuth/accessToken`, `cursorAuth/refreshToken`).
//! * [`cli_auth_file_path`] / [`read_cli_auth_file`]: the CLI's `auth.json`
//!   (`{accessToken, refreshToken, apiKey}`).
//! * [`exchange_api_key_request`] / [`oauth_refresh_request`] build the HTTP requests of the two
//!   token endpoints, and [`parse_token_response`] reads either answer. They are plain
//!   `http::Request`s so a [`Refresh`](crate::Refresh) implementation can send them with any
//!   HTTP client.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::credentials::{AccessToken, Credentials, Secret, TokenSet};
use crate::error::{Error, ErrorKind};

/// The path of the API-key exchange endpoint on the API host.
pub const EXCHANGE_API_KEY_PATH: &str = "/auth/exchange_user_api_key";
/// The path of the OAuth refresh-token grant on the API host.
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";
/// The OAuth client id Cursor's session tokens are issued to (the zhengwenj/cursor-api `refresh_token` call).
pub const OAUTH_CLIENT_ID: &str = "KbZUR41cY7W6zRSdpSUJ7I7mLYBKOCmB";

/// The largest token-endpoint answer [`parse_token_response`] accepts.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Builds `POST {base}/auth/exchange_user_api_key` with `authorization: Bearer <api key>` and
/// body `{}`; the answer is `{accessToken, refreshToken}`.
pub fn exchange_api_key_request(
    base_url: &str,
    api_key: &Secret,
) -> Result<http::Request<RedactedBody>, Error> {
    json_post(
        base_url,
        EXCHANGE_API_KEY_PATH,
        Some(api_key),
        Bytes::from_static(b"{}"),
    )
}

/// Builds `POST {base}/oauth/token` with the refresh-token grant; the answer carries
/// `access_token` (and `shouldLogout`).
pub fn oauth_refresh_request(
    base_url: &str,
    refresh_token: &Secret,
) -> Result<http::Request<RedactedBody>, Error> {
    json_post(
        base_url,
        OAUTH_TOKEN_PATH,
        None,
        refresh_grant_body(refresh_token),
    )
}

/// The JSON body of the OAuth refresh-token grant (it carries the refresh token itself).
fn refresh_grant_body(refresh_token: &Secret) -> Bytes {
    let body = serde_json::json!({
        "grant_type": "refresh_token",
        "client_id": OAUTH_CLIENT_ID,
        "refresh_token": refresh_token.expose(),
    });
    Bytes::from(body.to_string())
}

/// A request body that may carry a secret (the refresh grant holds the refresh token), so its
/// `Debug` prints only its length: `http::Request`'s own `Debug` prints the body.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedBody(Bytes);

impl RedactedBody {
    /// The body bytes, to put on the wire.
    pub fn expose(&self) -> &Bytes {
        &self.0
    }

    /// The body bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl std::fmt::Debug for RedactedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedactedBody({} bytes)", self.0.len())
    }
}

fn json_post(
    base_url: &str,
    path: &str,
    bearer: Option<&Secret>,
    body: Bytes,
) -> Result<http::Request<RedactedBody>, Error> {
    let uri = format!("{}{path}", base_url.trim_end_matches('/'));
    let mut b = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, crate::config::USER_AGENT);
    if let Some(secret) = bearer {
        let mut v = http::HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
            .map_err(|_| Error::credentials("api key is not a valid header value"))?;
        // Sensitive values print as `Sensitive` in the request's Debug output (and h2 never
        // adds them to its HPACK table).
        v.set_sensitive(true);
        b = b.header(http::header::AUTHORIZATION, v);
    }
    b.body(RedactedBody(body))
        .map_err(|e| Error::with_source(ErrorKind::Config, "invalid token endpoint url", e))
}

/// Reads a token endpoint's answer: `{accessToken, refreshToken}` (exchange, poll) or
/// `{access_token, shouldLogout}` (OAuth). Non-2xx statuses and `shouldLogout: true` are
/// credential errors.
pub fn parse_token_response(status: http::StatusCode, body: &[u8]) -> Result<TokenSet, Error> {
    if body.len() > MAX_TOKEN_RESPONSE {
        return Err(Error::credentials(format!(
            "token response too large ({} bytes)",
            body.len()
        )));
    }
    if !status.is_success() {
        return Err(Error::credentials(format!(
            "token endpoint answered http {}",
            status.as_u16()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::with_source(ErrorKind::Credentials, "token response is not json", e))?;
    if v.get("shouldLogout").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(Error::credentials("token endpoint asked to log out"));
    }
    let s = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let access = s("accessToken").or_else(|| s("access_token"));
    let Some(access) = access else {
        return Err(Error::credentials("token response has no access token"));
    };
    let mut set = TokenSet::from_access_token(access);
    if let Some(r) = s("refreshToken").or_else(|| s("refresh_token")) {
        set.refresh_token = Some(Secret::new(r));
    }
    Ok(set)
}

/// Where the Cursor IDE keeps `state.vscdb` on this platform, if a home/config dir is known.
pub fn ide_state_db_path() -> Option<PathBuf> {
    cursor_user_dir().map(|d| d.join("User").join("globalStorage").join("state.vscdb"))
}

fn cursor_user_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        env("APPDATA").map(|a| a.join("Cursor"))
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library").join("Application Support").join("Cursor"))
    } else {
        env("XDG_CONFIG_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".config")))
            .map(|c| c.join("Cursor"))
    }
}

/// Where the Cursor CLI keeps `auth.json` on this platform (reference §6.1; the directory
/// name `cursor` is the CLI's default domain).
pub fn cli_auth_file_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        env("APPDATA").map(|a| a.join("Cursor").join("auth.json"))
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join(".cursor").join("auth.json"))
    } else {
        env("XDG_CONFIG_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".config")))
            .map(|c| c.join("cursor").join("auth.json"))
    }
}

/// Reads the IDE login from a `state.vscdb` file (opened read-only). Needs the default feature
/// `ide-credentials` (SQLite, through rusqlite's bundled build).
#[cfg(feature = "ide-credentials")]
pub fn read_ide_state_db(path: &Path) -> Result<TokenSet, Error> {
    use rusqlite::OpenFlags;
    let open_err = |e| {
        Error::with_source(
            ErrorKind::Credentials,
            format!("cannot read {}", path.display()),
            e,
        )
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    let item = |key: &str| -> Result<Option<String>, Error> {
        let mut stmt = conn
            .prepare("SELECT value FROM ItemTable WHERE key = ?1")
            .map_err(open_err)?;
        let mut rows = stmt.query([key]).map_err(open_err)?;
        let Some(row) = rows.next().map_err(open_err)? else {
            return Ok(None);
        };
        // VS Code stores values as TEXT, but some writers use BLOB; accept both.
        let v = match row.get_ref(0).map_err(open_err)? {
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                String::from_utf8_lossy(t).into_owned()
            }
            _ => return Ok(None),
        };
        // Some versions store the token JSON-quoted.
        let v = v.trim().trim_matches('"').to_owned();
        Ok(Some(v).filter(|v| !v.is_empty()))
    };
    let access = item("cursorAuth/accessToken")?;
    let refresh = item("cursorAuth/refreshToken")?;
    let Some(access) = access else {
        return Err(Error::credentials(format!(
            "no cursorAuth/accessToken in {}",
            path.display()
        )));
    };
    let mut set = TokenSet::from_access_token(access);
    set.refresh_token = refresh.map(Secret::new);
    Ok(set)
}

/// Reads the CLI login from an `auth.json` file.
pub fn read_cli_auth_file(path: &Path) -> Result<TokenSet, Error> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Credentials,
            format!("cannot read {}", path.display()),
            e,
        )
    })?;
    if meta.len() > MAX_TOKEN_RESPONSE as u64 {
        return Err(Error::credentials(format!(
            "{} is too large",
            path.display()
        )));
    }
    let text = std::fs::read(path).map_err(|e| {
        Error::with_source(
            ErrorKind::Credentials,
            format!("cannot read {}", path.display()),
            e,
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::with_source(
            ErrorKind::Credentials,
            format!("{} is not json", path.display()),
            e,
        )
    })?;
    let s = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let set = TokenSet {
        access_token: s("accessToken").map(AccessToken::new),
        refresh_token: s("refreshToken").map(Secret::new),
        api_key: s("apiKey").map(Secret::new),
    };
    if set.access_token.is_none() && set.api_key.is_none() {
        return Err(Error::credentials(format!(
            "{} holds neither accessToken nor apiKey",
            path.display()
        )));
    }
    Ok(set)
}

/// The deadline of one token-endpoint call.
const TOKEN_CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A [`Refresh`](crate::Refresh) that exchanges the token set's API key for an access token
/// at `POST {base}/auth/exchange_user_api_key` (over HTTP/2, as the rest of the client).
///
/// ```
/// use cursor_connect::{Credentials, auth::ApiKeyExchange};
/// let creds = Credentials::api_key("key_...").with_refresh(ApiKeyExchange::new("https://api2.cursor.sh")?);
/// # Ok::<(), cursor_connect::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeyExchange {
    endpoint: TokenEndpoint,
}

impl ApiKeyExchange {
    /// An exchange against the API host `base_url` (`https://api2.cursor.sh` for Cursor).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Ok(Self {
            endpoint: TokenEndpoint::new(base_url)?,
        })
    }
}

impl crate::Refresh for ApiKeyExchange {
    fn refresh<'a>(
        &'a self,
        current: &'a TokenSet,
    ) -> crate::BoxFuture<'a, Result<TokenSet, Error>> {
        Box::pin(async move {
            let Some(key) = &current.api_key else {
                return Err(Error::credentials("no api key to exchange"));
            };
            self.endpoint
                .post(EXCHANGE_API_KEY_PATH, Some(key), Bytes::from_static(b"{}"))
                .await
        })
    }
}

/// A [`Refresh`](crate::Refresh) that redeems the token set's refresh token with the OAuth
/// refresh grant at `POST {base}/oauth/token` (reference §6.3; unverified against the live
/// service), falling back to the API-key exchange when the set has an API key but no refresh
/// token.
#[derive(Debug, Clone)]
pub struct OAuthRefresh {
    endpoint: TokenEndpoint,
}

impl OAuthRefresh {
    /// A refresher against the API host `base_url`.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Ok(Self {
            endpoint: TokenEndpoint::new(base_url)?,
        })
    }
}

impl crate::Refresh for OAuthRefresh {
    fn refresh<'a>(
        &'a self,
        current: &'a TokenSet,
    ) -> crate::BoxFuture<'a, Result<TokenSet, Error>> {
        Box::pin(async move {
            match (&current.refresh_token, &current.api_key) {
                (Some(rt), key) => {
                    let body = refresh_grant_body(rt);
                    match (self.endpoint.post(OAUTH_TOKEN_PATH, None, body).await, key) {
                        (Ok(set), _) => Ok(set),
                        (Err(e), Some(key)) => {
                            tracing::debug!(error = %e, "refresh grant failed; trying the api key exchange");
                            let empty = Bytes::from_static(b"{}");
                            self.endpoint
                                .post(EXCHANGE_API_KEY_PATH, Some(key), empty)
                                .await
                        }
                        (Err(e), None) => Err(e),
                    }
                }
                (None, Some(key)) => {
                    self.endpoint
                        .post(EXCHANGE_API_KEY_PATH, Some(key), Bytes::from_static(b"{}"))
                        .await
                }
                (None, None) => Err(Error::credentials(
                    "neither a refresh token nor an api key to refresh with",
                )),
            }
        })
    }
}

/// JSON POSTs to a token endpoint over a lazily connected HTTP/2 channel.
#[derive(Clone)]
struct TokenEndpoint {
    channel: cursor_connect_h2::Channel,
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("endpoint", self.channel.endpoint())
            .finish()
    }
}

impl TokenEndpoint {
    fn new(base_url: &str) -> Result<Self, Error> {
        let ep = cursor_connect_h2::Endpoint::from_url(base_url).map_err(|e| {
            Error::with_source(ErrorKind::Config, format!("invalid url {base_url:?}"), e)
        })?;
        Ok(Self {
            channel: cursor_connect_h2::Channel::lazy(ep),
        })
    }

    async fn post(
        &self,
        path: &str,
        bearer: Option<&Secret>,
        body: Bytes,
    ) -> Result<TokenSet, Error> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(crate::config::USER_AGENT),
        );
        if let Some(secret) = bearer {
            let mut v = http::HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
                .map_err(|_| Error::credentials("api key is not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let opts = cursor_connect_h2::CallOptions::default()
            .codec(cursor_connect_frame::Codec::Json)
            .deadline(TOKEN_CALL_DEADLINE);
        match self.channel.unary(path, headers, body, opts).await {
            Ok(resp) => parse_token_response(http::StatusCode::OK, &resp.message),
            Err(e) => Err(Error::credentials_with_source(
                format!("token endpoint {path} failed"),
                e,
            )),
        }
    }
}

impl Credentials {
    /// Credentials from the Cursor IDE's storage (`state.vscdb`), at `path` or the default
    /// location for this platform, renewed with [`OAuthRefresh`] against the default API host.
    /// Needs the default feature `ide-credentials`.
    #[cfg(feature = "ide-credentials")]
    pub fn from_ide_storage(path: Option<&Path>) -> Result<Self, Error> {
        let p = match path {
            Some(p) => p.to_path_buf(),
            None => ide_state_db_path().ok_or_else(|| Error::credentials("no home directory"))?,
        };
        Self::from_tokens(read_ide_state_db(&p)?).with_default_refresh()
    }

    /// Credentials from the Cursor CLI's `auth.json`, at `path` or the default location,
    /// renewed with [`OAuthRefresh`] (refresh token, else API-key exchange).
    pub fn from_cli_auth_file(path: Option<&Path>) -> Result<Self, Error> {
        let p = match path {
            Some(p) => p.to_path_buf(),
            None => cli_auth_file_path().ok_or_else(|| Error::credentials("no home directory"))?,
        };
        Self::from_tokens(read_cli_auth_file(&p)?).with_default_refresh()
    }

    /// Adds [`OAuthRefresh`] against `CURSOR_BASE_URL` or `https://api2.cursor.sh`.
    pub(crate) fn with_default_refresh(self) -> Result<Self, Error> {
        let base = std::env::var("CURSOR_BASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| crate::config::DEFAULT_BASE_URL.to_owned());
        Ok(self.with_refresh(OAuthRefresh::new(&base)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "cursor-connect-test-{}-{}-{name}",
            std::process::id(),
            crate::ids::uuid_v4()
        ))
    }

    #[test]
    fn exchange_request_shape() {
        let req =
            exchange_api_key_request("https://api2.cursor.sh/", &Secret::new("key_123")).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri(),
            "https://api2.cursor.sh/auth/exchange_user_api_key"
        );
        assert_eq!(req.headers()["authorization"], "Bearer key_123");
        assert!(req.headers()["authorization"].is_sensitive());
        assert!(!format!("{req:?}").contains("key_123"), "{req:?}");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.body().expose().as_ref(), b"{}");
    }

    #[test]
    fn oauth_request_shape() {
        let req = oauth_refresh_request("https://api2.cursor.sh", &Secret::new("rt-7f3a")).unwrap();
        assert_eq!(req.uri(), "https://api2.cursor.sh/oauth/token");
        assert!(req.headers().get("authorization").is_none());
        let v: serde_json::Value = serde_json::from_slice(req.body().expose()).unwrap();
        assert_eq!(v["grant_type"], "refresh_token");
        assert_eq!(v["client_id"], OAUTH_CLIENT_ID);
        assert_eq!(v["refresh_token"], "rt-7f3a");
        // The refresh token rides in the body, which `http::Request`'s Debug would print.
        let shown = format!("{req:?}");
        assert!(!shown.contains("rt-7f3a"), "{shown}");
        assert!(shown.contains("RedactedBody("), "{shown}");
    }

    #[test]
    fn token_responses() {
        let ok = parse_token_response(
            http::StatusCode::OK,
            br#"{"accessToken":"a","refreshToken":"r"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token.unwrap().secret().expose(), "a");
        assert_eq!(ok.refresh_token.unwrap().expose(), "r");
        let oauth = parse_token_response(
            http::StatusCode::OK,
            br#"{"access_token":"b","shouldLogout":false}"#,
        )
        .unwrap();
        assert_eq!(oauth.access_token.unwrap().secret().expose(), "b");
        for (status, body) in [
            (200, &br#"{"access_token":"b","shouldLogout":true}"#[..]),
            (401, br#"{"accessToken":"a"}"#),
            (200, b"{}"),
            (200, b"not json"),
        ] {
            let e = parse_token_response(http::StatusCode::from_u16(status).unwrap(), body)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Credentials);
        }
    }

    #[cfg(feature = "ide-credentials")]
    #[test]
    fn reads_ide_state_db() {
        let path = temp_path("state.vscdb");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);",
            )
            .unwrap();
            c.execute(
                "INSERT INTO ItemTable VALUES ('cursorAuth/accessToken', 'acc-tok')",
                [],
            )
            .unwrap();
            c.execute(
                "INSERT INTO ItemTable VALUES ('cursorAuth/refreshToken', ?1)",
                [b"ref-tok".to_vec()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO ItemTable VALUES ('cursorAuth/cachedEmail', 'a@b.c')",
                [],
            )
            .unwrap();
        }
        let set = read_ide_state_db(&path).unwrap();
        assert_eq!(set.access_token.unwrap().secret().expose(), "acc-tok");
        assert_eq!(set.refresh_token.unwrap().expose(), "ref-tok");
        let creds = Credentials::from_ide_storage(Some(&path)).unwrap();
        assert!(!format!("{creds:?}").contains("acc-tok"));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            read_ide_state_db(&path).unwrap_err().kind(),
            ErrorKind::Credentials
        );
    }

    #[cfg(feature = "ide-credentials")]
    #[test]
    fn ide_state_db_without_token() {
        let path = temp_path("empty.vscdb");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE ItemTable (key TEXT, value BLOB);")
                .unwrap();
        }
        assert_eq!(
            read_ide_state_db(&path).unwrap_err().kind(),
            ErrorKind::Credentials
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reads_cli_auth_file() {
        let path = temp_path("auth.json");
        std::fs::write(
            &path,
            r#"{"accessToken":"cli-acc","refreshToken":"cli-ref","apiKey":"cli-key"}"#,
        )
        .unwrap();
        let set = read_cli_auth_file(&path).unwrap();
        assert_eq!(set.access_token.unwrap().secret().expose(), "cli-acc");
        assert_eq!(set.api_key.unwrap().expose(), "cli-key");
        std::fs::write(&path, r#"{"bedrockCredentials":{}}"#).unwrap();
        assert!(read_cli_auth_file(&path).is_err());
        std::fs::write(&path, "garbage").unwrap();
        assert!(read_cli_auth_file(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn default_paths_have_expected_tails() {
        if let Some(p) = ide_state_db_path() {
            assert!(p.ends_with("User/globalStorage/state.vscdb") || cfg!(windows));
        }
        if let Some(p) = cli_auth_file_path() {
            assert!(p.ends_with("auth.json"));
        }
    }
}
