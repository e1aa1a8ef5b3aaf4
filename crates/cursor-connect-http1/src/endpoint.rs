//! Where and how to connect: address, TLS or cleartext, timeouts, extra roots.

use std::sync::Arc;
use std::time::Duration;

use cursor_connect_frame::BaseUrl;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error::{Error, ErrorKind};

/// Default timeout for TCP connect plus the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of idle keep-alive connections kept per channel.
pub const DEFAULT_MAX_IDLE: usize = 32;

/// Connection settings for a [`Channel`](crate::Channel).
///
/// ```
/// use cursor_connect_http1::Endpoint;
///
/// let ep = Endpoint::from_url("http://127.0.0.1:4000")?;
/// assert_eq!(ep.authority(), "127.0.0.1:4000");
/// assert_eq!(ep.scheme(), "http");
/// # Ok::<(), cursor_connect_http1::Error>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) url: BaseUrl,
    pub(crate) connect_timeout: Duration,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) max_idle: usize,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("scheme", &self.scheme())
            .field("authority", &self.authority())
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_roots", &self.extra_roots.len())
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

impl Endpoint {
    /// `https://host[:port]` (TLS, ALPN `http/1.1`) or `http://host[:port]` (cleartext). A
    /// trailing `/` is accepted; any other path is rejected.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let url = BaseUrl::parse(url).map_err(|e| {
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
        Ok(Self {
            url,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_roots: Vec::new(),
            max_idle: DEFAULT_MAX_IDLE,
        })
    }

    /// Bound on TCP connect plus the TLS handshake (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Extra trusted root certificates (for example a test CA), in addition to the defaults.
    pub fn tls_root_certificates(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.extra_roots = roots;
        self
    }

    /// How many idle keep-alive connections the channel keeps for reuse (default 32).
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        self.url.scheme()
    }

    /// `host:port`, as sent in `Host`.
    pub fn authority(&self) -> String {
        self.url.authority()
    }

    pub(crate) fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .detail("invalid extra root certificate")
                    .source_err(e)
            })?;
        }
        // Explicit provider: the process default panics when several are compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Tls).source_err(e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_once_and_refusals_keep_their_reason() {
        let e = Endpoint::from_url("http://[::1]:8/").unwrap();
        assert_eq!((e.scheme(), e.authority().as_str()), ("http", "[::1]:8"));
        let error = Endpoint::from_url("http://a@b").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let source = std::error::Error::source(&error).expect("the parse error as source");
        assert!(
            source.to_string().contains("only scheme, host and port"),
            "{source}"
        );
    }

    #[test]
    fn tls_offers_http1_only() {
        let cfg = Endpoint::from_url("https://example.com")
            .unwrap()
            .tls_config()
            .unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
