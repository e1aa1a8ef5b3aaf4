//! Credentials: access tokens with their JWT expiry, refresh, and where logins come from.
//!
//! Secrets never appear in `Debug` or `Display` output: every token is held in a [`Secret`],
//! whose formatting prints `<redacted>`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

use crate::error::Error;

/// How long before its `exp` claim a token counts as expired (reference §6.2: 300 s).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// How long a refresh may take before it fails.
const REFRESH_DEADLINE: Duration = Duration::from_secs(30);

/// A boxed, sendable future, as returned by [`Refresh::refresh`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A secret string (token, refresh token, API key). Formatting never shows it.
///
/// With the feature `serde` it deserializes from a plain string (for configuration files); it
/// has no `Serialize`, so it cannot be written out by accident.
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(transparent))]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The claims of a Cursor access token that the client uses. No signature is checked: the
/// server does that; the client only wants to know when to refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// `sub`, e.g. `auth0|user_01H...`.
    pub subject: Option<String>,
    /// `exp` in Unix seconds.
    pub expires_at_unix: Option<u64>,
    /// `type`: `session` for IDE/CLI tokens, `web` for website cookies.
    pub token_type: Option<String>,
}

impl TokenClaims {
    /// Reads the claims from a JWT's payload segment. Returns `None` when the token is not a
    /// three-segment JWT with a JSON object payload.
    pub fn parse(jwt: &str) -> Option<Self> {
        let mut parts = jwt.split('.');
        let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .or_else(|_| URL_SAFE.decode(payload))
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let obj = value.as_object()?;
        let expires_at_unix = match obj.get("exp") {
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Some(Self {
            subject: obj.get("sub").and_then(|v| v.as_str()).map(str::to_owned),
            expires_at_unix,
            token_type: obj.get("type").and_then(|v| v.as_str()).map(str::to_owned),
        })
    }

    /// The user id part of `sub` (after the `provider|` prefix).
    pub fn user_id(&self) -> Option<&str> {
        let sub = self.subject.as_deref()?;
        Some(sub.rsplit_once('|').map_or(sub, |(_, id)| id))
    }
}

/// An access token (usually a JWT) with its parsed claims.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: Secret,
    claims: Option<TokenClaims>,
}

impl AccessToken {
    /// Wraps a token. Accepts the forms proxies see in the wild: a bare JWT, `Bearer <jwt>`,
    /// and `<userId>::<jwt>` or `<userId>%3A%3A<jwt>` (the prefix is stripped).
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        let t = token.trim();
        let t = t
            .strip_prefix("Bearer ")
            .or_else(|| t.strip_prefix("bearer "))
            .unwrap_or(t);
        let t = t.rsplit_once("::").map_or(t, |(_, jwt)| jwt);
        let t = t.rsplit_once("%3A%3A").map_or(t, |(_, jwt)| jwt);
        let claims = TokenClaims::parse(t);
        Self {
            secret: Secret::new(t),
            claims,
        }
    }

    /// The token text, for the `authorization` header.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The parsed JWT claims, when the token is a JWT.
    pub fn claims(&self) -> Option<&TokenClaims> {
        self.claims.as_ref()
    }

    /// When the token expires, from its `exp` claim.
    pub fn expires_at(&self) -> Option<SystemTime> {
        let exp = self.claims.as_ref()?.expires_at_unix?;
        UNIX_EPOCH.checked_add(Duration::from_secs(exp))
    }

    /// True when the token expires within [`EXPIRY_MARGIN`] of `now`. A token without an
    /// `exp` claim (not a JWT) never counts as expired: the server is the judge then.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        match self.expires_at() {
            Some(exp) => now.checked_add(EXPIRY_MARGIN).is_none_or(|t| t >= exp),
            None => false,
        }
    }

    /// The `authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.secret.expose())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &self.secret)
            .field("claims", &self.claims)
            .finish()
    }
}

