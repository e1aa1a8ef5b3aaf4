//! Per-call options.

use std::time::Duration;

use cursor_connect_frame::{Codec, DEFAULT_MAX_MESSAGE_SIZE, Encoding};

/// Default size below which outgoing messages are not compressed (as connect-es).
pub const DEFAULT_COMPRESS_MIN_BYTES: usize = 1024;

/// Options for one call. `CallOptions::default()` has no deadline, no idle timeout, a 4 MiB
/// receive limit, no request compression, accepts gzip responses and uses the protobuf codec.
///
/// Encodings and codecs are typed ([`Encoding`], [`Codec`]), so a name the transport cannot
/// handle cannot be configured.
///
/// ```
/// use std::time::Duration;
/// use cursor_connect_frame::{Codec, Encoding};
/// use cursor_connect_h2::CallOptions;
///
/// let opts = CallOptions::default()
///     .deadline(Duration::from_secs(60))
///     .idle_timeout(Duration::from_secs(30))
///     .send_compression(Encoding::Gzip)
///     .codec(Codec::Proto);
/// assert_eq!(opts.deadline_value(), Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub(crate) deadline: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) send_compression: Encoding,
    pub(crate) accept_compression: Vec<Encoding>,
    pub(crate) compress_min_bytes: usize,
    pub(crate) codec: Codec,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            deadline: None,
            idle_timeout: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            send_compression: Encoding::Identity,
            accept_compression: vec![Encoding::Gzip],
            compress_min_bytes: DEFAULT_COMPRESS_MIN_BYTES,
            codec: Codec::Proto,
        }
    }
}

impl CallOptions {
    /// Total time the call may take, from its start. Sent as `connect-timeout-ms`; when it
    /// passes, the stream is reset (CANCEL) and the call fails with `deadline_exceeded`.
    /// A duration too large for the clock (such as `Duration::MAX`) means no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Fail the call (`unavailable`, kind `Idle`) when no response byte arrives for this
    /// long while a receive is waiting, even if the connection answers PINGs.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Largest response message accepted, after decompression (default 4 MiB).
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.max_message_size = max;
        self
    }

    /// Compress request messages with this encoding (default [`Encoding::Identity`]: not at
    /// all).
    pub fn send_compression(mut self, encoding: Encoding) -> Self {
        self.send_compression = encoding;
        self
    }

    /// Encodings the server may use for responses, in preference order (default
    /// `[Encoding::Gzip]`; an empty list sends no accept header).
    pub fn accept_compression(mut self, encodings: &[Encoding]) -> Self {
        self.accept_compression = encodings.to_vec();
        self
    }

    /// Messages smaller than this are sent uncompressed even with send compression on.
    pub fn compress_min_bytes(mut self, bytes: usize) -> Self {
        self.compress_min_bytes = bytes;
        self
    }

    /// The message codec, which names the content types (default [`Codec::Proto`]:
    /// `application/connect+proto` for streams, `application/proto` for unary calls).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The configured deadline.
    pub fn deadline_value(&self) -> Option<Duration> {
        self.deadline
    }

    pub(crate) fn stream_content_type(&self) -> &'static str {
        self.codec.stream_content_type()
    }

    pub(crate) fn unary_content_type(&self) -> &'static str {
        self.codec.unary_content_type()
    }
}
