//! One HTTP/1.1 GET with a deadline and a bounded body, over TLS (webpki roots) or cleartext:
//! all the login poll needs, without a general HTTP client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest answer read.
const MAX_BODY: usize = 64 << 10;

/// Why a GET failed (before any status arrived, or while reading the body).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The URL is not `http://` or `https://` with a host.
    #[error("invalid url {0:?}")]
    Url(String),
    /// Connecting, TLS or the exchange failed.
    #[error("request to {host} failed")]
    Io {
        /// The host.
        host: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer within the deadline.
    #[error("no answer from {0} in time")]
    Timeout(String),
}

/// A status and a body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: http::StatusCode,
    /// Body (at most 64 KiB).
    pub body: Bytes,
}

/// `GET url` with `deadline` for the whole exchange.
pub async fn get(url: &str, deadline: Duration) -> Result<Answer, GetError> {
    let uri: http::Uri = url.parse().map_err(|_| GetError::Url(url.to_owned()))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(GetError::Url(url.to_owned())),
    };
    let host = uri
        .host()
        .ok_or_else(|| GetError::Url(url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let exchange = exchange(&uri, &host, port, tls);
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| GetError::Timeout(host.clone()))?
        .map_err(|source| GetError::Io { host, source })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn exchange(uri: &http::Uri, host: &str, port: u16, tls: bool) -> Result<Answer, BoxError> {
    let tcp = TcpStream::connect((host, port)).await?;
    let authority = uri.authority().map_or(host, |a| a.as_str()).to_owned();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(
            http::header::USER_AGENT,
            concat!("cursor-proxy/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())?;
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
        let stream = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<T>(io: T, request: http::Request<Empty<Bytes>>) -> Result<Answer, BoxError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection task ends with the exchange (the sender is dropped on return).
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(request).await?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok(Answer { status, body })
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Explicit provider: the process default panics when several are compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
