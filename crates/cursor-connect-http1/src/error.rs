//! The transport's error type and its conversion into `ConnectError`.

use std::fmt;

use cursor_connect_frame::{Code, ConnectError, TransportCause, TransportKind};

/// What kind of failure ended a connection, a call or an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The endpoint or a request was invalid; nothing was sent. Fix the input.
    InvalidInput,
    /// The TCP connection could not be established. Nothing was sent; safe to retry.
    Connect,
    /// The TLS handshake failed, or the server selected a protocol other than `http/1.1`.
    Tls,
    /// The connection was lost or HTTP/1.1 failed on it (the peer closed, a malformed head).
    Io,
    /// The call's or append's deadline passed.
    Deadline,
    /// No byte arrived on a stream for longer than its idle timeout.
    Idle,
    /// The peer's answer broke HTTP/1.1 or the Connect protocol.
    Protocol,
    /// The stream or appender was already closed when it was used.
    Closed,
    /// A poll skipped a sequence number: server messages were lost.
    PollGap,
    /// A poll repeated a sequence number already delivered.
    DuplicateSeqno,
    /// No byte of a streamed response arrived within its first-byte timeout: something on the
    /// way seems to buffer whole responses (poll mode gets through it).
    Buffered,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid input",
            Self::Connect => "connection failed",
            Self::Tls => "tls handshake failed",
            Self::Io => "connection lost",
            Self::Deadline => "deadline exceeded",
            Self::Idle => "no data received within the idle timeout",
            Self::Protocol => "protocol error",
            Self::Closed => "closed",
            Self::PollGap => "poll gap",
            Self::DuplicateSeqno => "duplicate poll seqno",
            Self::Buffered => "streamed response buffered",
        }
    }
}

/// A transport failure, with the facts a retry policy needs kept as data.
///
/// Convert it into `ConnectError` with `From`: the kind, response progress and retry safety
/// become its `TransportCause`, and this error its `source()`.
pub struct Error {
    kind: ErrorKind,
    response_started: bool,
    retry_safe: bool,
    detail: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            response_started: false,
            retry_safe: false,
            detail: None,
            source: None,
        }
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub(crate) fn retry_safe(mut self, on: bool) -> Self {
        self.retry_safe = on;
        self
    }

    pub(crate) fn response_started(mut self, on: bool) -> Self {
        self.response_started = on;
        if on {
            self.retry_safe = false;
        }
        self
    }

    pub(crate) fn source_err(
        mut self,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(err));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// `true` if any response byte had arrived before the failure.
    pub fn is_response_started(&self) -> bool {
        self.response_started
    }

    /// `true` if the request provably never reached the server (no connection was made), so
    /// sending it again cannot duplicate its effects.
    pub fn is_retry_safe(&self) -> bool {
        self.retry_safe
    }

    fn code(&self) -> Code {
        match self.kind {
            ErrorKind::InvalidInput => Code::InvalidArgument,
            ErrorKind::Deadline => Code::DeadlineExceeded,
            ErrorKind::Protocol | ErrorKind::DuplicateSeqno => Code::Internal,
            ErrorKind::PollGap => Code::DataLoss,
            ErrorKind::Connect
            | ErrorKind::Tls
            | ErrorKind::Io
            | ErrorKind::Idle
            | ErrorKind::Buffered
            | ErrorKind::Closed => Code::Unavailable,
        }
    }

    /// The `TransportCause` this error converts to.
    pub fn transport_cause(&self) -> TransportCause {
        let kind = match self.kind {
            ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Io => TransportKind::Io,
            ErrorKind::Deadline | ErrorKind::Idle | ErrorKind::Buffered => TransportKind::Timeout,
            ErrorKind::Protocol
            | ErrorKind::InvalidInput
            | ErrorKind::PollGap
            | ErrorKind::DuplicateSeqno => TransportKind::Protocol,
            ErrorKind::Closed => TransportKind::Closed,
        };
        TransportCause::new(kind)
            .response_started(self.response_started)
            .retry_safe(self.retry_safe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("response_started", &self.response_started)
            .field("retry_safe", &self.retry_safe)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for ConnectError {
    fn from(e: Error) -> Self {
        Self::transport(e.code(), e.to_string(), e.transport_cause()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cursor_connect_frame::Origin;

    #[test]
    fn converts_with_cause_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::new(ErrorKind::Connect)
            .retry_safe(true)
            .source_err(io);
        let c = ConnectError::from(e);
        assert_eq!(c.code(), Code::Unavailable);
        assert_eq!(c.origin(), Origin::Transport);
        let cause = c.transport_cause().expect("cause");
        assert!(cause.retry_safe && !cause.response_started);
        assert!(std::error::Error::source(&c).is_some());
        let e = Error::new(ErrorKind::Io)
            .retry_safe(true)
            .response_started(true);
        assert!(!e.is_retry_safe());
    }
}
