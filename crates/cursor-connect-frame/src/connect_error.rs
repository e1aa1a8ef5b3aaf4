//! `ConnectError`: an RPC failure from the peer, the transport or this process.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use crate::code::Code;
use crate::error::FrameError;
use crate::metadata::Metadata;
use crate::reason::Reason;

/// Where an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// The peer reported it (error JSON, or an HTTP status).
    Remote,
    /// The connection or stream failed underneath the RPC (reset, go-away, I/O, timeout).
    Transport,
    /// This process produced it (a protocol violation detected here, a local limit, cancel).
    Local,
}

/// The kind of transport failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// The HTTP/2 stream was reset (RST_STREAM).
    Reset,
    /// The HTTP/2 connection was shut down (GOAWAY).
    GoAway,
    /// A socket or TLS I/O error.
    Io,
    /// A connect, idle or keepalive timeout.
    Timeout,
    /// The peer broke the HTTP/2 (or TLS) protocol.
    Protocol,
    /// The connection closed without an explicit reason.
    Closed,
}

/// Plain-data description of a transport failure, for classification without string matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TransportCause {
    /// What failed.
    pub kind: TransportKind,
    /// The HTTP/2 error code of the RST_STREAM or GOAWAY (RFC 9113 §7), e.g.
    /// [`Reason::REFUSED_STREAM`] or [`Reason::ENHANCE_YOUR_CALM`].
    pub reason: Option<Reason>,
    /// Whether the peer sent the RST_STREAM/GOAWAY (rather than this side).
    pub remote_initiated: bool,
    /// Whether any response byte (headers or data) had arrived.
    pub response_started: bool,
    /// Whether the request was provably not processed (REFUSED_STREAM, or a GOAWAY whose
    /// last-stream-id is below this stream's id), so it may be retried transparently.
    pub retry_safe: bool,
}

impl TransportCause {
    /// A cause of the given kind with no reason code and every flag false.
    pub const fn new(kind: TransportKind) -> Self {
        Self {
            kind,
            reason: None,
            remote_initiated: false,
            response_started: false,
            retry_safe: false,
        }
    }

    /// Sets the HTTP/2 error code.
    #[must_use]
    pub const fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Sets whether the peer initiated the reset/go-away.
    #[must_use]
    pub const fn remote(mut self, on: bool) -> Self {
        self.remote_initiated = on;
        self
    }

    /// Sets whether the response had started.
    #[must_use]
    pub const fn response_started(mut self, on: bool) -> Self {
        self.response_started = on;
        self
    }

    /// Sets whether the request is known not to have been processed.
    #[must_use]
    pub const fn retry_safe(mut self, on: bool) -> Self {
        self.retry_safe = on;
        self
    }
}

/// One entry of an error's `details`: a protobuf message name, its raw bytes, and the
/// human-readable `debug` JSON the peer may attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorDetail {
    type_name: String,
    value: Bytes,
    debug: Option<String>,
}

impl ErrorDetail {
    /// A detail of the fully qualified message `type_name` (e.g. `aiserver.v1.ErrorDetails`,
    /// without a `type.googleapis.com/` prefix) with its encoded bytes.
    pub fn new(type_name: impl Into<String>, value: Bytes) -> Self {
        Self {
            type_name: type_name.into(),
            value,
            debug: None,
        }
    }

    /// Attaches `debug` JSON text (written into the `debug` member when serialised; text that
    /// is not valid JSON is written as a JSON string).
    #[must_use]
    pub fn with_debug(mut self, debug: impl Into<String>) -> Self {
        self.debug = Some(debug.into());
        self
    }

    /// The message name (empty if the peer sent none).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The encoded message bytes (empty if the peer sent none, or sent a `value` that is not
    /// base64).
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The peer's `debug` member as compact JSON text, if it sent one.
    ///
    /// The protocol says clients must not depend on it; it is kept as a fallback for peers
    /// (like Cursor's captured errors) that send only `debug`, or a `value` that was cut.
    pub fn debug(&self) -> Option<&str> {
        self.debug.as_deref()
    }

