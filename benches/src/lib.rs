//! Shared helpers for the workspace benchmarks: stream builders, the copying baseline decoder
//! the frame benchmark compares against, the interleaved-rounds runner every bench reports
//! from, and the markdown report sink `benches/run-all.sh` collects.

use std::time::{Duration, Instant};

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

/// Cuts `stream` into `chunk`-byte pieces the way an HTTP/2 codec hands out DATA payloads:
/// each piece is split off one read buffer and frozen, so it is a slice of a shared
/// allocation (h2's `FramedRead` does exactly this). [`chunks`] instead gives every piece its
/// own allocation; both shapes are benchmarked.
pub fn chunks_shared(stream: &[u8], chunk: usize) -> Vec<Bytes> {
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::with_capacity(stream.len().div_ceil(chunk));
    while !buf.is_empty() {
        let n = chunk.min(buf.len());
        out.push(buf.split_to(n).freeze());
    }
    out
}

/// A consumer that reads every payload byte: a wrapping sum of little-endian 64-bit words
/// (and of the trailing bytes), which the compiler vectorizes, so reading costs about what
/// it costs to stream the bytes through the core, no more.
#[inline]
pub fn read_all(payload: &[u8]) -> u64 {
    let words = payload.chunks_exact(8);
    let tail = words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>();
    words
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .fold(tail, u64::wrapping_add)
}

/// A named closure measured by [`interleaved`].
pub type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Per-variant medians of interleaved rounds.
#[derive(Debug, Clone)]
pub struct Medians {
    /// Median nanoseconds per call, in the order the variants were given.
    pub ns: Vec<f64>,
    /// How many rounds every variant ran.
    pub rounds: usize,
}

/// Runs every variant once per round (the starting variant rotates from round to round, so
/// no variant always runs right after the same neighbour), at least `min_rounds` rounds and
/// then more while `budget` lasts (at most `max_rounds`), after one warm-up call each. Load
/// changes on a shared machine then hit every variant alike; the medians are what is
/// reported.
pub fn interleaved(
    variants: &mut [Variant<'_>],
    min_rounds: usize,
    max_rounds: usize,
    budget: Duration,
) -> Medians {
    let k = variants.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (_, f) in variants.iter_mut() {
        f();
    }
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < min_rounds || (start.elapsed() < budget && rounds < max_rounds) {
        for j in 0..k {
            let i = (j + rounds) % k;
            let t = Instant::now();
            (variants[i].1)();
            samples[i].push(t.elapsed().as_nanos() as f64);
        }
        rounds += 1;
    }
    let ns = samples.into_iter().map(median).collect();
    Medians { ns, rounds }
}

/// The median of `v` (the upper one for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Percentile `p` (0..=100) of sorted `v`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints markdown report lines and appends them to `BENCH_REPORT` (shared with the proxy's
/// benches, which live in another package).
pub use cursor_test_support::report::emit;

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
