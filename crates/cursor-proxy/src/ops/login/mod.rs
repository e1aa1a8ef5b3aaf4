//! Cursor's browser login with PKCE (reference §6.3, the login rows): a verifier and its
//! challenge, the login page URL for the user, then polls of `/auth/poll` until the tokens come.
//!
//! Polling follows the official CLI: 404 means pending; the delay before poll `n` is
//! `min(base × 1.2^n, 10 × base)` with a 1 s base; at most 150 polls; three failures in a row
//! (network errors, unexpected statuses) abort; 403 `sign_in_policy_violation` is final.

pub mod http;

use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::ops::config::Secret;

/// Cursor's website (the login page).
pub const CURSOR_WEBSITE: &str = "https://cursor.com";
/// Polls at most (the official CLI's limit).
pub const MAX_POLLS: u32 = 150;
/// Failures in a row that abort the login.
pub const MAX_FAILURES: u32 = 3;
/// The first delay between polls.
pub const POLL_BASE: Duration = Duration::from_secs(1);
/// The deadline of one poll.
const POLL_DEADLINE: Duration = Duration::from_secs(15);

/// A PKCE verifier and the login's uuid.
#[derive(Clone)]
pub struct Pkce {
    /// `base64url_nopad(32 random bytes)`.
    verifier: Secret,
    /// `base64url_nopad(sha256(verifier))`.
    pub challenge: String,
    /// A random uuid naming this login.
    pub uuid: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("uuid", &self.uuid)
            .finish_non_exhaustive()
    }
}

/// `base64url_nopad(sha256(verifier))`, hashing the verifier's text as Cursor does.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Pkce {
    /// A fresh verifier, challenge and uuid.
    pub fn new() -> Self {
        let bytes: [u8; 32] = rand::random();
        let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self {
            challenge: challenge(&verifier),
            verifier: Secret::new(verifier),
            uuid: cursor_connect::uuid_v4(),
        }
    }

    /// The page the user opens to sign in.
    pub fn login_url(&self, website: &str) -> String {
        format!(
            "{}/loginDeepControl?challenge={}&uuid={}&mode=login&redirectTarget=cli",
            website.trim_end_matches('/'),
            self.challenge,
            self.uuid
        )
    }

    fn poll_url(&self, api: &str) -> String {
        format!(
            "{}/auth/poll?uuid={}&verifier={}",
            api.trim_end_matches('/'),
            self.uuid,
            self.verifier.expose()
        )
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// How to poll.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// The API host (`https://api2.cursor.sh`).
    pub api: String,
    /// The first delay; later ones grow by 1.2× up to ten times this.
    pub base: Duration,
    /// Polls at most.
    pub max_polls: u32,
}

impl PollOptions {
    /// Cursor's API host with the official limits.
    pub fn new(api: &str) -> Self {
        Self {
            api: api.to_owned(),
            base: POLL_BASE,
            max_polls: MAX_POLLS,
        }
    }

    /// The delay before poll `n` (0-based): `min(base × 1.2^n, 10 × base)`.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1.2_f64
            .powi(i32::try_from(n.min(64)).unwrap_or(64))
            .min(10.0);
        self.base.mul_f64(factor)
    }
}

/// The tokens a finished login gives.
#[derive(Clone)]
pub struct LoginTokens {
    /// Access token.
    pub access_token: Secret,
    /// Refresh token, if any.
    pub refresh_token: Option<Secret>,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginTokens { .. }")
    }
}

/// Why the login did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Cursor refused the sign-in for policy reasons (403 `sign_in_policy_violation`).
    #[error(
        "Cursor refused the sign-in: the account's sign-in policy does not allow this client (sign_in_policy_violation)"
    )]
    PolicyViolation,
    /// The user did not finish signing in before the polls ran out.
    #[error(
        "the sign-in did not finish after {polls} polls (about {minutes} min); run `cursor-proxy login` again"
    )]
    TimedOut {
        /// Polls made.
        polls: u32,
        /// Minutes waited, rounded up.
        minutes: u64,
    },
    /// Polling failed several times in a row.
    #[error("polling {api} failed {MAX_FAILURES} times in a row; last: {last}")]
    Failing {
        /// The API host.
        api: String,
        /// The last failure.
        last: String,
    },
}

/// Polls until the login finishes; `on_pending` is told each pending answer (for progress).
pub async fn poll(
    pkce: &Pkce,
    opts: &PollOptions,
    mut on_pending: impl FnMut(u32),
) -> Result<LoginTokens, LoginError> {
    let url = pkce.poll_url(&opts.api);
    let mut failures = 0;
    let mut waited = Duration::ZERO;
    for n in 0..opts.max_polls {
        let delay = opts.delay(n);
        tokio::time::sleep(delay).await;
        waited += delay;
        let last = match http::get(&url, POLL_DEADLINE).await {
            Ok(a) if a.status == ::http::StatusCode::NOT_FOUND => {
                failures = 0;
                on_pending(n + 1);
                continue;
            }
            Ok(a) if a.status == ::http::StatusCode::FORBIDDEN && is_policy(&a.body) => {
                return Err(LoginError::PolicyViolation);
            }
            Ok(a) if a.status.is_success() => match tokens(&a.body) {
                Some(t) => return Ok(t),
                None => "a 200 answer without an accessToken".to_owned(),
            },
            Ok(a) => format!("http {}", a.status.as_u16()),
            Err(e) => crate::ops::chain(&e),
        };
        failures += 1;
        tracing::debug!(failures, reason = %last, "login poll failed");
        if failures >= MAX_FAILURES {
            return Err(LoginError::Failing {
                api: opts.api.clone(),
                last,
            });
        }
    }
    Err(LoginError::TimedOut {
        polls: opts.max_polls,
        minutes: waited.as_secs().div_ceil(60),
    })
}

fn is_policy(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")?
                .as_str()
                .map(|e| e == "sign_in_policy_violation")
        })
        .unwrap_or(false)
}

fn tokens(body: &[u8]) -> Option<LoginTokens> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let access = v.get("accessToken")?.as_str().filter(|t| !t.is_empty())?;
    Some(LoginTokens {
        access_token: Secret::new(access),
        refresh_token: v
            .get("refreshToken")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let p = Pkce::new();
        assert_eq!(p.challenge, challenge(p.verifier.expose()));
        assert_eq!(p.verifier.expose().len(), 43);
        let url = p.login_url("https://cursor.com/");
        assert!(url.starts_with("https://cursor.com/loginDeepControl?challenge="));
        assert!(url.ends_with("&mode=login&redirectTarget=cli"));
        assert!(
            !url.contains(p.verifier.expose()),
            "the verifier stays local"
        );
    }

    #[test]
    fn backoff_follows_the_cli() {
        let o = PollOptions::new("https://api2.cursor.sh");
        assert_eq!(o.delay(0), Duration::from_secs(1));
        assert_eq!(o.delay(1), Duration::from_millis(1200));
        assert_eq!(o.delay(2).as_millis(), 1440);
        assert_eq!(o.delay(40), Duration::from_secs(10));
        assert_eq!(o.max_polls, 150);
    }
}