    /// Decodes the value as the protobuf message `M` (the caller picks `M` by
    /// [`ErrorDetail::type_name`]).
    #[cfg(feature = "prost")]
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.value.clone())
    }
}

#[derive(Clone, Debug)]
struct Inner {
    code: Code,
    message: String,
    details: Vec<ErrorDetail>,
    metadata: Metadata,
    origin: Origin,
    wire: bool,
    cause: Option<TransportCause>,
    http_status: Option<StatusCode>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// An RPC error: a [`Code`], a message, optional details and metadata, and where it came from.
///
/// Cheap to move (one box) and to clone (the source is shared). `Display` is
/// `"<code>: <message>"` (just the code when the message is empty).
#[derive(Clone)]
pub struct ConnectError(Box<Inner>);

impl fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("ConnectError");
        d.field("code", &i.code)
            .field("message", &i.message)
            .field("origin", &i.origin)
            .field("wire", &i.wire);
        if !i.details.is_empty() {
            d.field("details", &i.details);
        }
        if !i.metadata.is_empty() {
            d.field("metadata", &i.metadata);
        }
        if let Some(c) = &i.cause {
            d.field("cause", c);
        }
        if let Some(s) = &i.http_status {
            d.field("http_status", s);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.message.is_empty() {
            f.write_str(self.0.code.as_str())
        } else {
            write!(f, "{}: {}", self.0.code, self.0.message)
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl ConnectError {
    fn build(code: Code, message: String, origin: Origin, wire: bool) -> Self {
        Self(Box::new(Inner {
            code,
            message,
            details: Vec::new(),
            metadata: Metadata::new(),
            origin,
            wire,
            cause: None,
            http_status: None,
            source: None,
        }))
    }

    /// An error produced by this process ([`Origin::Local`]).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self::build(code, message.into(), Origin::Local, false)
    }

    /// An error the peer sent as Connect error JSON ([`Origin::Remote`], `is_wire() == true`).
    pub fn remote(code: Code, message: impl Into<String>) -> Self {
        Self::build(code, message.into(), Origin::Remote, true)
    }

    /// A transport failure ([`Origin::Transport`]) with its cause as plain data.
    pub fn transport(code: Code, message: impl Into<String>, cause: TransportCause) -> Self {
        let mut e = Self::build(code, message.into(), Origin::Transport, false);
        e.0.cause = Some(cause);
        e
    }

    /// Interprets a non-200 unary response (connect-go's `validateResponse` order): the JSON
    /// error body if it has a valid code, otherwise the code inferred from the HTTP status
    /// ([`Code::from_http_status`]). A `content-encoding: gzip` body is inflated (up to 4 MiB)
    /// first. Headers become metadata (with `trailer-` prefixes stripped); the status is kept
    /// in [`ConnectError::http_status_seen`].
    pub fn from_unary_response(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Self {
        let inflated;
        let mut body = body;
        let gzipped = headers
            .get(http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        if gzipped && !body.is_empty() {
            let mut out = Vec::new();
            let mut gz = crate::Gzip::default();
            if crate::Compression::decompress(
                &mut gz,
                body,
                &mut out,
                crate::DEFAULT_MAX_MESSAGE_SIZE,
            )
            .is_ok()
            {
                inflated = out;
                body = &inflated;
            }
        }
        let mut err = match crate::end_stream::parse_unary_error(body) {
            Some((e, true)) => e,
            Some((mut e, false)) => {
                e.0.code = Code::from_http_status(status);
                e.0.wire = false;
                if e.0.message.is_empty() {
                    e.0.message = status_message(status);
                }
                e
            }
            None => {
                let mut e = Self::build(
                    Code::from_http_status(status),
                    status_message(status),
                    Origin::Remote,
                    false,
                );
                // A short plain-text body (a proxy's error page) is worth keeping.
                if let Ok(text) = std::str::from_utf8(body) {
                    let text = text.trim();
                    let printable = !text.chars().any(|c| c.is_control() && c != '\n');
                    if printable && !text.is_empty() && text.len() <= 512 && text != "null" {
                        e.0.message = format!("{}: {text}", e.0.message);
                    }
                }
                e
            }
        };
        err.0.http_status = Some(status);
        err.0.metadata.extend_from_headers(headers);
        err
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// The message (may be empty).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The error details, in wire order.
    pub fn details(&self) -> &[ErrorDetail] {
        &self.0.details
    }

    /// Headers/trailers attached to the error.
    pub fn metadata(&self) -> &Metadata {
        &self.0.metadata
    }

    /// Mutable access to the attached metadata.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.0.metadata
    }

    /// Where the error came from.
    pub fn origin(&self) -> Origin {
        self.0.origin
    }

    /// The transport cause, for [`Origin::Transport`] errors.
    pub fn transport_cause(&self) -> Option<&TransportCause> {
        self.0.cause.as_ref()
    }

    /// Whether the error was parsed from the peer's Connect error JSON (as opposed to inferred
    /// from an HTTP status or produced locally).
    pub fn is_wire(&self) -> bool {
        self.0.wire
    }

    /// The HTTP status of the response that carried (or implied) this error, if known.
    pub fn http_status_seen(&self) -> Option<StatusCode> {
        self.0.http_status
    }

    /// Appends a detail.
    #[must_use]
    pub fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.0.details.push(detail);
        self
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.0.metadata = metadata;
        self
    }

    /// Records the HTTP status the error arrived with.
    #[must_use]
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.0.http_status = Some(status);
        self
    }

    /// Sets the underlying cause returned by `source()`.
    #[must_use]
    pub fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.with_boxed_source(Box::new(source))
    }

    /// Sets the underlying cause from a boxed error.
    #[must_use]
    pub fn with_boxed_source(mut self, source: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        self.0.source = Some(Arc::from(source));
        self
    }

    /// Serialises the error as Connect error JSON: `code`, `message` (if not empty) and
    /// `details` (if any) with unpadded standard base64 values.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&crate::end_stream::error_to_value(self)).unwrap_or_default()
    }
}

