//! The transport's error type: what failed, who initiated it, and whether a retry is safe.

use std::fmt;
use std::io;

use cursor_connect_frame::Reason;

/// What kind of failure ended a connection or call.
///
/// Callers usually only need [`Error::is_retry_safe`] and the conversion into
/// `ConnectError`; the kind is there for logs and for finer retry policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The endpoint or a request header was invalid; nothing was sent. Fix the input.
    InvalidInput,
    /// The TCP connection or the HTTP/2 handshake could not be established. Nothing was sent.
    Connect,
    /// The TLS handshake failed, or the server did not select ALPN `h2`. Nothing was sent.
    Tls,
    /// The stream was reset with RST_STREAM (see [`Error::reason`] and [`Error::is_remote`]).
    Reset,
    /// The connection was shut down with GOAWAY (see [`Error::reason`]).
    GoAway,
    /// The connection was lost: the peer closed the socket or the socket failed.
    Io,
    /// The peer did not answer a keepalive PING in time; the connection was closed.
    Keepalive,
    /// The call's deadline passed.
    Deadline,
    /// No byte arrived on the call for longer than its idle timeout.
    Idle,
    /// The peer violated HTTP/2 or the Connect protocol.
    Protocol,
    /// The call or channel was already closed when it was used.
    Closed,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid input",
            Self::Connect => "connection failed",
            Self::Tls => "tls handshake failed",
            Self::Reset => "stream reset",
            Self::GoAway => "connection shut down (goaway)",
            Self::Io => "connection lost",
            Self::Keepalive => "keepalive ping timed out",
            Self::Deadline => "deadline exceeded",
            Self::Idle => "no data received within the idle timeout",
            Self::Protocol => "protocol error",
            Self::Closed => "closed",
        }
    }
}

/// A transport failure, with the facts a retry policy needs kept as data.
///
/// Convert it into `cursor_connect_frame::ConnectError` with `From`; the HTTP/2 reason,
/// initiator, response-started and retry-safety flags become its `TransportCause`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    reason: Option<Reason>,
    remote: bool,
    response_started: bool,
    retry_safe: bool,
    detail: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                reason: None,
                remote: false,
                response_started: false,
                retry_safe: false,
                detail: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_reason(mut self, reason: Reason) -> Self {
        self.inner.reason = Some(reason);
        self
    }

    pub(crate) fn remote(mut self, remote: bool) -> Self {
        self.inner.remote = remote;
        self
    }

    pub(crate) fn retry_safe(mut self, safe: bool) -> Self {
        self.inner.retry_safe = safe;
        self
    }

    /// Records how far the response got before the failure: `headers` if response headers
    /// arrived, `data` if any response DATA (a message or part of one) arrived.
    ///
    /// Once the server answered it has usually processed (part of) the request, so retry
    /// safety is cleared, with one exception: a peer's RST_STREAM REFUSED_STREAM after only
    /// headers. RFC 9113 §8.7 says REFUSED_STREAM means the stream was closed before any
    /// application processing, whatever was sent before it. Response data is different: the
    /// server visibly produced output, so a retry could duplicate its effects.
    pub(crate) fn set_response_progress(mut self, headers: bool, data: bool) -> Self {
        self.inner.response_started = headers || data;
        if data || (headers && !self.is_refused_stream()) {
            self.inner.retry_safe = false;
        }
        self
    }

    /// `true` for a peer's RST_STREAM with REFUSED_STREAM (0x7).
    fn is_refused_stream(&self) -> bool {
        self.inner.kind == ErrorKind::Reset
            && self.inner.remote
            && self.inner.reason == Some(Reason::REFUSED_STREAM)
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn source_err(
        mut self,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(err));
        self
    }

    /// Classifies an error reported by `h2` using its typed flags (never its message).
    ///
    /// `h2` reports a remote GOAWAY on a stream it never sent to the peer's application (the
    /// stream id is above GOAWAY's last-stream-id) as `is_go_away() && is_remote()`; such a
    /// request was provably not processed, so it is retry safe. REFUSED_STREAM is too
    /// (RFC 9113 §8.7).
    pub(crate) fn from_h2(err: h2::Error) -> Self {
        let reason = err.reason().map(reason_from_h2);
        let remote = err.is_remote();
        let refused = reason == Some(Reason::REFUSED_STREAM);
        let kind = if err.is_reset() {
            ErrorKind::Reset
        } else if err.is_go_away() {
            if err.is_library() {
                // We detected the violation and closed the connection ourselves.
                ErrorKind::Protocol
            } else {
                ErrorKind::GoAway
            }
        } else if err.is_io() {
            ErrorKind::Io
        } else if reason.is_some() {
            ErrorKind::Protocol
        } else {
            // User errors (e.g. "inactive stream") mean the stream is already gone.
            ErrorKind::Closed
        };
        let retry_safe = remote && (refused || kind == ErrorKind::GoAway);
        let mut e = Self::new(kind).remote(remote).retry_safe(retry_safe);
        if let Some(io) = err.get_io() {
            e = e.detail(io.to_string());
        }
        if let Some(r) = reason {
            e = e.with_reason(r);
        }
        e.source_err(H2Source(err))
    }

    pub(crate) fn from_io(kind: ErrorKind, err: io::Error) -> Self {
        Self::new(kind).source_err(err)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP/2 error code (RFC 9113 §7) of the RST_STREAM or GOAWAY, if there was one.
    pub fn reason(&self) -> Option<Reason> {
        self.inner.reason
    }

    /// `true` if the peer initiated the failure (it sent the RST_STREAM or GOAWAY).
    pub fn is_remote(&self) -> bool {
        self.inner.remote
    }

    /// `true` if any response byte (headers or data) had arrived before the failure.
    pub fn response_started(&self) -> bool {
        self.inner.response_started
    }

    /// `true` if the request was provably not processed by the server, so sending it again
    /// (on a new stream or connection) cannot duplicate its effects. A peer's REFUSED_STREAM
    /// stays retry safe after response headers (RFC 9113 §8.7), but not after response data.
    pub fn is_retry_safe(&self) -> bool {
        self.inner.retry_safe
    }

    /// `true` for the call-deadline and idle timeouts.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Deadline | ErrorKind::Idle | ErrorKind::Keepalive
        )
    }

    /// Returns a copy that keeps every flag but not the source (sources are not `Clone`).
    pub(crate) fn shallow_clone(&self) -> Self {
        let i = &self.inner;
        Self {
            inner: Box::new(Inner {
                kind: i.kind,
                reason: i.reason,
                remote: i.remote,
                response_started: i.response_started,
                retry_safe: i.retry_safe,
                detail: i.detail.clone(),
                source: i.source.as_deref().map(clone_source),
            }),
        }
    }
}

