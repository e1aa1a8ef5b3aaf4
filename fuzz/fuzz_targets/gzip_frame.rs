//! Arbitrary bytes as a gzip payload under a small limit (never more than limit + 1 bytes
//! inflated, never a panic), plus a compress/decompress round trip of the same bytes.
#![no_main]

use cursor_connect_frame::{Compression, FrameError, Gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [sel, rest @ ..] = data else { return };
    let limit = [0usize, 1, 100, 4096, 65536][usize::from(*sel) % 5];
    let mut gz = Gzip::with_level(u32::from(*sel >> 4));
    let mut out = Vec::new();
    match gz.decompress(rest, &mut out, limit) {
        Ok(()) => assert!(out.len() <= limit),
        Err(FrameError::DecompressedTooLarge { .. } | FrameError::CorruptCompressed { .. }) => {
            assert!(out.len() <= limit + 1);
        }
        Err(e) => panic!("unexpected error kind: {e:?}"),
    }
    // The same state, reused: a round trip of the input.
    let mut packed = Vec::new();
    gz.compress(rest, &mut packed).unwrap();
    let mut back = Vec::new();
    gz.decompress(&packed, &mut back, rest.len()).unwrap();
    assert_eq!(back, rest);
});