fn status_message(status: StatusCode) -> String {
    let reason = status.canonical_reason().unwrap_or("unrecognized status");
    format!("HTTP status {} {reason}", status.as_u16())
}

impl From<FrameError> for ConnectError {
    /// A local error with the code from [`FrameError::code`] and the frame error as source.
    fn from(err: FrameError) -> Self {
        Self::new(err.code(), err.to_string()).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_source() {
        let e = ConnectError::new(Code::Internal, "boom");
        assert_eq!(e.to_string(), "internal: boom");
        assert!(e.source().is_none());
        assert_eq!(
            ConnectError::new(Code::Canceled, "").to_string(),
            "canceled"
        );

        let f: ConnectError = FrameError::MissingEndStream.into();
        assert_eq!(f.code(), Code::Internal);
        assert_eq!(f.origin(), Origin::Local);
        let src = f.source().unwrap().downcast_ref::<FrameError>();
        assert_eq!(src, Some(&FrameError::MissingEndStream));
        let g = f.clone();
        assert!(g.source().is_some(), "clone keeps the source");
    }

    #[test]
    fn transport_cause_builder() {
        let c = TransportCause::new(TransportKind::Reset)
            .with_reason(Reason::REFUSED_STREAM)
            .remote(true)
            .response_started(false)
            .retry_safe(true);
        let e = ConnectError::transport(Code::Unavailable, "refused", c);
        assert_eq!(e.origin(), Origin::Transport);
        assert_eq!(
            e.transport_cause().unwrap().reason,
            Some(Reason::REFUSED_STREAM)
        );
        assert!(e.transport_cause().unwrap().retry_safe);
        assert!(!e.is_wire());
    }

    #[test]
    fn remote_is_wire() {
        let e = ConnectError::remote(Code::NotFound, "x")
            .with_detail(ErrorDetail::new("a.B", Bytes::from_static(b"\x08\x01")))
            .with_http_status(StatusCode::OK);
        assert!(e.is_wire());
        assert_eq!(e.details()[0].type_name(), "a.B");
        assert_eq!(e.http_status_seen(), Some(StatusCode::OK));
    }
}
