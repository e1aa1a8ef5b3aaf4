//! A decoder fed with `Bytes` chunks that slices frames out of them without copying.

use bytes::{Buf, Bytes, BytesMut};

use crate::decoder::Decoder;
use crate::error::FrameError;
use crate::frame::{Flags, Frame, HEADER_LEN};

/// Envelope decoder for input that arrives as `Bytes` chunks (HTTP/2 DATA frames).
///
/// It applies exactly the checks of the wrapped [`Decoder`], but a frame that lies wholly
/// inside one chunk is returned as a slice of that chunk (a reference-count bump, no copy).
/// Only a frame that straddles chunks is copied, once, into an internal buffer that holds just
/// the bytes that arrived for it.
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
    /// Bytes of the frame in progress that straddles chunks (header included).
    partial: BytesMut,
    /// Validated header of the frame in `partial`, once 5 bytes of it are there.
    pending: Option<(Flags, usize)>,
    /// Unconsumed input chunks, oldest first.
    chunks: std::collections::VecDeque<Bytes>,
}

impl ChunkDecoder {
    /// Wraps a configured [`Decoder`].
    pub fn new(decoder: Decoder) -> Self {
        Self {
            decoder,
            partial: BytesMut::new(),
            pending: None,
            chunks: std::collections::VecDeque::new(),
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
        self.partial.len() + self.chunks.iter().map(Bytes::len).sum::<usize>()
    }

    /// Returns the next complete frame, or `Ok(None)` when more input is needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        self.decoder.check_open(0)?;
        loop {
            if self.partial.is_empty() {
                let Some(chunk) = self.chunks.front_mut() else {
                    return Ok(None);
                };
                let extra = chunk.len();
                self.decoder.check_open(extra)?;
                if let Some(hdr) = chunk.first_chunk::<HEADER_LEN>() {
                    let (flags, len) = self.decoder.check_header(*hdr)?;
                    if chunk.len() - HEADER_LEN >= len {
                        let payload = chunk.slice(HEADER_LEN..HEADER_LEN + len);
                        chunk.advance(HEADER_LEN + len);
                        if chunk.is_empty() {
                            self.chunks.pop_front();
                        }
                        return self.decoder.finish_frame(flags, payload).map(Some);
                    }
                    self.pending = Some((flags, len));
                }
                // Less than one frame is left in this chunk: start the straddling copy.
                self.partial.extend_from_slice(chunk);
                self.chunks.pop_front();
                continue;
            }
            let need = match self.pending {
                Some((_, len)) => HEADER_LEN + len - self.partial.len(),
                None => HEADER_LEN - self.partial.len(),
            };
            if need > 0 {
                let Some(chunk) = self.chunks.front_mut() else {
                    return Ok(None);
                };
                let take = need.min(chunk.len());
                self.partial.extend_from_slice(&chunk[..take]);
                chunk.advance(take);
                if chunk.is_empty() {
                    self.chunks.pop_front();
                }
            }
            if self.pending.is_none() {
                if let Some(hdr) = self.partial.first_chunk::<HEADER_LEN>() {
                    self.pending = Some(self.decoder.check_header(*hdr)?);
                }
                continue;
            }
            if let Some((flags, len)) = self.pending
                && self.partial.len() == HEADER_LEN + len
            {
                self.pending = None;
                let mut frame = self.partial.split().freeze();
                frame.advance(HEADER_LEN);
                return self.decoder.finish_frame(flags, frame).map(Some);
            }
            if self.chunks.is_empty() {
                return Ok(None);
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
        // All input is in `partial` now (or consumed); let the buffer decoder judge the rest.
        let mut rest = std::mem::take(&mut self.partial);
        self.pending = None;
        self.decoder.decode_eof(&mut rest)
    }
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
