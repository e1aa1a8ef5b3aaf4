//! Request headers: the CLI set and the IDE set (reference §3), per-session identity values.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest as _, Sha256};

use crate::credentials::AccessToken;
use crate::error::Error;
use crate::ids::{RequestIds, hex_lower, random_hex, uuid_v4};

/// The `user-agent` both the IDE and the CLI send (their Connect transport).
pub const USER_AGENT: &str = "connect-es/1.6.1";
/// The main API host.
pub const DEFAULT_BASE_URL: &str = "https://api2.cursor.sh";
/// The agent host used when ghost (privacy) mode is on.
pub const AGENT_PRIVACY_URL: &str = "https://agent.api5.cursor.sh";
/// The agent host used when ghost mode is off.
pub const AGENT_NON_PRIVACY_URL: &str = "https://agentn.api5.cursor.sh";
/// The CLI version sent by default with [`HeaderStyle::Cli`].
pub const DEFAULT_CLI_VERSION: &str = "cli-2026.08.11-e8db854";
/// The IDE version sent by default with [`HeaderStyle::Ide`].
pub const DEFAULT_IDE_VERSION: &str = "3.11.19";
/// The SDK version sent by default with [`HeaderStyle::Sdk`] (`@cursor/sdk` 1.0.32).
pub const DEFAULT_SDK_VERSION: &str = "sdk-1.0.32";
/// The trace context Cursor's SDK sends when it has no trace: all-zero ids, not sampled.
const ZERO_TRACEPARENT: &str = "00-00000000000000000000000000000000-0000000000000000-00";

/// Which client the requests look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderStyle {
    /// The `cursor-agent` CLI: the ten-header set, no checksum (reference §3.2).
    #[default]
    Cli,
    /// The desktop IDE: checksum, session id, client key, platform headers (H01).
    Ide,
    /// Cursor's TypeScript SDK (`@cursor/sdk` 1.0.32, a local agent), as recorded against
    /// cursor-mock: the CLI's ids plus `traceparent`, `backend-traceparent` and a per-session
    /// `x-blob-encryption-key`; run requests name the model in `requested_model` only.
    Sdk,
}

/// Everything that goes into request headers except the token and request ids.
///
/// One value per client session: the session id and client key are random per session
/// (addenda 8), the machine ids are stable per machine.
#[derive(Clone)]
pub struct HeaderConfig {
    pub(crate) style: HeaderStyle,
    pub(crate) client_version: Option<String>,
    pub(crate) client_type: Option<String>,
    pub(crate) ghost_mode: bool,
    pub(crate) timezone: String,
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) config_version: Option<String>,
    pub(crate) machine_id: String,
    pub(crate) mac_machine_id: Option<String>,
    pub(crate) session_id: String,
    pub(crate) client_key: String,
    /// `x-blob-encryption-key` of the SDK style: 32 random bytes per session, as hex.
    pub(crate) blob_encryption_key: String,
    pub(crate) extra: HeaderMap,
}

impl HeaderConfig {
    /// Defaults for `style`: detected platform and time zone, ghost mode on (the CLI fails
    /// closed to privacy mode), machine id from `/etc/machine-id` when readable.
    pub fn new(style: HeaderStyle) -> Self {
        let machine_id = detect_machine_id();
        let mac_machine_id = Some(hex_lower(&Sha256::digest(format!("{machine_id}/mac"))));
        Self {
            style,
            client_version: None,
            client_type: None,
            ghost_mode: true,
            timezone: detect_timezone(),
            os: platform_os().to_owned(),
            arch: platform_arch().to_owned(),
            config_version: None,
            machine_id,
            mac_machine_id,
            session_id: uuid_v4(),
            client_key: random_hex(32),
            blob_encryption_key: random_hex(32),
            extra: HeaderMap::new(),
        }
    }

    /// The header style.
    pub fn style(&self) -> HeaderStyle {
        self.style
    }

    /// The client version sent in `x-cursor-client-version`.
    pub fn client_version(&self) -> &str {
        self.client_version.as_deref().unwrap_or(match self.style {
            HeaderStyle::Cli => DEFAULT_CLI_VERSION,
            HeaderStyle::Ide => DEFAULT_IDE_VERSION,
            HeaderStyle::Sdk => DEFAULT_SDK_VERSION,
        })
    }

    /// The client type sent in `x-cursor-client-type` (`cli` or `ide` unless overridden).
    pub fn client_type(&self) -> &str {
        self.client_type.as_deref().unwrap_or(match self.style {
            HeaderStyle::Cli => "cli",
            HeaderStyle::Ide => "ide",
            HeaderStyle::Sdk => "sdk",
        })
    }

    /// Whether ghost (privacy) mode is requested.
    pub fn ghost_mode(&self) -> bool {
        self.ghost_mode
    }

