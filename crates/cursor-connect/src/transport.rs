//! Which transport carries agent runs, and how `Auto` chooses it (as Cursor's SDK does).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::{ConnectError, TransportKind};
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;

use crate::client::ClientInner;
use crate::error::{Error, ErrorKind};
use crate::ids::RequestIds;

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
    /// for 5 minutes before HTTP/2 is tried again. When no byte of a streamed HTTP/1.1 response
    /// arrives within half the stall timeout (something on the way buffers responses), the run
    /// moves on to [`Transport::Http1Poll`], and so do later runs for 5 minutes. Each fallback
    /// is logged once (`warn`) and reported by
    /// [`Run::fallback_reason`](crate::Run::fallback_reason).
    Auto,
    /// One HTTP/2 bidi stream (`agent.v1.AgentService/Run`).
    #[default]
    Http2,
    /// HTTP/1.1: a `RunSSE` server stream plus one `BidiAppend` call per client message.
    Http1Stream,
    /// HTTP/1.1 long polling: `RunPoll` requests (`BidiPollRequest`, answered with
    /// `BidiPollResponse`s numbered from 0 and ended by `eof`) plus one `BidiAppend` call per
    /// client message. For networks whose proxies buffer streamed responses. Cursor has not
    /// been seen answering `RunPoll`; the mock serves it as `cursor_connect_http1` reads it.
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

/// `true` when `e` says a streamed HTTP/1.1 response was held back by something that buffers
/// (no byte within the first-byte window).
pub(crate) fn stream_buffered(e: &ConnectError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<cursor_connect_http1::Error>())
        .is_some_and(|h| h.kind() == cursor_connect_http1::ErrorKind::Buffered)
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

/// How long `Auto` trusts a fetched server config before asking again.
const AUTO_CONFIG_REFRESH: Duration = Duration::from_secs(30 * 60);
/// How long `Auto` stays on HTTP/1.1 after HTTP/2 failed before trying HTTP/2 again.
const HTTP2_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

impl ClientInner {
    /// The transport the next run should use (`Http2` or `Http1Stream`).
    pub(crate) async fn transport_choice(&self) -> Result<Choice, Error> {
        let fixed = |transport| {
            Ok(Choice {
                transport,
                reason: None,
            })
        };
        match self.transport {
            Transport::Http2 => fixed(Transport::Http2),
            Transport::Http1Stream => fixed(Transport::Http1Stream),
            Transport::Http1Poll => fixed(Transport::Http1Poll),
            Transport::Auto => {
                let down = self.http2_down.lock().ok().and_then(|g| {
                    g.as_ref()
                        .filter(|(at, _)| at.elapsed() < HTTP2_RETRY_AFTER)
                        .map(|(_, r)| r.clone())
                });
                if let Some(reason) = down {
                    return Ok(self.poll_if_buffered(Choice {
                        transport: Transport::Http1Stream,
                        reason: Some(reason),
                    }));
                }
                let mut cached = self.auto_choice.lock().await;
                if let Some((at, choice)) = cached.as_ref()
                    && at.elapsed() < AUTO_CONFIG_REFRESH
                {
                    return Ok(self.poll_if_buffered(choice.clone()));
                }
                let choice = self.resolve_auto().await;
                *cached = Some((tokio::time::Instant::now(), choice.clone()));
                Ok(self.poll_if_buffered(choice))
            }
        }
    }

    /// `choice`, or polling instead of HTTP/1.1 streaming while streamed responses were
    /// recently found buffered.
    fn poll_if_buffered(&self, choice: Choice) -> Choice {
        if choice.transport != Transport::Http1Stream {
            return choice;
        }
        let buffered = self.stream_buffered.lock().ok().and_then(|g| {
            g.as_ref()
                .filter(|(at, _)| at.elapsed() < HTTP2_RETRY_AFTER)
                .map(|(_, r)| r.clone())
        });
        match buffered {
            Some(reason) => Choice {
                transport: Transport::Http1Poll,
                reason: Some(reason),
            },
            None => choice,
        }
    }

    /// Records that a streamed HTTP/1.1 response came buffered; runs poll for a while. Logged
    /// once per fallback.
    pub(crate) fn stream_was_buffered(&self, e: &ConnectError) {
        let reason = format!("HTTP/1.1 streamed response buffered on the way: {e}");
        let Ok(mut g) = self.stream_buffered.lock() else {
            return;
        };
        if g.as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= HTTP2_RETRY_AFTER)
        {
            tracing::warn!(
                reason = reason.as_str(),
                "falling back to HTTP/1.1 polling for agent runs"
            );
            *g = Some((tokio::time::Instant::now(), reason));
        }
    }

    /// Reads `http2_config` from `GetServerConfig` (over HTTP/1.1, as the SDK fetches it).
    async fn resolve_auto(&self) -> Choice {
        let by_scheme = || {
            if self.agent_tls {
                Choice {
                    transport: Transport::Http2,
                    reason: None,
                }
            } else {
                Choice {
                    transport: Transport::Http1Stream,
                    reason: Some("plain http:// agent host and no server preference".to_owned()),
                }
            }
        };
        let config = async {
            let token = self.credentials.current().await?;
            let headers = self.header_config.headers(&token, &RequestIds::new())?;
            let body = Bytes::from(ai::GetServerConfigRequest::default().encode_to_vec());
            let path = cursor_proto::paths::AISERVER_GET_SERVER_CONFIG.path;
            let bytes = self
                .http1_api
                .unary(path, headers, body, self.unary_timeout)
                .await
                .map_err(|e| Error::call(ErrorKind::Call, e, true))?;
            ai::GetServerConfigResponse::decode(bytes)
                .map_err(|e| Error::protocol("undecodable GetServerConfig response", e))
        };
        let choice = match config.await {
            Ok(cfg) => match from_http2_config(cfg.http2_config) {
                Some((Transport::Http2, _)) => Choice {
                    transport: Transport::Http2,
                    reason: None,
                },
                Some((t, why)) => Choice {
                    transport: t,
                    reason: Some(why.to_owned()),
                },
                None => by_scheme(),
            },
            Err(e) => {
                tracing::debug!(error = %e, "server config unavailable; choosing the transport by scheme");
                by_scheme()
            }
        };
        if let Some(reason) = &choice.reason {
            tracing::info!(
                transport = choice.transport.as_str(),
                reason = reason.as_str(),
                "agent runs use HTTP/1.1"
            );
        }
        choice
    }

    /// Records that HTTP/2 is not available; runs go to HTTP/1.1 for a while. Logged once per
    /// fallback (not once per run).
    pub(crate) fn http2_failed(&self, e: &ConnectError) {
        let reason = format!("HTTP/2 unavailable: {e}");
        let Ok(mut g) = self.http2_down.lock() else {
            return;
        };
        let fresh = g
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= HTTP2_RETRY_AFTER);
        if fresh {
            tracing::warn!(
                reason = reason.as_str(),
                "falling back to HTTP/1.1 for agent runs"
            );
            *g = Some((tokio::time::Instant::now(), reason));
        }
    }
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
