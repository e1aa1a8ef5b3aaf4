//! Drivers that push one wire through the frame crate's two decoders in given pieces, shared by
//! the frame crate's property tests and the `frame_decode` fuzz target (feature `frame`).
//!
//! Both drivers also check that a decoder, once failed, stays failed with the same error: a
//! broken invariant panics, which is what a property test and a fuzzer both want.
//!
//! ```
//! use cursor_connect_frame::{Decoder, Direction};
//! use cursor_test_support::frame_drivers::{decode_buffered, decode_chunked};
//! let wire = [0u8, 0, 0, 0, 2, b'h', b'i'];
//! let whole = decode_buffered(Decoder::new(Direction::Request), &wire, &[]);
//! let split = decode_chunked(Decoder::new(Direction::Request), &wire, &[1, 5]);
//! assert_eq!(whole, split);
//! assert_eq!(&whole.0[0].payload[..], b"hi");
//! ```

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{ChunkDecoder, Decoder, Frame, FrameError};

/// What a decoder made of a whole wire: the frames it returned, then the error it stopped
/// with, if any.
pub type Outcome = (Vec<Frame>, Option<FrameError>);

/// The pieces `wire` is fed in: cut at each offset of `cuts` (clamped to the wire and to the
/// previous cut, so any list of offsets is valid), then the rest.
fn pieces<'a>(wire: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(wire.len()));
    ends.map(move |end| {
        let end = end.clamp(start, wire.len());
        let piece = &wire[start..end];
        start = end;
        piece
    })
}

/// Decodes `wire` through the buffer decoder ([`Decoder::decode`] on one growing buffer), fed
/// in the pieces `cuts` makes, then [`Decoder::decode_eof`].
pub fn decode_buffered(mut decoder: Decoder, wire: &[u8], cuts: &[usize]) -> Outcome {
    let mut frames = Vec::new();
    let mut buf = BytesMut::new();
    for piece in pieces(wire, cuts) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.decode(&mut buf), Err(e.clone()), "error not sticky");
                    return (frames, Some(e));
                }
            }
        }
    }
    loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => {
                // Sticky on any later input, not only on the bytes that caused it.
                let fresh = &mut BytesMut::from(&b"\0\0\0\0\0"[..]);
                assert_eq!(decoder.decode(fresh), Err(e.clone()), "error not sticky");
                return (frames, Some(e));
            }
        }
    }
}

/// Decodes `wire` through the zero-copy [`ChunkDecoder`], each piece pushed as its own
/// `Bytes` as a transport would deliver DATA frames, then [`ChunkDecoder::finish`].
pub fn decode_chunked(decoder: Decoder, wire: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = ChunkDecoder::new(decoder);
    let mut frames = Vec::new();
    for piece in pieces(wire, cuts) {
        decoder.push(Bytes::copy_from_slice(piece));
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    loop {
        match decoder.finish() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => {
                assert_eq!(decoder.next_frame(), Err(e.clone()), "error not sticky");
                return (frames, Some(e));
            }
        }
    }
}

/// Clears the one number in an outcome that depends on how the wire was cut: how many stray
/// bytes had arrived after the end-stream when the decoder noticed them.
pub fn without_stray_len((frames, error): Outcome) -> Outcome {
    let error = error.map(|e| match e {
        FrameError::DataAfterEndStream { .. } => FrameError::DataAfterEndStream { len: 0 },
        other => other,
    });
    (frames, error)
}
