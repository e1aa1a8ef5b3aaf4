//! `Error` -> `ConnectError`: the code is chosen from typed data (kind and HTTP/2 reason),
//! and the facts are kept as a `TransportCause`.

use cursor_connect_frame::{Code, ConnectError, Reason, TransportCause, TransportKind};

use crate::error::{Error, ErrorKind};

/// The Connect code for an HTTP/2 error code (the table connect-go, connect-es and tonic
/// share), except that NO_ERROR before the end of a call means the transport went away:
/// `unavailable`, not a protocol failure (connect-es#1751).
fn code_for_reason(reason: Reason) -> Code {
    match reason {
        Reason::NO_ERROR | Reason::REFUSED_STREAM => Code::Unavailable,
        Reason::CANCEL => Code::Canceled,
        Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        Reason::INADEQUATE_SECURITY | Reason::HTTP_1_1_REQUIRED => Code::PermissionDenied,
        _ => Code::Internal,
    }
}

pub(crate) fn code_for(e: &Error) -> Code {
    match e.kind() {
        ErrorKind::InvalidInput => Code::InvalidArgument,
        ErrorKind::Connect
        | ErrorKind::Tls
        | ErrorKind::Io
        | ErrorKind::Keepalive
        | ErrorKind::Idle
        | ErrorKind::Closed => Code::Unavailable,
        ErrorKind::Deadline => Code::DeadlineExceeded,
        ErrorKind::Reset | ErrorKind::GoAway => {
            e.reason().map_or(Code::Unavailable, code_for_reason)
        }
        ErrorKind::Protocol => e.reason().map_or(Code::Internal, code_for_reason),
    }
}

fn transport_kind(kind: ErrorKind) -> TransportKind {
    match kind {
        ErrorKind::Reset => TransportKind::Reset,
        ErrorKind::GoAway => TransportKind::GoAway,
        ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Io => TransportKind::Io,
        ErrorKind::Keepalive | ErrorKind::Deadline | ErrorKind::Idle => TransportKind::Timeout,
        ErrorKind::Protocol | ErrorKind::InvalidInput => TransportKind::Protocol,
        ErrorKind::Closed => TransportKind::Closed,
    }
}

impl Error {
    /// The `TransportCause` this error converts to.
    pub fn transport_cause(&self) -> TransportCause {
        let mut cause = TransportCause::new(transport_kind(self.kind()))
            .remote(self.is_remote())
            .response_started(self.response_started())
            .retry_safe(self.is_retry_safe());
        if let Some(r) = self.reason() {
            cause = cause.with_reason(r);
        }
        cause
    }
}

impl From<Error> for ConnectError {
    fn from(e: Error) -> Self {
        Self::transport(code_for(&e), e.to_string(), e.transport_cause()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cursor_connect_frame::Origin;

    #[test]
    fn refused_stream_maps_to_unavailable_and_retry_safe() {
        let e = Error::new(ErrorKind::Reset)
            .with_reason(Reason::REFUSED_STREAM)
            .remote(true)
            .retry_safe(true);
        let c = ConnectError::from(e);
        assert_eq!(c.code(), Code::Unavailable);
        assert_eq!(c.origin(), Origin::Transport);
        let cause = c.transport_cause().expect("cause");
        assert_eq!(cause.kind, TransportKind::Reset);
        assert_eq!(cause.reason, Some(Reason::REFUSED_STREAM));
        assert!(cause.remote_initiated && cause.retry_safe && !cause.response_started);
        assert!(std::error::Error::source(&c).is_some());
    }

    #[test]
    fn reason_table() {
        let code = |k, r| code_for(&Error::new(k).with_reason(Reason::new(r)));
        assert_eq!(code(ErrorKind::Reset, 0x8), Code::Canceled);
        assert_eq!(code(ErrorKind::Reset, 0x2), Code::Internal);
        assert_eq!(code(ErrorKind::GoAway, 0xb), Code::ResourceExhausted);
        assert_eq!(code(ErrorKind::GoAway, 0x0), Code::Unavailable);
        assert_eq!(code(ErrorKind::Reset, 0xd), Code::PermissionDenied);
        assert_eq!(
            code_for(&Error::new(ErrorKind::Deadline)),
            Code::DeadlineExceeded
        );
        assert_eq!(code_for(&Error::new(ErrorKind::Idle)), Code::Unavailable);
    }
}