    /// The IANA time zone sent in `x-cursor-timezone`.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The per-session `x-session-id`.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The agent host for this ghost-mode setting, as the CLI picks it (reference §1.1).
    pub fn default_agent_url(&self) -> &'static str {
        if self.ghost_mode {
            AGENT_PRIVACY_URL
        } else {
            AGENT_NON_PRIVACY_URL
        }
    }

    /// Builds the headers of one request attempt (without content-type and the other
    /// headers the transport sets itself).
    pub fn headers(&self, token: &AccessToken, ids: &RequestIds) -> Result<HeaderMap, Error> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.headers_at(token, ids, now_ms)
    }

    pub(crate) fn headers_at(
        &self,
        token: &AccessToken,
        ids: &RequestIds,
        now_ms: u64,
    ) -> Result<HeaderMap, Error> {
        let mut h = HeaderMap::with_capacity(24);
        let mut put = |name: &'static str, value: &str| -> Result<(), Error> {
            let v = HeaderValue::from_str(value)
                .map_err(|_| Error::config(format!("invalid value for header {name}")))?;
            h.insert(HeaderName::from_static(name), v);
            Ok(())
        };
        let mut auth = HeaderValue::from_str(&token.bearer())
            .map_err(|_| Error::config("access token is not a valid header value"))?;
        auth.set_sensitive(true);
        let ghost = if self.ghost_mode { "true" } else { "false" };
        put("user-agent", USER_AGENT)?;
        put("x-cursor-client-version", self.client_version())?;
        put("x-cursor-client-type", self.client_type())?;
        put("x-ghost-mode", ghost)?;
        put("x-request-id", ids.request_id())?;
        match self.style {
            HeaderStyle::Cli => {
                put("x-original-request-id", ids.original_request_id())?;
            }
            HeaderStyle::Sdk => {
                put("x-original-request-id", ids.original_request_id())?;
                put("traceparent", ZERO_TRACEPARENT)?;
                put("backend-traceparent", ZERO_TRACEPARENT)?;
                let mut key = HeaderValue::from_str(&self.blob_encryption_key)
                    .map_err(|_| Error::config("invalid blob encryption key"))?;
                // A key: never in logs.
                key.set_sensitive(true);
                h.insert(HeaderName::from_static("x-blob-encryption-key"), key);
            }
            HeaderStyle::Ide => {
                let checksum = crate::checksum::header_value(
                    now_ms,
                    &self.machine_id,
                    self.mac_machine_id.as_deref(),
                );
                put("x-cursor-checksum", &checksum)?;
                put("x-cursor-client-os", &self.os)?;
                put("x-cursor-client-arch", &self.arch)?;
                put("x-cursor-client-device-type", "desktop")?;
                put("x-cursor-timezone", &self.timezone)?;
                put("x-cursor-streaming", "true")?;
                put("x-new-onboarding-completed", "false")?;
                put("x-session-id", &self.session_id)?;
                put("x-client-key", &self.client_key)?;
                put("x-amzn-trace-id", &format!("Root={}", ids.request_id()))?;
                let trace = format!("00-{}-{}-00", random_hex(16), random_hex(8));
                put("traceparent", &trace)?;
                put("cookie", "")?;
                if let Some(cv) = &self.config_version {
                    put("x-cursor-config-version", cv)?;
                }
            }
        }
        h.insert(http::header::AUTHORIZATION, auth);
        for (name, value) in &self.extra {
            h.insert(name.clone(), value.clone());
        }
        Ok(h)
    }
}

impl fmt::Debug for HeaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client key identifies the session to the server; keep it out of logs too.
        f.debug_struct("HeaderConfig")
            .field("style", &self.style)
            .field("client_version", &self.client_version())
            .field("client_type", &self.client_type())
            .field("ghost_mode", &self.ghost_mode)
            .field("timezone", &self.timezone)
            .field("os", &self.os)
            .field("arch", &self.arch)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// `<platform> <kernel release>` as Cursor's SDK reports it in the request context (Node's
/// `os.platform()` and `os.release()`), or the platform alone where the release is unknown.
pub(crate) fn os_version(platform: &str) -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    if release.is_empty() || release.len() > 128 {
        platform.to_owned()
    } else {
        format!("{platform} {release}")
    }
}

fn platform_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

fn platform_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    }
}

/// `sha256_hex(platform machine id)` like the IDE, or a random id when there is none.
fn detect_machine_id() -> String {
    for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() && s.len() < 256 {
                return hex_lower(&Sha256::digest(s));
            }
        }
    }
    random_hex(32)
}

