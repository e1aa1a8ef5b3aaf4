//! A decoder fed with `Bytes` chunks that slices frames out of them without copying.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::decoder::Decoder;
use crate::error::FrameError;
use crate::frame::{Flags, Frame, HEADER_LEN};

/// Straddling pieces shorter than this are coalesced (copied) as they arrive; longer ones are
/// kept as they are until the frame completes. This bounds the per-piece overhead when a peer
/// sends tiny DATA frames, while large frames are still copied only once.
const COALESCE_BELOW: usize = 4096;

/// Frames with payloads in this range make the decoder read ahead (see
/// [`read_ahead`]): below it the hardware prefetcher already sees a dense stream
/// of header reads, above it one cache miss per frame is cheap next to the frame.
const READ_AHEAD_FOR: std::ops::Range<usize> = 64..2048;
/// How far ahead of the frame just sliced the decoder has touched its chunk.
const READ_AHEAD: usize = 2048;
/// A cache line: the read-ahead touches one byte per line.
const LINE: usize = 64;

/// Envelope decoder for input that arrives as `Bytes` chunks (HTTP/2 DATA frames).
///
/// It applies exactly the checks of the wrapped [`Decoder`], but a frame that lies wholly
/// inside one chunk is returned as a slice of that chunk (a reference-count bump, no copy).
/// A frame that straddles chunks is copied exactly once, into a buffer of exactly its size,
/// when its last byte arrives. Until then only the bytes that arrived are held, never the
/// declared length: large pieces as they came, small ones (under 4 KiB) coalesced into one
/// growing buffer, whose capacity is at most about twice what arrived. While it slices frames
/// of 64 B to 2 KiB it reads the chunk ahead (one byte per cache line, 2 KiB ahead), so that
/// on input not in cache the header reads do not wait on one miss after another.
///
/// ```
/// use bytes::Bytes;
/// use cursor_connect_frame::{ChunkDecoder, Decoder, Direction};
///
/// let mut dec = ChunkDecoder::new(Decoder::new(Direction::Response));
/// dec.push(Bytes::from_static(b"\x00\x00\x00\x00\x02hi\x02\x00\x00"));
/// assert_eq!(&dec.next_frame()?.unwrap().payload[..], b"hi");
/// assert!(dec.next_frame()?.is_none()); // the end-stream header is cut
/// dec.push(Bytes::from_static(b"\x00\x02{}"));
/// assert!(dec.next_frame()?.unwrap().is_end_stream());
/// assert!(dec.finish()?.is_none());
/// # Ok::<(), cursor_connect_frame::FrameError>(())
/// ```
#[derive(Debug)]
pub struct ChunkDecoder {
    decoder: Decoder,
    /// Large pieces of the straddling frame in progress (header included), in order.
    pieces: Vec<Bytes>,
    /// Small pieces, coalesced; logically follows `pieces`.
    tail: BytesMut,
    /// Bytes of the straddling frame held in `pieces` and `tail`.
    partial_len: usize,
    /// Validated header of the straddling frame, once its 5 bytes are there.
    pending: Option<(Flags, usize)>,
    /// Unconsumed input chunks, oldest first.
    chunks: VecDeque<Bytes>,
    /// Address up to which the front chunk has been read ahead.
    ahead: usize,
}

impl ChunkDecoder {
    /// Wraps a configured [`Decoder`].
    pub fn new(decoder: Decoder) -> Self {
        Self {
            decoder,
            pieces: Vec::new(),
            tail: BytesMut::new(),
            partial_len: 0,
            pending: None,
            chunks: VecDeque::new(),
            ahead: 0,
        }
    }

