//! The push-style envelope decoder over a caller-owned `BytesMut`.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::compression::Compression;
use crate::error::FrameError;
use crate::frame::{Direction, Flags, Frame, HEADER_LEN};

/// Default maximum message size: 4 MiB, as in tonic and connect-rust.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a 5-byte header.
    Header,
    /// Header consumed; waiting for `len` payload bytes.
    Body { flags: Flags, len: usize },
    /// A response's end-stream envelope was decoded; nothing may follow.
    Done,
    /// Sticky failure: every later call returns this error.
    Failed(FrameError),
}

/// Sans-IO Connect envelope decoder.
///
/// Feed it bytes by appending them to a `BytesMut` and call [`Decoder::decode`] until it returns
/// `Ok(None)`; at end of input call [`Decoder::decode_eof`] the same way.
///
/// * The declared length is checked against [`Decoder::max_message_size`] as soon as the header
///   arrives, before anything is buffered for it, and the decoder never reserves memory: the
///   buffer holds only bytes that actually arrived.
/// * A complete frame is split out of the buffer with `split_to(..).freeze()`, without copying.
/// * Flags: a [`Direction::Response`] stream accepts 0 to 3 and ends with one end-stream
///   envelope (anything after it is [`FrameError::DataAfterEndStream`]); a
///   [`Direction::Request`] stream accepts 0 and 1. Reserved bits are always rejected
///   ([`FrameError::ReservedFlags`]).
/// * Compressed payloads are inflated (bounded by the limit) with the configured
///   [`Compression`]; a compressed flag without one is an error; empty payloads are never
///   inflated.
/// * Once an error is returned, every later call returns the same error.
///
/// For `Bytes` chunks (HTTP/2 DATA frames) [`ChunkDecoder`](crate::ChunkDecoder) avoids even
/// the copy into the buffer for frames that lie wholly inside one chunk.
pub struct Decoder {
    direction: Direction,
    limit: usize,
    compression: Option<Box<dyn Compression>>,
    state: State,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("direction", &self.direction)
            .field("limit", &self.limit)
            .field("compression", &self.compression.as_ref().map(|c| c.name()))
            .field("state", &self.state)
            .finish()
    }
}

impl Decoder {
    /// A decoder for one stream in the given direction, with the default 4 MiB limit and no
    /// compression.
    pub fn new(direction: Direction) -> Self {
        Self {
            direction,
            limit: DEFAULT_MAX_MESSAGE_SIZE,
            compression: None,
            state: State::Header,
        }
    }

    /// Sets the largest payload accepted, both as declared on the wire and after
    /// decompression. `0` means only empty messages are accepted (it is *not* "unlimited");
    /// pass `usize::MAX` to accept anything the 32-bit length field can express.
    #[must_use]
    pub fn max_message_size(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the stream's compression (from `connect-content-encoding`); `None` means
    /// `identity`, and then a compressed envelope is an error.
    #[must_use]
    pub fn compression(mut self, compression: Option<Box<dyn Compression>>) -> Self {
        self.compression = compression;
        self
    }

    /// The configured maximum message size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The direction this decoder checks flags for.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether an error was returned (all later calls return it again).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// Whether a response's end-stream envelope has been decoded.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// How many more bytes the frame in progress needs, given `buffered` bytes already in the
    /// caller's buffer; `None` when no frame is in progress (or the decoder is finished/failed).
    pub fn buffered_hint(&self, buffered: usize) -> Option<usize> {
        match &self.state {
            State::Header if buffered > 0 => Some(HEADER_LEN.saturating_sub(buffered)),
            State::Body { len, .. } => Some(len.saturating_sub(buffered)),
            _ => None,
        }
    }

    /// Decodes the next complete frame from the front of `src`.
    ///
    /// Returns `Ok(None)` when `src` does not yet hold a complete frame (append more bytes and
    /// call again), or when a finished response stream has no more input.
    #[inline]
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let (flags, len) = match self.state {
            State::Failed(ref e) => return Err(e.clone()),
            State::Done if src.is_empty() => return Ok(None),
            State::Done => {
                return Err(self.fail(FrameError::DataAfterEndStream { len: src.len() }));
            }
            State::Header => {
                let Some(hdr) = src.first_chunk::<HEADER_LEN>() else {
                    return Ok(None);
                };
                let (flags, len) = self.check_header(*hdr)?;
                src.advance(HEADER_LEN);
                (flags, len)
            }
            State::Body { flags, len } => (flags, len),
        };
        if src.len() < len {
            self.state = State::Body { flags, len };
            return Ok(None);
        }
        if flags == Flags::NONE {
            // Built in place: routing plain frames through `finish_frame` costs measurable
            // stack shuffling per frame.
            self.state = State::Header;
            return Ok(Some(Frame {
                flags,
                payload: src.split_to(len).freeze(),
            }));
        }
        let payload = src.split_to(len).freeze();
        self.finish_flagged_frame(flags, payload).map(Some)
    }