/// Rebuilds a source for a copy: an `io::Error` in the chain keeps its kind (so callers can
/// still tell a TCP reset from an EOF), anything else keeps its text.
fn clone_source(
    src: &(dyn std::error::Error + Send + Sync + 'static),
) -> Box<dyn std::error::Error + Send + Sync> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(src);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return Box::new(io::Error::new(io.kind(), io.to_string()));
        }
        cur = c.source();
    }
    Box::new(SourceText(src.to_string()))
}

/// `h2`'s reason as ours (the same RFC 9113 code; `h2` types stay inside this crate).
pub(crate) fn reason_from_h2(reason: h2::Reason) -> Reason {
    Reason::new(u32::from(reason))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.write_str(i.kind.describe())?;
        if let Some(r) = i.reason {
            write!(
                f,
                " ({} {:#x})",
                r.name().unwrap_or("unknown code"),
                r.code()
            )?;
        }
        if matches!(i.kind, ErrorKind::Reset | ErrorKind::GoAway) {
            f.write_str(if i.remote { " by peer" } else { " locally" })?;
        }
        if let Some(d) = &i.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Error")
            .field("kind", &i.kind)
            .field("reason", &i.reason)
            .field("remote", &i.remote)
            .field("response_started", &i.response_started)
            .field("retry_safe", &i.retry_safe)
            .field("detail", &i.detail)
            .field("source", &i.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Wraps `h2::Error` so that its io cause stays reachable through `source()` (h2's own
/// error type does not implement `source`).
#[derive(Debug)]
struct H2Source(h2::Error);

impl fmt::Display for H2Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h2: {}", self.0)
    }
}

impl std::error::Error for H2Source {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .get_io()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The rendered text of a source that could not be cloned.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn refused_stream_is_retry_safe() {
        let e = Error::new(ErrorKind::Reset)
            .with_reason(Reason::REFUSED_STREAM)
            .remote(true)
            .retry_safe(true);
        assert!(e.is_retry_safe());
        assert_eq!(e.to_string(), "stream reset (REFUSED_STREAM 0x7) by peer");
    }

    #[test]
    fn response_started_clears_retry_safety() {
        let e = Error::new(ErrorKind::GoAway)
            .retry_safe(true)
            .set_response_progress(true, false);
        assert!(!e.is_retry_safe());
        assert!(e.response_started());
    }

    #[test]
    fn refused_stream_after_headers_only_stays_retry_safe() {
        let refused = || {
            Error::new(ErrorKind::Reset)
                .with_reason(Reason::REFUSED_STREAM)
                .remote(true)
                .retry_safe(true)
        };
        let e = refused().set_response_progress(true, false);
        assert!(e.is_retry_safe() && e.response_started());
        let e = refused().set_response_progress(true, true);
        assert!(!e.is_retry_safe() && e.response_started());
        // A local REFUSED_STREAM reset proves nothing about the server.
        let e = Error::new(ErrorKind::Reset)
            .with_reason(Reason::REFUSED_STREAM)
            .retry_safe(true)
            .set_response_progress(true, false);
        assert!(!e.is_retry_safe());
    }

    #[test]
    fn io_source_is_reachable() {
        let e = Error::from_io(
            ErrorKind::Connect,
            io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        );
        let src = e.source().expect("source");
        assert_eq!(src.to_string(), "refused");
        assert!(e.shallow_clone().source().is_some());
    }
}