    /// The wrapped decoder (for its configuration and state).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Queues a chunk of input. Call [`ChunkDecoder::next_frame`] until it returns `Ok(None)`.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.partial_len + self.chunks.iter().map(Bytes::len).sum::<usize>()
    }

    /// Returns the next complete frame, or `Ok(None)` when more input is needed.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        // Hot path, small enough to inline into the caller's loop: a plain frame lying wholly
        // inside the front chunk, between frames. Everything else takes the general path.
        if self.partial_len == 0
            && self.decoder.is_between_frames()
            && let Some(chunk) = self.chunks.front_mut()
            && let Some(hdr) = chunk.first_chunk::<HEADER_LEN>()
            && let Some(len) = self.decoder.plain_len(hdr)
            && chunk.len() - HEADER_LEN >= len
        {
            if READ_AHEAD_FOR.contains(&len) {
                self.ahead = read_ahead(chunk, self.ahead);
            }
            chunk.advance(HEADER_LEN);
            let payload = chunk.split_to(len);
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
            return Ok(Some(Frame {
                flags: Flags::NONE,
                payload,
            }));
        }
        self.next_frame_general()
    }

    #[cold]
    fn next_frame_general(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if self.partial_len == 0 {
                let Some(chunk) = self.chunks.front_mut() else {
                    return self.decoder.check_open(0).map(|()| None);
                };
                if !self.decoder.is_between_frames() {
                    // Failed (sticky error) or finished (these bytes come after the end).
                    self.decoder.check_open(chunk.len())?;
                }
                if let Some(hdr) = chunk.first_chunk::<HEADER_LEN>() {
                    let (flags, len) = self.decoder.check_header(*hdr)?;
                    if chunk.len() - HEADER_LEN >= len {
                        // The whole frame is in this chunk: slice it out.
                        chunk.advance(HEADER_LEN);
                        let payload = chunk.split_to(len);
                        if chunk.is_empty() {
                            self.chunks.pop_front();
                        }
                        return self.decoder.finish_frame(flags, payload).map(Some);
                    }
                    self.pending = Some((flags, len));
                }
                // Less than one frame is left in this chunk: it starts a straddling frame.
                if let Some(rest) = self.chunks.pop_front() {
                    self.stash(rest);
                }
                continue;
            }
            self.decoder.check_open(0)?;
            if self.pending.is_none()
                && let Some(hdr) = self.partial_header()
            {
                self.pending = Some(self.decoder.check_header(hdr)?);
            }
            let need = match self.pending {
                Some((_, len)) => HEADER_LEN + len - self.partial_len,
                None => HEADER_LEN - self.partial_len,
            };
            if need == 0 {
                if let Some((flags, _)) = self.pending.take() {
                    let payload = self.assemble();
                    return self.decoder.finish_frame(flags, payload).map(Some);
                }
                continue;
            }
            let Some(chunk) = self.chunks.front_mut() else {
                return Ok(None);
            };
            if chunk.len() <= need {
                if let Some(whole) = self.chunks.pop_front() {
                    self.stash(whole);
                }
            } else {
                let head = chunk.split_to(need);
                self.stash(head);
            }
        }
    }

    /// Like [`ChunkDecoder::next_frame`] once the input has ended: returns the remaining frames,
    /// then `Ok(None)`; a cut frame is [`FrameError::Truncated`] and a response without its
    /// end-stream is [`FrameError::MissingEndStream`], as in [`Decoder::decode_eof`].
    pub fn finish(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.next_frame()? {
            return Ok(Some(frame));
        }
        // All input is in the partial frame now (or consumed): the buffer decoder judges it.
        let mut rest = BytesMut::with_capacity(self.partial_len);
        for p in self.pieces.drain(..) {
            rest.extend_from_slice(&p);
        }
        rest.extend_from_slice(&self.tail);
        self.tail.clear();
        self.partial_len = 0;
        self.pending = None;
        self.decoder.decode_eof(&mut rest)
    }

    /// Holds one more piece of the straddling frame.
    fn stash(&mut self, piece: Bytes) {
        self.partial_len += piece.len();
        if piece.len() < COALESCE_BELOW {
            self.tail.extend_from_slice(&piece);
        } else {
            if !self.tail.is_empty() {
                self.pieces.push(self.tail.split().freeze());
            }
            self.pieces.push(piece);
        }
    }

    fn held(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces
            .iter()
            .map(|p| &p[..])
            .chain(std::iter::once(&self.tail[..]))
    }

    /// The straddling frame's header, once all 5 bytes of it are held.
    fn partial_header(&self) -> Option<[u8; HEADER_LEN]> {
        if self.partial_len < HEADER_LEN {
            return None;
        }
        let mut hdr = [0u8; HEADER_LEN];
        let mut n = 0;
        for p in self.held() {
            let take = (HEADER_LEN - n).min(p.len());
            hdr[n..n + take].copy_from_slice(&p[..take]);
            n += take;
            if n == HEADER_LEN {
                break;
            }
        }
        Some(hdr)
    }

    /// Takes the completed straddling frame's payload: one copy into an exactly sized buffer.
    fn assemble(&mut self) -> Bytes {
        let payload = if self.pieces.is_empty() {
            let mut all = self.tail.split().freeze();
            all.advance(HEADER_LEN);
            all
        } else {
            let mut out = BytesMut::with_capacity(self.partial_len - HEADER_LEN);
            let mut skip = HEADER_LEN;
            for p in self.held() {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                out.extend_from_slice(&p[skip..]);
                skip = 0;
            }
            self.pieces.clear();
            self.tail.clear();
            out.freeze()
        };
        self.partial_len = 0;
        payload
    }
}

