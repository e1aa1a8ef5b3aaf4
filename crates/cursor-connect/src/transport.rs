//! Which transport carries agent runs, and how `Auto` chooses it (as Cursor's SDK does).

use std::fmt;

use cursor_connect_frame::{ConnectError, TransportKind};

/// The transport of agent runs, set with
/// [`ClientBuilder::transport`](crate::ClientBuilder::transport).
///
/// Every transport gives the same [`Run`](crate::Run) API and events; only the wire differs.
/// The default is [`Transport::Http2`] (no extra server-config call); choose `Auto` to be
/// steered by the server like Cursor's SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Follow the server config's `http2_config` (fetched over HTTP/1.1 as the SDK does, on
    /// the first run, then cached and refreshed every 30 minutes): forced off → HTTP/1.1
    /// streaming, forced on → HTTP/2, unspecified → HTTP/2 for `https://`, HTTP/1.1 for
    /// `http://`. When HTTP/2 cannot be had (ALPN without `h2`, an HTTP/2 connection error
    /// before any stream) the run falls back to HTTP/1.1 streaming and later runs stay there
    /// for 5 minutes before HTTP/2 is tried again; each fallback is logged once (`warn`) and
    /// reported by [`Run::fallback_reason`](crate::Run::fallback_reason).
    Auto,
    /// One HTTP/2 bidi stream (`agent.v1.AgentService/Run`).
    #[default]
    Http2,
    /// HTTP/1.1: a `RunSSE` server stream plus one `BidiAppend` call per client message.
    Http1Stream,
    /// HTTP/1.1 long polling (`RunPoll` + `BidiPoll`). Not implemented yet: a client built
    /// with it fails its runs with a usage error.
    Http1Poll,
}

impl Transport {
    /// A short lowercase name (`auto`, `http2`, `http1-stream`, `http1-poll`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Http2 => "http2",
            Self::Http1Stream => "http1-stream",
            Self::Http1Poll => "http1-poll",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `Auto` decided, with the reason when it is not HTTP/2.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) transport: Transport,
    pub(crate) reason: Option<String>,
}

/// The transport the server config's `Http2Config` asks for; `None` when unspecified.
pub(crate) fn from_http2_config(value: i32) -> Option<(Transport, &'static str)> {
    match value {
        1 => Some((Transport::Http1Stream, "server config FORCE_ALL_DISABLED")),
        3 => Some((Transport::Http1Stream, "server config FORCE_BIDI_DISABLED")),
        2 | 4 => Some((Transport::Http2, "server config forces HTTP/2")),
        _ => None,
    }
}

/// `true` when an HTTP/2 open failed in a way that says HTTP/2 itself is not available here
/// (TLS/ALPN, handshake, connection refused or lost, a protocol error) before any response.
pub(crate) fn http2_unavailable(e: &ConnectError) -> bool {
    e.transport_cause().is_some_and(|c| {
        !c.response_started
            && matches!(
                c.kind,
                TransportKind::Io | TransportKind::Protocol | TransportKind::GoAway
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_mapping() {
        assert_eq!(
            from_http2_config(1).map(|c| c.0),
            Some(Transport::Http1Stream)
        );
        assert_eq!(
            from_http2_config(3).map(|c| c.0),
            Some(Transport::Http1Stream)
        );
        assert_eq!(from_http2_config(2).map(|c| c.0), Some(Transport::Http2));
        assert_eq!(from_http2_config(4).map(|c| c.0), Some(Transport::Http2));
        assert_eq!(from_http2_config(0), None);
        assert_eq!(Transport::Http1Stream.to_string(), "http1-stream");
    }
}
