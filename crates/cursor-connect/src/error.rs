//! The client's error type.

use std::fmt;
use std::sync::Arc;

use cursor_connect_classify::{Classification, Context, classify};
use cursor_connect_frame::{Code, ConnectError, TransportCause, TransportKind};

/// What went wrong, broadly. The variant tells the caller what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The call failed with a Connect error (from the peer, the transport, or a local
    /// deadline); see [`Error::connect_error`] and [`Error::classification`].
    Call,
    /// No inbound frame arrived within the stall timeout; retrying elsewhere is reasonable.
    Stalled,
    /// The stream ended (cleanly) without the `turn_ended` update: the answer is incomplete.
    MissingTurnEnded,
    /// The peer sent bytes that are not a valid message of the expected type.
    Protocol,
    /// The client's configuration is invalid (bad URL, header value, ...); fix the builder call.
    Config,
    /// Credentials are missing, unreadable or expired and could not be refreshed.
    Credentials,
    /// The caller used the API wrongly (unknown tool call id, run already finished).
    Usage,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    connect: Option<ConnectError>,
    classification: Option<Classification>,
    before_output: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The error every fallible call of this crate returns.
///
/// Cheap to clone (an `Arc` inside), so a run can hand out the same error on every poll after
/// it failed. Call failures carry the underlying [`ConnectError`] (with its decoded details) and
/// the classifier's [`Classification`] (HTTP status, category, retry advice).
#[derive(Clone)]
pub struct Error(Arc<Inner>);

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let classification = Some(classify(&local_error(kind, &message), Context::new()));
        Self(Arc::new(Inner {
            kind,
            message,
            connect: None,
            classification,
            before_output: false,
            source: None,
        }))
    }

    /// A call failure from a Connect error, classified like the client's own (for alternative
    /// transports and test doubles that stand in for a run). `before_output` says whether any
    /// answer event had been produced when it failed.
    pub fn from_connect_error(err: ConnectError, before_output: bool) -> Self {
        Self::call(ErrorKind::Call, err, before_output)
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let mut e = Self::new(kind, message);
        if let Some(inner) = Arc::get_mut(&mut e.0) {
            inner.source = Some(Arc::new(source));
        }
        e
    }

    /// Wraps a Connect error and classifies it. `before_output` says whether any event of the
    /// answer (text, thinking, tool call) had been produced when it failed.
    pub(crate) fn call(kind: ErrorKind, err: ConnectError, before_output: bool) -> Self {
        let ctx = Context::new().with_response_started(!before_output);
        let classification = classify(&err, ctx);
        Self(Arc::new(Inner {
            kind,
            message: err.to_string(),
            connect: Some(err),
            classification: Some(classification),
            before_output,
            source: None,
        }))
    }

    /// A failure of a legacy ChatService call: classified with `Context::legacy_chat`, so its
    /// sunset answers read as an outdated client/service, and the classifier's hint (use the
    /// agent service) appended to the message.
    pub(crate) fn legacy_call(err: ConnectError, before_output: bool) -> Self {
        let ctx = Context::new()
            .with_response_started(!before_output)
            .with_legacy_chat(true);
        let classification = classify(&err, ctx);
        let message = match classification.hint() {
            Some(hint) => format!("{err} ({hint})"),
            None => err.to_string(),
        };
        Self(Arc::new(Inner {
            kind: ErrorKind::Call,
            message,
            connect: Some(err),
            classification: Some(classification),
            before_output,
            source: None,
        }))
    }

    /// The broad kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The Connect error behind a call failure (also set for stalls and truncated streams,
    /// as a local or transport error), with its code, message, details and metadata.
    pub fn connect_error(&self) -> Option<&ConnectError> {
        self.0.connect.as_ref()
    }

    /// The classifier's verdict: HTTP status, category, advice. Call failures are classified
    /// from their [`Error::connect_error`]; every other kind from the local Connect error its
    /// kind stands for (a stall is a timeout, a protocol error a transport failure, a
    /// credentials error `unauthenticated`, a configuration or usage error `internal`), so it
    /// is always `Some`.
    pub fn classification(&self) -> Option<&Classification> {
        self.0.classification.as_ref()
    }

    /// True when the failure happened before the run produced any output event, so a retry
    /// (possibly on another account) is invisible to whoever consumes the events.
    pub fn is_before_output(&self) -> bool {
        self.0.before_output
    }

    /// The decoded `aiserver.v1.ErrorDetails` of the first matching detail, if any.
    pub fn error_details(&self) -> Option<cursor_proto::aiserver::v1::ErrorDetails> {
        let err = self.0.connect.as_ref()?;
        err.details().iter().find_map(|d| {
            let name = d.type_name();
            if name == "aiserver.v1.ErrorDetails" || name.ends_with("/aiserver.v1.ErrorDetails") {
                prost::Message::decode(d.value().clone()).ok()
            } else {
                None
            }
        })
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A credentials error, for [`Refresh`](crate::Refresh) implementations to report that
    /// a token could not be obtained.
    pub fn credentials(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Credentials, message)
    }

    /// A credentials error with its cause (an HTTP client error, an I/O error, ...).
    pub fn credentials_with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::with_source(ErrorKind::Credentials, message, source)
    }

    pub(crate) fn protocol(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::with_source(ErrorKind::Protocol, message, source)
    }
}

/// The local Connect error an error of `kind` without one stands for, for classification.
fn local_error(kind: ErrorKind, message: &str) -> ConnectError {
    let transport = |code, kind| ConnectError::transport(code, message, TransportCause::new(kind));
    match kind {
        ErrorKind::Stalled => transport(Code::DeadlineExceeded, TransportKind::Timeout),
        ErrorKind::MissingTurnEnded | ErrorKind::Protocol => {
            transport(Code::Internal, TransportKind::Protocol)
        }
        ErrorKind::Credentials => ConnectError::new(Code::Unauthenticated, message),
        ErrorKind::Call | ErrorKind::Config | ErrorKind::Usage => {
            ConnectError::new(Code::Internal, message)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(c) = &self.0.connect {
            d.field("connect", c);
        }
        if let Some(c) = &self.0.classification {
            d.field("classification", c);
        }
        d.field("before_output", &self.0.before_output).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0.kind {
            ErrorKind::Call => "call failed",
            ErrorKind::Stalled => "stream stalled",
            ErrorKind::MissingTurnEnded => "stream ended without turn_ended",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Credentials => "credentials error",
            ErrorKind::Usage => "invalid use",
        };
        if self.0.message.is_empty() {
            f.write_str(what)
        } else {
            write!(f, "{what}: {}", self.0.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(c) = &self.0.connect {
            return Some(c);
        }
        self.0
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use cursor_connect_classify::Category;

    use super::*;

    #[test]
    fn every_error_is_classified() {
        let cases = [
            (ErrorKind::Stalled, Category::DeadlineExceeded, true),
            (ErrorKind::Protocol, Category::Transport, true),
            (ErrorKind::Credentials, Category::Unauthenticated, true),
            (ErrorKind::Config, Category::Internal, true),
        ];
        for (kind, category, retryable) in cases {
            let c = Error::new(kind, "x").classification().cloned().unwrap();
            assert_eq!(c.category(), category, "{kind:?}");
            assert_eq!(c.advice().is_retryable(), retryable, "{kind:?}");
        }
        let e = Error::from_connect_error(ConnectError::remote(Code::ResourceExhausted, "q"), true);
        assert_eq!(e.kind(), ErrorKind::Call);
        assert_eq!(e.classification().unwrap().status(), 429);
        assert!(e.is_before_output() && std::error::Error::source(&e).is_some());
    }
}
