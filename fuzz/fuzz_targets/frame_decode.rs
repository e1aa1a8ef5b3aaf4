//! Arbitrary bytes, cut into arbitrary chunks, through both decoders in either direction.
//! Both must agree exactly (frames and error), never panic, never return a payload over the
//! limit, and stay failed once failed.
#![no_main]

use cursor_connect_frame::{Decoder, Direction, EndStream, Gzip};
use cursor_test_support::frame_drivers::{decode_buffered, decode_chunked, without_stray_len};
use libfuzzer_sys::fuzz_target;

const LIMITS: [usize; 4] = [0, 64, 4096, 1 << 20];

fn decoder(cfg: u8) -> Decoder {
    let dir = if cfg & 1 == 0 {
        Direction::Response
    } else {
        Direction::Request
    };
    let dec = Decoder::new(dir).max_message_size(LIMITS[usize::from(cfg >> 2) & 3]);
    if cfg & 2 != 0 {
        dec.compression(Some(Box::new(Gzip::default())))
    } else {
        dec
    }
}

/// Chunk lengths from a small xorshift generator seeded by the input.
fn cuts(seed: u16, len: usize) -> Vec<usize> {
    let mut x = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        // Mostly small chunks (1..=16), sometimes large ones.
        let step = if x & 0x30 == 0 {
            (x >> 8) as usize % 4096 + 1
        } else {
            (x >> 8) as usize % 16 + 1
        };
        pos = (pos + step).min(len);
        out.push(pos);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [cfg, s0, s1, wire @ ..] = data else {
        return;
    };
    let cuts = cuts(u16::from_le_bytes([*s0, *s1]), wire.len());
    let whole = without_stray_len(decode_buffered(decoder(*cfg), wire, &[]));
    let split = without_stray_len(decode_buffered(decoder(*cfg), wire, &cuts));
    let zero_copy = without_stray_len(decode_chunked(decoder(*cfg), wire, &cuts));
    assert_eq!(whole, split, "chunking changed the buffer decoder's result");
    assert_eq!(whole, zero_copy, "chunk decoder disagrees");
    let limit = LIMITS[usize::from(cfg >> 2) & 3];
    for f in &whole.0 {
        assert!(f.payload.len() <= limit);
        if f.is_end_stream() {
            let _ = EndStream::parse(&f.payload);
        }
    }
});
