//! The one error type of the framing layer.

use crate::code::Code;

/// Why an envelope could not be decoded, decompressed, encoded or parsed.
///
/// Every variant carries the numbers that explain it. `Display` is lowercase with no trailing
/// period. [`FrameError::code`] gives the Connect code a peer-facing error should carry, and
/// `From<FrameError> for ConnectError` does that conversion (origin local, source kept).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An envelope header declared a payload longer than the configured limit. Nothing was
    /// buffered for it. Fail the call with `resource_exhausted`; raise the limit only if the peer
    /// is trusted.
    #[error("message length {len} exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Length declared in the envelope header.
        len: u64,
        /// Configured maximum message size.
        limit: usize,
    },
    /// A compressed payload inflated past the limit. Decompression stopped at `limit + 1` bytes;
    /// the rest was not inflated. Fail the call with `resource_exhausted`.
    #[error("decompressed message exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// Configured maximum message size.
        limit: usize,
    },
    /// A compressed payload is not valid for its encoding (bad header, bad deflate data, bad
    /// checksum or truncated). Fail the call with `invalid_argument`.
    #[error("corrupt {encoding} payload of {len} bytes: {reason}")]
    CorruptCompressed {
        /// Name of the encoding, e.g. `gzip`.
        encoding: &'static str,
        /// Compressed length.
        len: usize,
        /// Which check failed.
        reason: &'static str,
    },
    /// The compression flag was set but the stream has no (or `identity`) encoding. A protocol
    /// violation by the peer: fail with `internal`.
    #[error("compressed flag set (flags {flags:#04x}) but no compression is configured")]
    CompressedWithoutEncoding {
        /// The flag byte as received.
        flags: u8,
    },
    /// One of the six reserved flag bits was set. Our policy is to reject these (like tonic and
    /// connect-python) rather than ignore them. Fail with `internal`.
    #[error("reserved envelope flag bits set: {flags:#04x}")]
    ReservedFlags {
        /// The flag byte as received.
        flags: u8,
    },
    /// A request stream carried the end-stream bit, which only responses may use. Fail with
    /// `internal`.
    #[error("end-stream flag set on a request envelope (flags {flags:#04x})")]
    EndStreamInRequest {
        /// The flag byte as received.
        flags: u8,
    },
    /// Bytes arrived after the end-stream envelope of a response. Fail with `internal`.
    #[error("{len} bytes after the end-stream envelope")]
    DataAfterEndStream {
        /// How many extra bytes were buffered when this was noticed.
        len: usize,
    },
    /// The stream ended inside an envelope. A wire-level error: fail with `internal` (what the
    /// conformance suite's `incomplete-message` cases expect).
    #[error("stream ended inside an envelope: {buffered} of {expected} bytes")]
    Truncated {
        /// Bytes of the envelope (header included) that had arrived.
        buffered: usize,
        /// Bytes the envelope needed (header included; 5 when the header itself was cut).
        expected: u64,
    },
    /// A response stream ended cleanly between envelopes but never sent its end-stream
    /// envelope. Data may be missing: fail with `internal`.
    #[error("response stream ended without an end-stream envelope")]
    MissingEndStream,
    /// The end-stream payload is not valid JSON.
    #[error("end-stream payload is not valid JSON (line {line}, column {column})")]
    EndStreamJson {
        /// Line of the syntax error (1-based).
        line: usize,
        /// Column of the syntax error (1-based).
        column: usize,
    },
    /// The end-stream JSON is well-formed but has the wrong shape.
    #[error("invalid end-stream: {reason}")]
    EndStreamShape {
        /// What was wrong.
        reason: &'static str,
    },
    /// A payload to encode does not fit the 32-bit length field.
    #[error("payload of {len} bytes does not fit an envelope")]
    PayloadTooLong {
        /// Payload length.
        len: usize,
    },
    /// The compressor failed. Only a broken compressor implementation produces this.
    #[error("{encoding} compression failed")]
    CompressFailed {
        /// Name of the encoding.
        encoding: &'static str,
    },
}

impl FrameError {
    /// The Connect code an error of this kind should surface as (the choices of
    /// connect-go/connect-es, see the variant docs).
    pub fn code(&self) -> Code {
        match self {
            Self::MessageTooLarge { .. } | Self::DecompressedTooLarge { .. } => {
                Code::ResourceExhausted
            }
            Self::CorruptCompressed { .. } => Code::InvalidArgument,
            Self::Truncated { .. }
            | Self::CompressedWithoutEncoding { .. }
            | Self::ReservedFlags { .. }
            | Self::EndStreamInRequest { .. }
            | Self::DataAfterEndStream { .. }
            | Self::MissingEndStream
            | Self::EndStreamJson { .. }
            | Self::EndStreamShape { .. }
            | Self::PayloadTooLong { .. }
            | Self::CompressFailed { .. } => Code::Internal,
        }
    }
}