/// The tokens of one login: an access token plus what can renew it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token sent as `authorization: Bearer ...`, if one is known yet.
    pub access_token: Option<AccessToken>,
    /// The refresh token, if the login has one.
    pub refresh_token: Option<Secret>,
    /// A user API key (`CURSOR_API_KEY`), exchanged for access tokens.
    pub api_key: Option<Secret>,
}

impl TokenSet {
    /// A token set holding only an access token.
    pub fn from_access_token(token: impl Into<String>) -> Self {
        Self {
            access_token: Some(AccessToken::new(token)),
            ..Self::default()
        }
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(Secret::new(token));
        self
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }
}

/// Renews an access token. Implement it to plug in any refresh flow (the `/oauth/token`
/// grant, the API-key exchange, a vault); see [`crate::auth`] for the request shapes.
pub trait Refresh: Send + Sync + fmt::Debug {
    /// Returns a new token set for `current` (whose access token is missing or expiring).
    fn refresh<'a>(&'a self, current: &'a TokenSet) -> BoxFuture<'a, Result<TokenSet, Error>>;
}

/// A [`Refresh`] made from an async closure; see [`Credentials::with_refresh_fn`].
pub struct RefreshFn<F>(F);

impl<F> fmt::Debug for RefreshFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshFn")
    }
}

impl<F, Fut> Refresh for RefreshFn<F>
where
    F: Fn(TokenSet) -> Fut + Send + Sync,
    Fut: Future<Output = Result<TokenSet, Error>> + Send + 'static,
{
    fn refresh<'a>(&'a self, current: &'a TokenSet) -> BoxFuture<'a, Result<TokenSet, Error>> {
        Box::pin((self.0)(current.clone()))
    }
}

#[derive(Debug)]
struct State {
    tokens: TokenSet,
}

/// The credentials a client authenticates with. Cheap to clone; clones share the token state,
/// so a refresh done by one run is seen by all.
///
/// ```
/// use cursor_connect::Credentials;
/// let creds = Credentials::access_token("not-a-real-token");
/// assert!(!format!("{creds:?}").contains("not-a-real-token"));
/// ```
#[derive(Clone)]
pub struct Credentials {
    state: Arc<tokio::sync::Mutex<State>>,
    refresher: Option<Arc<dyn Refresh>>,
}

impl Credentials {
    /// Credentials from a token set.
    pub fn from_tokens(tokens: TokenSet) -> Self {
        Self {
            state: Arc::new(tokio::sync::Mutex::new(State { tokens })),
            refresher: None,
        }
    }

    /// Credentials from an access token (JWT).
    pub fn access_token(token: impl Into<String>) -> Self {
        Self::from_tokens(TokenSet::from_access_token(token))
    }

    /// Credentials from a user API key; pair with [`Credentials::with_refresh`] and a refresher
    /// that performs the exchange (see [`crate::auth::exchange_api_key_request`]).
    pub fn api_key(key: impl Into<String>) -> Self {
        Self::from_tokens(TokenSet::default().with_api_key(key))
    }