/// Touches one byte per cache line of `chunk` from `ahead` (an address) up to [`READ_AHEAD`]
/// bytes past the chunk's start, and returns the new mark.
///
/// Why: each header's position comes from the previous header, so on a stream that is not in
/// cache the header reads form a chain of dependent misses that the hardware prefetcher does
/// not follow when frames are a few lines apart (256 B frames decoded at half of a copying
/// decoder's speed, which streams the bytes with `memcpy` first). These loads depend on
/// nothing, so the core issues many at once and the header reads then hit the cache.
#[inline]
fn read_ahead(chunk: &Bytes, ahead: usize) -> usize {
    let base = chunk.as_ptr() as usize;
    let end = base + chunk.len().min(READ_AHEAD);
    // A mark outside this chunk belongs to an earlier one: start over at this chunk's start.
    let mut at = if (base..=base + chunk.len()).contains(&ahead) {
        ahead
    } else {
        base
    };
    let mut seen = 0u8;
    while at < end {
        seen ^= chunk[at - base];
        at += LINE;
    }
    std::hint::black_box(seen);
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;

    #[test]
    fn frames_inside_a_chunk_alias_it() {
        let chunk = Bytes::from_static(b"\x00\x00\x00\x00\x03abc\x00\x00\x00\x00\x01z\x00\x00");
        let base = chunk.as_ptr() as usize;
        let mut d = ChunkDecoder::new(Decoder::new(Direction::Request));
        d.push(chunk);
        let a = d.next_frame().unwrap().unwrap();
        let b = d.next_frame().unwrap().unwrap();
        assert_eq!(a.payload.as_ptr() as usize, base + 5);
        assert_eq!(b.payload.as_ptr() as usize, base + 13);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered(), 2, "the cut header is held");
        d.push(Bytes::from_static(b"\x00\x00\x02h"));
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered(), 6);
        d.push(Bytes::from_static(b"i"));
        assert_eq!(&d.next_frame().unwrap().unwrap().payload[..], b"hi");
        assert_eq!(d.finish(), Ok(None));
    }

    #[test]
    fn large_straddling_frames_mix_kept_and_coalesced_pieces() {
        let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let mut wire = vec![0u8];
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\x00\x00\x00\x00\x01!");
        // Chunk size patterns: all tiny, all large, and alternating around the threshold.
        let patterns: [&[usize]; 5] = [&[1], &[7, 3], &[4096], &[5000, 1, 4095, 9000], &[16384, 2]];
        for pattern in patterns {
            let mut d = ChunkDecoder::new(Decoder::new(Direction::Request));
            let mut pos = 0;
            let mut frames = Vec::new();
            for &size in pattern.iter().cycle() {
                if pos >= wire.len() {
                    break;
                }
                let end = (pos + size).min(wire.len());
                d.push(Bytes::copy_from_slice(&wire[pos..end]));
                pos = end;
                while let Some(f) = d.next_frame().unwrap() {
                    frames.push(f);
                }
                // Only bytes that arrived are held.
                assert!(d.buffered() <= pos);
            }
            assert_eq!(d.finish(), Ok(None));
            assert_eq!(frames.len(), 2, "{pattern:?}");
            assert!(frames[0].payload == payload, "{pattern:?}");
            assert_eq!(&frames[1].payload[..], b"!");
        }
    }

    #[test]
    fn errors_are_sticky_and_match_the_buffer_decoder() {
        let mut d = ChunkDecoder::new(Decoder::new(Direction::Response));
        d.push(Bytes::from_static(b"\x02\x00\x00\x00\x02{}\x00"));
        assert!(d.next_frame().unwrap().unwrap().is_end_stream());
        let err = FrameError::DataAfterEndStream { len: 1 };
        assert_eq!(d.next_frame(), Err(err.clone()));
        assert_eq!(d.finish(), Err(err));
        assert!(d.decoder().is_failed());

        let mut d = ChunkDecoder::new(Decoder::new(Direction::Response));
        d.push(Bytes::from_static(b"\x00\x00\x00"));
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                buffered: 3,
                expected: 5
            })
        );
    }
}