fn detect_timezone() -> String {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() < 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
    };
    if let Ok(tz) = std::env::var("TZ") {
        let tz = tz.trim_start_matches(':');
        if valid(tz) && (tz.contains('/') || tz == "UTC") {
            return tz.to_owned();
        }
    }
    if let Ok(s) = std::fs::read_to_string("/etc/timezone") {
        let s = s.trim();
        if valid(s) {
            return s.to_owned();
        }
    }
    if let Ok(target) = std::fs::read_link("/etc/localtime")
        && let Some(s) = target.to_str()
        && let Some((_, zone)) = s.split_once("zoneinfo/")
        && valid(zone)
    {
        return zone.to_owned();
    }
    "UTC".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Headers the transport sets itself or that belong to HTTP/1.1 (not ours to send).
    const TRANSPORT: &[&str] = &[
        "host",
        "connection",
        "transfer-encoding",
        "content-type",
        "connect-protocol-version",
        "accept-encoding",
        "te",
    ];

    fn names_in_vector(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, _)| k.trim().to_ascii_lowercase())
            })
            .filter(|k| !k.is_empty() && !TRANSPORT.contains(&k.as_str()))
            .collect()
    }

    fn names(h: &HeaderMap) -> BTreeSet<String> {
        h.keys().map(|k| k.as_str().to_owned()).collect()
    }

    const H01: &str = "H01-headers-ide-2.0.77-availablemodels.txt";
    const H02: &str = "H02-headers-0.44.11-streamchat.txt";

    #[test]
    fn ide_set_matches_h01() {
        let mut cfg = HeaderConfig::new(HeaderStyle::Ide);
        cfg.config_version = Some(uuid_v4());
        let ids = RequestIds::new();
        let h = cfg.headers(&AccessToken::new("tok"), &ids).unwrap();
        // 2.0.77 (H01) predates the platform headers IDE 3.10+ adds ([CP] headers.go).
        let mut ours = names(&h);
        for platform in [
            "x-cursor-client-os",
            "x-cursor-client-arch",
            "x-cursor-client-device-type",
        ] {
            assert!(ours.remove(platform), "{platform}");
        }
        assert_eq!(
            ours,
            names_in_vector(&cursor_test_support::vectors::text(H01))
        );
        // Every header of the 0.44.11 dump (H02) is in our set too.
        assert!(names_in_vector(&cursor_test_support::vectors::text(H02)).is_subset(&names(&h)));
        assert_eq!(h["x-cursor-client-type"], "ide");
        assert_eq!(h["user-agent"], "connect-es/1.6.1");
        assert_eq!(
            h["x-amzn-trace-id"],
            format!("Root={}", ids.request_id()).as_str()
        );
        assert_eq!(h["authorization"], "Bearer tok");
        assert!(h["authorization"].is_sensitive());
        let checksum = h["x-cursor-checksum"].to_str().unwrap();
        assert_eq!(checksum.len(), 137);
        assert!(crate::checksum::decode_prefix(checksum).is_some());
        assert_eq!(h["x-client-key"].len(), 64);
    }

    #[test]
    fn cli_set_is_the_ten_headers() {
        let cfg = HeaderConfig::new(HeaderStyle::Cli);
        let ids = RequestIds::new();
        let h = cfg.headers(&AccessToken::new("tok"), &ids).unwrap();
        // The CLI's ten headers minus the two the transport sets (content-type,
        // connect-protocol-version) and connect-accept-encoding (also the transport's).
        let want: BTreeSet<String> = [
            "authorization",
            "user-agent",
            "x-cursor-client-version",
            "x-cursor-client-type",
            "x-ghost-mode",
            "x-request-id",
            "x-original-request-id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(names(&h), want);
        assert_eq!(h["x-cursor-client-type"], "cli");
        assert_eq!(h["x-cursor-client-version"], DEFAULT_CLI_VERSION);
        assert_eq!(h["x-ghost-mode"], "true");
        assert!(h.get("x-cursor-checksum").is_none());
    }

    #[test]
    fn retries_change_request_id_only() {
        let cfg = HeaderConfig::new(HeaderStyle::Cli);
        let mut ids = RequestIds::new();
        let t = AccessToken::new("tok");
        let a = cfg.headers(&t, &ids).unwrap();
        ids.next_attempt();
        let b = cfg.headers(&t, &ids).unwrap();
        assert_ne!(a["x-request-id"], b["x-request-id"]);
        assert_eq!(a["x-original-request-id"], b["x-original-request-id"]);
    }

    #[test]
    fn session_values_are_per_session() {
        let a = HeaderConfig::new(HeaderStyle::Ide);
        let b = HeaderConfig::new(HeaderStyle::Ide);
        assert_ne!(a.session_id, b.session_id);
        assert_ne!(a.client_key, b.client_key);
        // Stable within a session.
        let t = AccessToken::new("tok");
        let h1 = a.headers(&t, &RequestIds::new()).unwrap();
        let h2 = a.headers(&t, &RequestIds::new()).unwrap();
        assert_eq!(h1["x-session-id"], h2["x-session-id"]);
        assert_eq!(h1["x-client-key"], h2["x-client-key"]);
        assert!(!format!("{a:?}").contains(&a.client_key));
    }

    #[test]
    fn checksum_tracks_the_clock() {
        let cfg = HeaderConfig::new(HeaderStyle::Ide);
        let h = cfg
            .headers_at(
                &AccessToken::new("t"),
                &RequestIds::new(),
                1_755_000_000_000,
            )
            .unwrap();
        assert!(
            h["x-cursor-checksum"]
                .to_str()
                .unwrap()
                .starts_with("YhsdCtGu")
        );
    }

    #[test]
    fn bad_token_is_config_error() {
        let cfg = HeaderConfig::new(HeaderStyle::Cli);
        let e = cfg
            .headers(&AccessToken::new("a\nb"), &RequestIds::new())
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(!e.to_string().contains("a\nb"));
    }
}
