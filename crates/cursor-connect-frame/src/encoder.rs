//! The envelope encoder.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::compression::Compression;
use crate::end_stream::EndStream;
use crate::error::FrameError;
use crate::frame::{Flags, HEADER_LEN};

/// Default threshold below which messages are sent uncompressed (1 KiB).
pub const DEFAULT_COMPRESS_MIN_BYTES: usize = 1024;

/// Sans-IO Connect envelope encoder: writes envelopes into a caller-provided `BytesMut`.
///
/// With a [`Compression`] configured, a payload of at least
/// [`Encoder::compress_min_bytes`] is compressed, and the compressed form is sent only if it is
/// smaller; otherwise the payload goes out plain (flag 0). The encoder reserves exactly the bytes
/// it writes; its only own allocation is a scratch buffer for compression, reused across
/// messages.
pub struct Encoder {
    compression: Option<Box<dyn Compression>>,
    min_bytes: usize,
    scratch: Vec<u8>,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("compression", &self.compression.as_ref().map(|c| c.name()))
            .field("compress_min_bytes", &self.min_bytes)
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with no compression.
    pub fn new() -> Self {
        Self {
            compression: None,
            min_bytes: DEFAULT_COMPRESS_MIN_BYTES,
            scratch: Vec::new(),
        }
    }

    /// Sets the compression for outgoing messages; `None` sends everything uncompressed.
    #[must_use]
    pub fn compression(mut self, compression: Option<Box<dyn Compression>>) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the smallest payload worth compressing (default 1 KiB).
    #[must_use]
    pub fn compress_min_bytes(mut self, min: usize) -> Self {
        self.min_bytes = min;
        self
    }

    /// The encoded size of an *uncompressed* envelope around `payload_len` bytes: `5 + len`.
    pub const fn encoded_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// The name of the configured compression, for the `connect-content-encoding` header.
    pub fn compression_name(&self) -> Option<&'static str> {
        self.compression.as_ref().map(|c| c.name())
    }

    /// Appends a data envelope around `payload` to `dst` and returns the bytes written.
    pub fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<usize, FrameError> {
        self.encode_with(Flags::NONE, payload, dst)
    }

    /// Appends the end-stream envelope for `end` to `dst` and returns the bytes written.
    pub fn encode_end_stream(
        &mut self,
        end: &EndStream,
        dst: &mut BytesMut,
    ) -> Result<usize, FrameError> {
        let json = end.to_json();
        self.encode_with(Flags::END_STREAM, &json, dst)
    }

    /// Appends an envelope with the given base flags (the compressed bit is decided here) and
    /// returns the bytes written.
    pub fn encode_with(
        &mut self,
        flags: Flags,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<usize, FrameError> {
        let flags = flags.with_compressed(false);
        if let Some(c) = self.compression.as_mut()
            && payload.len() >= self.min_bytes
            && !payload.is_empty()
        {
            self.scratch.clear();
            c.compress(payload, &mut self.scratch)?;
            if self.scratch.len() < payload.len() {
                let body = std::mem::take(&mut self.scratch);
                let n = write(flags.with_compressed(true), &body, dst);
                self.scratch = body;
                return n;
            }
        }
        write(flags, payload, dst)
    }
}

fn write(flags: Flags, payload: &[u8], dst: &mut BytesMut) -> Result<usize, FrameError> {
    let len = u32::try_from(payload.len())
        .map_err(|_| FrameError::PayloadTooLong { len: payload.len() })?;
    dst.reserve(HEADER_LEN + payload.len());
    dst.put_u8(flags.bits());
    dst.put_u32(len);
    dst.put_slice(payload);
    Ok(HEADER_LEN + payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Direction, Gzip};

    #[test]
    fn plain_envelope_layout() {
        let mut dst = BytesMut::new();
        let n = Encoder::new().encode(b"abc", &mut dst).unwrap();
        assert_eq!(n, Encoder::encoded_len(3));
        assert_eq!(&dst[..], b"\x00\x00\x00\x00\x03abc");
    }

    #[test]
    fn compresses_only_when_large_and_helpful() {
        let mut enc = Encoder::new()
            .compression(Some(Box::new(Gzip::default())))
            .compress_min_bytes(64);
        let mut dst = BytesMut::new();
        enc.encode(&[b'a'; 63], &mut dst).unwrap();
        assert_eq!(dst[0], 0, "below threshold");
        dst.clear();
        let n = enc.encode(&[b'a'; 4096], &mut dst).unwrap();
        assert_eq!(dst[0], 1);
        assert!(n < 100, "zeros compress well: {n}");
        assert_eq!(n, dst.len());
        // Incompressible: sent plain.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..2048)
            .map(|_| {
                // xorshift64: incompressible enough for deflate.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        dst.clear();
        enc.encode(&noise, &mut dst).unwrap();
        assert_eq!(dst[0], 0);

        let mut wire = BytesMut::new();
        enc.encode(&[b'z'; 5000], &mut wire).unwrap();
        let mut dec = Decoder::new(Direction::Request).compression(Some(Box::new(Gzip::default())));
        assert_eq!(
            dec.decode(&mut wire).unwrap().unwrap().payload,
            vec![b'z'; 5000]
        );
    }

    #[test]
    fn end_stream_envelope() {
        let mut dst = BytesMut::new();
        let n = Encoder::new()
            .encode_end_stream(&EndStream::ok(), &mut dst)
            .unwrap();
        assert_eq!(&dst[..], b"\x02\x00\x00\x00\x02{}");
        assert_eq!(n, 7);
    }
}