    /// Credentials from the environment: `CURSOR_ACCESS_TOKEN` or `CURSOR_AUTH_TOKEN` (an
    /// access token), plus `CURSOR_REFRESH_TOKEN` and `CURSOR_API_KEY` when set; with either
    /// of those, renewal uses [`OAuthRefresh`](crate::auth::OAuthRefresh) against
    /// `CURSOR_BASE_URL` (default `https://api2.cursor.sh`).
    pub fn from_env() -> Result<Self, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut tokens = TokenSet::default();
        if let Some(t) = var("CURSOR_ACCESS_TOKEN").or_else(|| var("CURSOR_AUTH_TOKEN")) {
            tokens.access_token = Some(AccessToken::new(t));
        }
        tokens.refresh_token = var("CURSOR_REFRESH_TOKEN").map(Secret::new);
        tokens.api_key = var("CURSOR_API_KEY").map(Secret::new);
        if tokens.access_token.is_none() && tokens.api_key.is_none() {
            return Err(Error::credentials(
                "none of CURSOR_ACCESS_TOKEN, CURSOR_AUTH_TOKEN, CURSOR_API_KEY is set",
            ));
        }
        let renewable = tokens.refresh_token.is_some() || tokens.api_key.is_some();
        let creds = Self::from_tokens(tokens);
        if renewable {
            creds.with_default_refresh()
        } else {
            Ok(creds)
        }
    }

    /// Adds a refresher, called when the access token is missing or within
    /// [`EXPIRY_MARGIN`] of its expiry.
    pub fn with_refresh(mut self, refresher: impl Refresh + 'static) -> Self {
        self.refresher = Some(Arc::new(refresher));
        self
    }

    /// Adds a refresher written as an async closure over the current tokens, e.g. one that
    /// sends [`crate::auth::exchange_api_key_request`] with your HTTP client and reads the
    /// answer with [`crate::auth::parse_token_response`].
    ///
    /// ```
    /// use cursor_connect::{Credentials, TokenSet};
    /// let creds = Credentials::api_key("key").with_refresh_fn(|tokens: TokenSet| async move {
    ///     let _key = tokens.api_key.expect("set above");
    ///     Ok(TokenSet::from_access_token("exchanged-token"))
    /// });
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let token = rt.block_on(creds.current()).unwrap();
    /// assert_eq!(token.secret().expose(), "exchanged-token");
    /// ```
    pub fn with_refresh_fn<F, Fut>(self, f: F) -> Self
    where
        F: Fn(TokenSet) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<TokenSet, Error>> + Send + 'static,
    {
        self.with_refresh(RefreshFn(f))
    }

    /// A snapshot of the current tokens.
    pub async fn tokens(&self) -> TokenSet {
        self.state.lock().await.tokens.clone()
    }

    /// Returns a usable access token, refreshing it first when it is missing or expiring.
    /// Concurrent callers wait for one refresh instead of each starting their own.
    pub async fn current(&self) -> Result<AccessToken, Error> {
        self.current_at(SystemTime::now()).await
    }

    pub(crate) async fn current_at(&self, now: SystemTime) -> Result<AccessToken, Error> {
        let mut state = self.state.lock().await;
        if let Some(t) = &state.tokens.access_token
            && !t.is_expired_at(now)
        {
            return Ok(t.clone());
        }
        let Some(refresher) = &self.refresher else {
            return Err(match &state.tokens.access_token {
                Some(_) => Error::credentials("access token expired and no refresher configured"),
                None => Error::credentials("no access token and no refresher configured"),
            });
        };
        let fresh = tokio::time::timeout(REFRESH_DEADLINE, refresher.refresh(&state.tokens))
            .await
            .map_err(|_| Error::credentials("token refresh timed out"))??;
        let Some(token) = fresh.access_token.clone() else {
            return Err(Error::credentials("refresh returned no access token"));
        };
        tracing::debug!(expires_at = ?token.expires_at(), "access token refreshed");
        let mut merged = fresh;
        if merged.refresh_token.is_none() {
            merged.refresh_token = state.tokens.refresh_token.take();
        }
        if merged.api_key.is_none() {
            merged.api_key = state.tokens.api_key.take();
        }
        state.tokens = merged;
        Ok(token)
    }

    /// Forces the next [`Credentials::current`] to refresh (after an `unauthenticated` answer).
    pub async fn invalidate(&self) {
        self.state.lock().await.tokens.access_token = None;
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Credentials");
        match self.state.try_lock() {
            Ok(s) => d.field("tokens", &s.tokens),
            Err(_) => d.field("tokens", &"<locked>"),
        };
        d.field("refresher", &self.refresher).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    const SECRET_SUB: &str = "auth0|user_01SECRETSECRET";

    #[test]
    fn claims_are_read_without_signature_check() {
        let t = jwt(&format!(
            r#"{{"sub":"{SECRET_SUB}","time":"1700000000","exp":1800000000,"type":"session"}}"#
        ));
        let c = TokenClaims::parse(&t).unwrap();
        assert_eq!(c.expires_at_unix, Some(1_800_000_000));
        assert_eq!(c.user_id(), Some("user_01SECRETSECRET"));
        assert_eq!(c.token_type.as_deref(), Some("session"));
        assert_eq!(TokenClaims::parse("not.a-jwt"), None);
        assert_eq!(TokenClaims::parse("a.b.c.d"), None);
        assert_eq!(TokenClaims::parse("a.!!!.c"), None);
    }

    #[test]
    fn five_minute_margin() {
        let tok = AccessToken::new(jwt(r#"{"exp":1000000}"#));
        let exp = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!tok.is_expired_at(exp - Duration::from_secs(301)));
        assert!(tok.is_expired_at(exp - Duration::from_secs(300)));
        assert!(tok.is_expired_at(exp - Duration::from_secs(299)));
        assert!(tok.is_expired_at(exp + Duration::from_secs(10)));
        // No exp: never locally expired.
        assert!(!AccessToken::new("opaque").is_expired_at(SystemTime::now()));
    }

    #[test]
    fn prefixed_forms_are_stripped() {
        let j = jwt(r#"{"exp":5}"#);
        for form in [
            j.clone(),
            format!("Bearer {j}"),
            format!("user_01ABC::{j}"),
            format!("user_01ABC%3A%3A{j}"),
        ] {
            let t = AccessToken::new(form);
            assert_eq!(t.secret().expose(), j);
            assert_eq!(t.bearer(), format!("Bearer {j}"));
        }
    }

    #[derive(Debug)]
    struct CountingRefresh(std::sync::atomic::AtomicUsize, String);

    impl Refresh for CountingRefresh {
        fn refresh<'a>(&'a self, cur: &'a TokenSet) -> BoxFuture<'a, Result<TokenSet, Error>> {
            Box::pin(async move {
                assert_eq!(
                    cur.refresh_token.as_ref().map(Secret::expose),
                    Some("refresh-secret")
                );
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(TokenSet::from_access_token(self.1.clone()))
            })
        }
    }

    #[tokio::test]
    async fn expired_token_is_refreshed_once() {
        let old = jwt(r#"{"exp":1000}"#);
        let new = jwt(r#"{"exp":99999999999}"#);
        let creds = Credentials::from_tokens(
            TokenSet::from_access_token(old).with_refresh_token("refresh-secret"),
        )
        .with_refresh(CountingRefresh(Default::default(), new.clone()));
        let t = creds.current().await.unwrap();
        assert_eq!(t.secret().expose(), new);
        let t = creds.current().await.unwrap();
        assert_eq!(t.secret().expose(), new);
        // The refresh token survives a refresh that did not return one.
        assert!(creds.tokens().await.refresh_token.is_some());
    }

    #[tokio::test]
    async fn expired_without_refresher_is_credentials_error() {
        let creds = Credentials::access_token(jwt(r#"{"exp":1000}"#));
        let e = creds.current().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credentials);
        let e = Credentials::api_key("k").current().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credentials);
    }

    #[tokio::test]
    async fn secrets_never_formatted() {
        let access = jwt(&format!(
            r#"{{"sub":"x","exp":99999999999,"pad":"{SECRET_SUB}"}}"#
        ));
        let creds = Credentials::from_tokens(
            TokenSet::from_access_token(access.clone())
                .with_refresh_token("rt-VERYSECRET")
                .with_api_key("key-VERYSECRET"),
        );
        let tokens = creds.tokens().await;
        let shown = format!(
            "{creds:?} {tokens:?} {:?} {} {:#?}",
            tokens.access_token,
            tokens.api_key.as_ref().unwrap(),
            tokens
        );
        assert!(!shown.contains(&access), "{shown}");
        assert!(!shown.contains("VERYSECRET"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
