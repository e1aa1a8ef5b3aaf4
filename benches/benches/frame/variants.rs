//! The measured closures: our decoders and the baselines, each over the same input pieces.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cursor_connect_benches::{CopyingDecoder, Variant, read_all};
use cursor_connect_frame::{ChunkDecoder, Decoder, Direction, Encoder};

/// The message size limit every decoder is given (connect-rust's and ours by default).
pub(crate) const LIMIT: usize = 4 << 20;

/// What the consumer does with each payload: with `READ`, sums every byte into `acc` (checked
/// against the expected sum); without, only keeps the frame alive past the optimizer.
#[inline(always)]
fn sink<const READ: bool>(acc: &mut u64, payload: &Bytes) {
    if READ {
        *acc = acc.wrapping_add(read_all(payload));
    } else {
        black_box(payload);
    }
}

/// Our `ChunkDecoder`, our buffer `Decoder`, connect-rust's `Envelope::decode_with_limit`
/// and the copying decoder, each decoding all of `pieces` once per call and checking the frame
/// count (and, with `READ`, the byte sum).
pub(crate) fn decoders<'a, const READ: bool>(
    pieces: &'a [Bytes],
    count: usize,
    sum: u64,
) -> Vec<Variant<'a>> {
    let check = move |n: usize, acc: u64| {
        assert_eq!(n, count, "frame count");
        if READ {
            assert_eq!(acc, sum, "payload byte sum");
        }
    };
    vec![
        (
            "ours",
            Box::new(move || {
                let mut d = ChunkDecoder::new(Decoder::new(Direction::Request));
                let (mut n, mut acc) = (0, 0);
                for p in pieces {
                    d.push(p.clone());
                    while let Some(f) = d.next_frame().expect("decode") {
                        sink::<READ>(&mut acc, &f.payload);
                        n += 1;
                    }
                }
                check(n, acc);
            }),
        ),
        (
            "ours_bytesmut",
            Box::new(move || {
                let mut d = Decoder::new(Direction::Request);
                let mut buf = BytesMut::new();
                let (mut n, mut acc) = (0, 0);
                for p in pieces {
                    buf.extend_from_slice(p);
                    while let Some(f) = d.decode(&mut buf).expect("decode") {
                        sink::<READ>(&mut acc, &f.payload);
                        n += 1;
                    }
                }
                check(n, acc);
            }),
        ),
        (
            "connectrpc",
            Box::new(move || {
                let mut buf = BytesMut::new();
                let (mut n, mut acc) = (0, 0);
                for p in pieces {
                    buf.extend_from_slice(p);
                    while let Some(f) =
                        connectrpc::envelope::Envelope::decode_with_limit(&mut buf, LIMIT)
                            .expect("decode")
                    {
                        sink::<READ>(&mut acc, &f.data);
                        n += 1;
                    }
                }
                check(n, acc);
            }),
        ),
        (
            "copying",
            Box::new(move || {
                let mut d = CopyingDecoder::default();
                let (mut n, mut acc) = (0, 0);
                for p in pieces {
                    d.push(p);
                    while let Some(f) = d.next_frame() {
                        sink::<READ>(&mut acc, &f);
                        n += 1;
                    }
                }
                check(n, acc);
            }),
        ),
    ]
}

/// The ceiling: a memcpy of every piece into one reused buffer of a piece's size, the same
/// reuse the copying decoders get from their `BytesMut`.
pub(crate) fn memcpy(pieces: &[Bytes]) -> Variant<'_> {
    let mut buf = Vec::with_capacity(pieces.iter().map(Bytes::len).max().unwrap_or(0));
    (
        "memcpy",
        Box::new(move || {
            for p in pieces {
                buf.clear();
                buf.extend_from_slice(p);
                black_box(&buf);
            }
        }),
    )
}

/// Encoders over `count` messages of `payload`: ours handing out each envelope as its own
/// `Bytes` (as connect-rust's `Envelope::encode` does, and as a transport queues it), ours
/// appending all of them to one buffer, connect-rust, and a memcpy of header and payload into
/// one reused buffer per message.
pub(crate) fn encoders<'a>(payload: &'a [u8], shared: &'a Bytes, count: usize) -> Vec<Variant<'a>> {
    let mut enc = Encoder::new();
    let mut dst = BytesMut::new();
    let mut batch_enc = Encoder::new();
    let mut batch = BytesMut::with_capacity((5 + payload.len()) * count);
    let mut copy = Vec::with_capacity(5 + payload.len());
    vec![
        (
            "ours",
            Box::new(move || {
                for _ in 0..count {
                    enc.encode(payload, &mut dst).expect("encode");
                    black_box(dst.split().freeze());
                }
            }),
        ),
        (
            "ours_one_buffer",
            Box::new(move || {
                batch.clear();
                for _ in 0..count {
                    batch_enc.encode(payload, &mut batch).expect("encode");
                }
                black_box(&batch);
            }),
        ),
        (
            "connectrpc",
            Box::new(move || {
                for _ in 0..count {
                    let env = connectrpc::envelope::Envelope {
                        flags: connectrpc::envelope::flags::DATA,
                        data: shared.clone(),
                    };
                    black_box(env.encode());
                }
            }),
        ),
        (
            "memcpy",
            Box::new(move || {
                for _ in 0..count {
                    copy.clear();
                    copy.push(0);
                    copy.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    copy.extend_from_slice(payload);
                    black_box(&copy);
                }
            }),
        ),
    ]
}
