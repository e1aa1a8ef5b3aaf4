//! Shared helpers for the workspace benchmarks: stream builders and the copying baseline
//! decoder the frame benchmark compares against.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Envelope header length.
const HEADER: usize = 5;

/// A stream of `count` uncompressed data envelopes, each with a `size`-byte payload.
pub fn envelope_stream(size: usize, count: usize) -> Bytes {
    let mut out = BytesMut::with_capacity((HEADER + size) * count);
    for i in 0..count {
        out.put_u8(0);
        out.put_u32(u32::try_from(size).expect("bench payloads fit u32"));
        out.extend((0..size).map(|j| (i + j) as u8));
    }
    out.freeze()
}

/// Cuts `stream` into `chunk`-byte pieces, as HTTP/2 DATA frames would deliver it. The pieces
/// are independent allocations (as each DATA frame's buffer would be).
pub fn chunks(stream: &[u8], chunk: usize) -> Vec<Bytes> {
    stream.chunks(chunk).map(Bytes::copy_from_slice).collect()
}

/// Log-like JSON text of about `len` bytes (compresses 3-5x, like real payloads).
pub fn json_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            "{{\"ts\":{},\"level\":\"info\",\"msg\":\"request {} handled\",\"latency_ms\":{},\"path\":\"/agent.v1.AgentService/Run\"}}\n",
            1_764_000_000_000u64 + i * 37,
            i,
            (i * 7919) % 1000
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// The copying decoder shape of tonic and connect-rust: every chunk is appended to one
/// `BytesMut`, then complete frames are split off the front. No flag checks, no compression.
#[derive(Debug, Default)]
pub struct CopyingDecoder {
    buf: BytesMut,
    pending: Option<usize>,
}

impl CopyingDecoder {
    /// Appends a chunk (the copy).
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete payload, if any.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                if self.buf.len() < HEADER {
                    return None;
                }
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                self.buf.advance(HEADER);
                let len = len as usize;
                self.pending = Some(len);
                len
            }
        };
        if self.buf.len() < len {
            return None;
        }
        self.pending = None;
        Some(self.buf.split_to(len).freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_decoder_splits_frames() {
        let stream = envelope_stream(100, 10);
        let mut d = CopyingDecoder::default();
        let mut n = 0;
        for c in chunks(&stream, 64) {
            d.push(&c);
            while let Some(f) = d.next_frame() {
                assert_eq!(f.len(), 100);
                n += 1;
            }
        }
        assert_eq!(n, 10);
        assert!(json_text(1000).len() == 1000);
    }
}