    /// Like [`Decoder::decode`], for when the input has ended: returns the remaining complete
    /// frames one per call, then `Ok(None)`.
    ///
    /// Leftover bytes (a cut header or payload) are [`FrameError::Truncated`]. A response
    /// stream that ends without its end-stream envelope is [`FrameError::MissingEndStream`].
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        match self.state {
            State::Header if !src.is_empty() => Err(self.fail(FrameError::Truncated {
                buffered: src.len(),
                expected: HEADER_LEN as u64,
            })),
            State::Body { len, .. } => Err(self.fail(FrameError::Truncated {
                buffered: HEADER_LEN + src.len(),
                expected: (HEADER_LEN + len) as u64,
            })),
            State::Header if self.direction == Direction::Response => {
                Err(self.fail(FrameError::MissingEndStream))
            }
            _ => Ok(None),
        }
    }

    /// Records a sticky failure and returns it.
    pub(crate) fn fail(&mut self, err: FrameError) -> FrameError {
        self.state = State::Failed(err.clone());
        err
    }

    /// Whether the decoder is between frames and may accept more (the hot-path state).
    #[inline]
    pub(crate) fn is_between_frames(&self) -> bool {
        matches!(self.state, State::Header)
    }

    /// The sticky error, if any, or the "data after end-stream" error for `extra` bytes.
    #[inline]
    pub(crate) fn check_open(&mut self, extra: usize) -> Result<(), FrameError> {
        match self.state {
            State::Failed(ref e) => Err(e.clone()),
            State::Done if extra > 0 => {
                Err(self.fail(FrameError::DataAfterEndStream { len: extra }))
            }
            _ => Ok(()),
        }
    }

    /// The payload length of a plain (flags 0) header within the limit: the one case that
    /// needs no further checks. `None` for anything else.
    #[inline]
    pub(crate) fn plain_len(&self, hdr: &[u8; HEADER_LEN]) -> Option<usize> {
        let declared = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
        let len = usize::try_from(declared).ok()?;
        (hdr[0] == 0 && len <= self.limit).then_some(len)
    }

    /// Validates a header against the direction, the compression and the limit.
    #[inline]
    pub(crate) fn check_header(
        &mut self,
        hdr: [u8; HEADER_LEN],
    ) -> Result<(Flags, usize), FrameError> {
        let declared = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        // Plain data frames (flags 0) are the hot path: only the length needs checking.
        if hdr[0] == 0 && len <= self.limit {
            return Ok((Flags::NONE, len));
        }
        self.check_header_slow(hdr[0], declared)
    }

    #[cold]
    fn check_header_slow(&mut self, bits: u8, declared: u32) -> Result<(Flags, usize), FrameError> {
        let flags = Flags::from_bits(bits);
        if flags.has_reserved_bits() {
            return Err(self.fail(FrameError::ReservedFlags {
                flags: flags.bits(),
            }));
        }
        if flags.is_end_stream() && self.direction == Direction::Request {
            return Err(self.fail(FrameError::EndStreamInRequest {
                flags: flags.bits(),
            }));
        }
        if flags.is_compressed() && self.compression.is_none() {
            return Err(self.fail(FrameError::CompressedWithoutEncoding {
                flags: flags.bits(),
            }));
        }
        match usize::try_from(declared) {
            Ok(len) if len <= self.limit => Ok((flags, len)),
            _ => Err(self.fail(FrameError::MessageTooLarge {
                len: u64::from(declared),
                limit: self.limit,
            })),
        }
    }

    /// Decompresses (if flagged) and advances the state past a complete frame.
    #[inline]
    pub(crate) fn finish_frame(
        &mut self,
        flags: Flags,
        payload: Bytes,
    ) -> Result<Frame, FrameError> {
        if flags == Flags::NONE {
            self.state = State::Header;
            return Ok(Frame { flags, payload });
        }
        self.finish_flagged_frame(flags, payload)
    }

    fn finish_flagged_frame(&mut self, flags: Flags, payload: Bytes) -> Result<Frame, FrameError> {
        let payload = match (&mut self.compression, flags.is_compressed()) {
            (Some(c), true) if !payload.is_empty() => {
                let mut out = Vec::new();
                match c.decompress(&payload, &mut out, self.limit) {
                    Ok(()) => Bytes::from(out),
                    Err(e) => return Err(self.fail(e)),
                }
            }
            _ => payload,
        };
        self.state = if flags.is_end_stream() {
            State::Done
        } else {
            State::Header
        };
        Ok(Frame { flags, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gzip;

    fn env(flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flags];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn splits_frames_without_copying() {
        let mut wire = env(0, b"hello");
        wire.extend(env(0, b""));
        wire.extend(env(2, b"{}"));
        let mut buf = BytesMut::from(&wire[..]);
        let base = buf.as_ptr() as usize;
        let mut d = Decoder::new(Direction::Response);
        let f = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&f.payload[..], b"hello");
        assert_eq!(
            f.payload.as_ptr() as usize,
            base + 5,
            "payload must alias the buffer"
        );
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap().payload[..], b"");
        let end = d.decode(&mut buf).unwrap().unwrap();
        assert!(end.is_end_stream());
        assert!(d.is_finished());
        assert_eq!(d.decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn waits_for_partial_input_and_never_reserves() {
        let wire = env(0, &[9u8; 100]);
        let mut d = Decoder::new(Direction::Request);
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            assert_eq!(d.decode(&mut buf).unwrap(), None, "byte {i}");
            buf.extend_from_slice(&[*b]);
        }
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().payload.len(), 100);
        assert_eq!(
            d.decode_eof(&mut buf),
            Ok(None),
            "requests need no end-stream"
        );
    }

    #[test]
    fn declared_length_checked_at_header() {
        let mut buf = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        let mut d = Decoder::new(Direction::Response);
        let err = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            FrameError::MessageTooLarge {
                len: u32::MAX as u64,
                limit: DEFAULT_MAX_MESSAGE_SIZE
            }
        );
        assert!(
            buf.capacity() < 64,
            "nothing was reserved for the declared length"
        );
        // Sticky.
        assert_eq!(d.decode(&mut BytesMut::new()), Err(err.clone()));
        assert_eq!(d.decode_eof(&mut BytesMut::new()), Err(err));
        assert!(d.is_failed());
    }

    #[test]
    fn zero_limit_is_not_unlimited() {
        let mut d = Decoder::new(Direction::Request).max_message_size(0);
        let mut buf = BytesMut::from(&env(0, b"")[..]);
        assert!(d.decode(&mut buf).unwrap().is_some());
        buf.extend_from_slice(&env(0, b"x"));
        assert!(matches!(
            d.decode(&mut buf),
            Err(FrameError::MessageTooLarge { len: 1, limit: 0 })
        ));
    }

    #[test]
    fn flag_policy() {
        let cases: [(Direction, u8, Option<FrameError>); 6] = [
            (
                Direction::Request,
                2,
                Some(FrameError::EndStreamInRequest { flags: 2 }),
            ),
            (
                Direction::Request,
                3,
                Some(FrameError::EndStreamInRequest { flags: 3 }),
            ),
            (
                Direction::Response,
                4,
                Some(FrameError::ReservedFlags { flags: 4 }),
            ),
            (
                Direction::Response,
                0x80,
                Some(FrameError::ReservedFlags { flags: 0x80 }),
            ),
            (
                Direction::Response,
                1,
                Some(FrameError::CompressedWithoutEncoding { flags: 1 }),
            ),
            (Direction::Response, 2, None),
        ];
        for (dir, flags, want) in cases {
            let mut buf = BytesMut::from(&env(flags, b"{}")[..]);
            let got = Decoder::new(dir).decode(&mut buf);
            match want {
                Some(e) => assert_eq!(got, Err(e), "{dir:?} {flags}"),
                None => assert!(got.unwrap().is_some()),
            }
        }
    }

    #[test]
    fn eof_errors() {
        let mut d = Decoder::new(Direction::Response);
        let mut buf = BytesMut::from(&env(0, b"abc")[..3]);
        assert_eq!(
            d.decode_eof(&mut buf),
            Err(FrameError::Truncated {
                buffered: 3,
                expected: 5
            })
        );
        let mut d = Decoder::new(Direction::Response);
        let mut buf = BytesMut::from(&env(0, b"abc")[..7]);
        assert_eq!(
            d.decode_eof(&mut buf),
            Err(FrameError::Truncated {
                buffered: 7,
                expected: 8
            })
        );
        let mut d = Decoder::new(Direction::Response);
        let mut buf = BytesMut::from(&env(0, b"abc")[..]);
        assert!(d.decode_eof(&mut buf).unwrap().is_some());
        assert_eq!(d.decode_eof(&mut buf), Err(FrameError::MissingEndStream));
    }

    #[test]
    fn data_after_end_stream() {
        let mut wire = env(2, b"{}");
        wire.extend(env(0, b"x"));
        let mut buf = BytesMut::from(&wire[..]);
        let mut d = Decoder::new(Direction::Response);
        assert!(d.decode(&mut buf).unwrap().unwrap().is_end_stream());
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::DataAfterEndStream { len: 6 })
        );
    }

    #[test]
    fn compressed_frames() {
        let mut gz = Vec::new();
        Gzip::default()
            .compress(b"{\"metadata\":{}}", &mut gz)
            .unwrap();
        let mut wire = env(1, &gz);
        wire.extend(env(1, b"")); // empty compressed payload: never inflated
        wire.extend(env(3, &gz));
        let mut buf = BytesMut::from(&wire[..]);
        let mut d = Decoder::new(Direction::Response).compression(Some(Box::new(Gzip::default())));
        let f = d.decode(&mut buf).unwrap().unwrap();
        assert!(f.flags.is_compressed());
        assert_eq!(&f.payload[..], b"{\"metadata\":{}}");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().payload.len(), 0);
        assert!(d.decode(&mut buf).unwrap().unwrap().is_end_stream());
    }
}
