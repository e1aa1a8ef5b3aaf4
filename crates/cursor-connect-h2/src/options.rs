//! Per-call options.

use std::time::Duration;

use cursor_connect_frame::DEFAULT_MAX_MESSAGE_SIZE;

/// Default size below which outgoing messages are not compressed (as connect-es).
pub const DEFAULT_COMPRESS_MIN_BYTES: usize = 1024;

/// Options for one call. `CallOptions::default()` has no deadline, no idle timeout, a 4 MiB
/// receive limit, no request compression and accepts gzip responses.
///
/// ```
/// use std::time::Duration;
/// use cursor_connect_h2::CallOptions;
///
/// let opts = CallOptions::default()
///     .deadline(Duration::from_secs(60))
///     .idle_timeout(Duration::from_secs(30))
///     .send_compression(Some("gzip"));
/// assert_eq!(opts.deadline_value(), Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub(crate) deadline: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) send_compression: Option<&'static str>,
    pub(crate) accept_compression: Vec<&'static str>,
    pub(crate) compress_min_bytes: usize,
    pub(crate) codec: &'static str,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            deadline: None,
            idle_timeout: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            send_compression: None,
            accept_compression: vec!["gzip"],
            compress_min_bytes: DEFAULT_COMPRESS_MIN_BYTES,
            codec: "proto",
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

    /// Compress request messages with this encoding (`Some("gzip")`), or not at all.
    pub fn send_compression(mut self, name: Option<&'static str>) -> Self {
        self.send_compression = name;
        self
    }

    /// Encodings the server may use for responses, in preference order (default `["gzip"]`).
    pub fn accept_compression(mut self, names: &[&'static str]) -> Self {
        self.accept_compression = names.to_vec();
        self
    }

    /// Messages smaller than this are sent uncompressed even with send compression on.
    pub fn compress_min_bytes(mut self, bytes: usize) -> Self {
        self.compress_min_bytes = bytes;
        self
    }

    /// Use the protobuf codec: `application/connect+proto` for streams and
    /// `application/proto` for unary calls (the default).
    pub fn content_type_proto(mut self) -> Self {
        self.codec = "proto";
        self
    }

    /// Use another codec name, e.g. `"json"` for `application/connect+json`.
    pub fn codec(mut self, name: &'static str) -> Self {
        self.codec = name;
        self
    }

    /// The configured deadline.
    pub fn deadline_value(&self) -> Option<Duration> {
        self.deadline
    }

    pub(crate) fn stream_content_type(&self) -> String {
        format!("application/connect+{}", self.codec)
    }

    pub(crate) fn unary_content_type(&self) -> String {
        format!("application/{}", self.codec)
    }
}
