//! Where and how to connect: address, TLS or h2c, windows, keepalive, limits.

use std::sync::Arc;
use std::time::Duration;

use cursor_connect_frame::{BaseUrl, InvalidBaseUrl};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error::{Error, ErrorKind};

/// Default per-stream receive window (2 MiB).
pub const DEFAULT_STREAM_WINDOW: u32 = 2 << 20;
/// Default connection receive window (8 MiB).
pub const DEFAULT_CONN_WINDOW: u32 = 8 << 20;
/// Default keepalive PING interval.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default keepalive PING timeout.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default timeout for TCP connect plus TLS and HTTP/2 handshakes.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest window HTTP/2 allows (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Connection settings for a [`Channel`](crate::Channel).
///
/// ```
/// use std::time::Duration;
/// use cursor_connect_h2::Endpoint;
///
/// let ep = Endpoint::from_url("http://127.0.0.1:4000")?
///     .windows(1 << 20, 4 << 20)
///     .keepalive(Duration::from_secs(5), Duration::from_secs(10));
/// assert_eq!(ep.authority(), "127.0.0.1:4000");
/// # Ok::<(), cursor_connect_h2::Error>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) url: BaseUrl,
    pub(crate) stream_window: u32,
    pub(crate) conn_window: u32,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) max_concurrent_calls: Option<usize>,
    pub(crate) max_send_buffer: usize,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("scheme", &self.scheme())
            .field("authority", &self.authority())
            .field("stream_window", &self.stream_window)
            .field("conn_window", &self.conn_window)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_roots", &self.extra_roots.len())
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .finish()
    }
}

impl Endpoint {
    fn base(url: BaseUrl) -> Self {
        Self {
            url,
            stream_window: DEFAULT_STREAM_WINDOW,
            conn_window: DEFAULT_CONN_WINDOW,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_roots: Vec::new(),
            max_concurrent_calls: None,
            max_send_buffer: 1 << 20,
        }
    }

    /// An endpoint for a parsed base URL; a TLS host must be a valid TLS server name.
    fn checked(url: Result<BaseUrl, InvalidBaseUrl>) -> Result<Self, Error> {
        let url = url.map_err(|e| {
            Error::new(ErrorKind::InvalidInput)
                .detail(e.to_string())
                .source_err(e)
        })?;
        if url.is_tls() {
            ServerName::try_from(url.host().to_owned()).map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .detail(format!("invalid tls server name {:?}", url.host()))
                    .source_err(e)
            })?;
        }
        Ok(Self::base(url))
    }

    /// TLS to `host` (optionally `host:port`, default port 443) with ALPN `h2`.
    pub fn tls(host: &str) -> Result<Self, Error> {
        Self::checked(BaseUrl::from_authority(host, true))
    }

    /// Cleartext HTTP/2 with prior knowledge (h2c) to `authority`, e.g. `"127.0.0.1:4000"`.
    pub fn h2c(authority: &str) -> Result<Self, Error> {
        Self::checked(BaseUrl::from_authority(authority, false))
    }

    /// `https://host[:port]` gives [`Endpoint::tls`], `http://host[:port]` gives
    /// [`Endpoint::h2c`]. A trailing `/` is accepted; any other path is rejected.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::checked(BaseUrl::parse(url))
    }

    /// Receive windows: per stream and per connection, in bytes (defaults 2 MiB / 8 MiB).
    /// Values are clamped to HTTP/2's limits (at least 65,535 for the connection window).
    pub fn windows(mut self, stream: u32, conn: u32) -> Self {
        self.stream_window = stream.min(MAX_WINDOW);
        self.conn_window = conn.clamp(65_535, MAX_WINDOW);
        self
    }

    /// Keepalive PING interval and the time to wait for its ACK (defaults 10 s / 20 s).
    /// A zero interval disables keepalive.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = (!interval.is_zero()).then_some(interval);
        self.keepalive_timeout = timeout;
        self
    }

    /// Bound on TCP connect plus the TLS and HTTP/2 handshakes (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Extra trusted root certificates (for example a test CA), in addition to the defaults.
    pub fn tls_root_certificates(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.extra_roots = roots;
        self
    }

    /// At most this many calls in flight on the channel; more wait for a slot (bounded by
    /// each call's deadline). The peer's SETTINGS_MAX_CONCURRENT_STREAMS always applies too.
    pub fn max_concurrent_calls(mut self, max: usize) -> Self {
        self.max_concurrent_calls = Some(max.max(1));
        self
    }

    /// Bytes a call may queue for sending before `send` waits for the peer (default 1 MiB,
    /// at least 64 KiB).
    pub fn max_send_buffer(mut self, bytes: usize) -> Self {
        self.max_send_buffer = bytes.max(64 << 10);
        self
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        self.url.scheme()
    }

    /// `host:port`, as sent in `:authority`.
    pub fn authority(&self) -> String {
        self.url.authority()
    }

    pub(crate) fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        #[cfg(feature = "native-roots")]
        {
            // Unreadable native stores are not fatal: the compiled-in roots remain.
            let loaded = rustls_native_certs::load_native_certs();
            for cert in loaded.certs {
                let _ = roots.add(cert);
            }
        }
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .detail("invalid extra root certificate")
                    .source_err(e)
            })?;
        }
        // Choose the provider explicitly: the process-level default panics when several
        // providers are compiled into the binary.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Tls).source_err(e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_once_and_refusals_keep_their_reason() {
        let e = Endpoint::from_url("https://api2.cursor.sh").unwrap();
        assert_eq!(e.authority(), "api2.cursor.sh:443");
        assert_eq!(Endpoint::h2c("[::1]:80").unwrap().scheme(), "http");
        let error = Endpoint::h2c("host:notaport").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let source = std::error::Error::source(&error).expect("the parse error as source");
        assert!(
            source.to_string().contains("port is not 0-65535"),
            "{source}"
        );
    }

    #[test]
    fn windows_are_clamped() {
        let e = Endpoint::h2c("a:1").unwrap().windows(u32::MAX, 1);
        assert_eq!(e.stream_window, MAX_WINDOW);
        assert_eq!(e.conn_window, 65_535);
    }

    #[test]
    fn tls_config_has_alpn_h2() {
        let cfg = Endpoint::tls("example.com").unwrap().tls_config().unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
