//! Decompression-bomb and declared-length defences. Kept in its own test binary (one test) so
//! that the peak-RSS measurement is not disturbed by other tests running in parallel.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{
    ChunkDecoder, Compression, DEFAULT_MAX_MESSAGE_SIZE, Decoder, Direction, FrameError, Gzip,
};

const MIB: usize = 1 << 20;
/// CRC-32 of 2^30 zero bytes (computed once with Python's `zlib.crc32`; the test checks the
/// construction below end to end on a 4 MiB member whose CRC it computes itself).
const CRC_OF_1_GIB_ZEROS: u32 = 0x5b64_c2b0;

/// Compresses 1 MiB of zeros as raw deflate ending in a full flush: the output is a
/// byte-aligned run of non-final blocks that refers to nothing before it, so it can be repeated.
fn zero_block(c: &mut flate2::Compress) -> Vec<u8> {
    let zeros = vec![0u8; MIB];
    let mut out = Vec::with_capacity(64 * 1024);
    let start_in = c.total_in();
    loop {
        let done = usize::try_from(c.total_in() - start_in).unwrap();
        c.compress_vec(&zeros[done..], &mut out, flate2::FlushCompress::Full)
            .unwrap();
        let done = usize::try_from(c.total_in() - start_in).unwrap();
        if done == MIB && out.len() < out.capacity() {
            return out;
        }
        out.reserve(64 * 1024);
    }
}

/// A gzip member of `mib` MiB of zeros: header, `mib` copies of the flushed zero block, an
/// empty final block, CRC and ISIZE. Built from two real compressor passes (about 1 MB of
/// output for 1 GiB, the classic bomb) without ever holding the zeros.
fn gzip_zeros(mib: usize, crc: u32) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let block = zero_block(&mut c);
    // The full flush resets the compressor's history, so the next MiB compresses identically.
    assert_eq!(zero_block(&mut c), block, "flushed zero blocks must repeat");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff];
    for _ in 0..mib {
        out.extend_from_slice(&block);
    }
    let mut fin = Vec::with_capacity(64);
    c.compress_vec(&[], &mut fin, flate2::FlushCompress::Finish)
        .unwrap();
    out.extend_from_slice(&fin);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&((mib * MIB) as u32).to_le_bytes());
    out
}

fn gzip_bomb() -> Vec<u8> {
    gzip_zeros(1024, CRC_OF_1_GIB_ZEROS)
}

/// Peak resident set size of this process in KiB (Linux), if available.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn bombs_and_huge_declared_lengths_are_bounded() {
    let started = Instant::now();
    let bomb = gzip_bomb();
    let built_in = started.elapsed();
    assert!(
        bomb.len() < 1_100_000 && bomb.len() > 900_000,
        "bomb is {} bytes",
        bomb.len()
    );
    let wire = envelope(1, &bomb);
    let before = peak_rss_kib();

    // 1. Through the trait: output capped at limit + 1, distinct error.
    let t = Instant::now();
    let mut out = Vec::new();
    let err = Gzip::default()
        .decompress(&bomb, &mut out, DEFAULT_MAX_MESSAGE_SIZE)
        .unwrap_err();
    let rejected_in = t.elapsed();
    assert_eq!(
        err,
        FrameError::DecompressedTooLarge {
            limit: DEFAULT_MAX_MESSAGE_SIZE
        }
    );
    assert!(
        out.capacity() <= DEFAULT_MAX_MESSAGE_SIZE + 1,
        "capacity {}",
        out.capacity()
    );
    drop(out);

    // 2. Through both decoders, in HTTP/2-sized chunks.
    let mut dec = Decoder::new(Direction::Response).compression(Some(Box::new(Gzip::default())));
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(FrameError::DecompressedTooLarge {
            limit: DEFAULT_MAX_MESSAGE_SIZE
        })
    );
    let mut chunked = ChunkDecoder::new(
        Decoder::new(Direction::Response).compression(Some(Box::new(Gzip::default()))),
    );
    let mut result = Ok(None);
    for piece in wire.chunks(16 * 1024) {
        chunked.push(Bytes::copy_from_slice(piece));
        result = chunked.next_frame();
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(
        result,
        Err(FrameError::DecompressedTooLarge { .. })
    ));

    // 3. A 4 GiB declared length: rejected at the header under the default limit, and with no
    //    limit at all the decoders still hold only the bytes that arrived.
    const HUGE: [u8; 5] = [0, 0xff, 0xff, 0xff, 0xff];
    let huge = HUGE;
    let mut buf = BytesMut::from(&huge[..]);
    assert!(matches!(
        Decoder::new(Direction::Request).decode(&mut buf),
        Err(FrameError::MessageTooLarge {
            len: 0xffff_ffff,
            ..
        })
    ));
    let mut open = Decoder::new(Direction::Request).max_message_size(usize::MAX);
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&huge);
    buf.extend_from_slice(&[7u8; 40]);
    assert_eq!(open.decode(&mut buf), Ok(None));
    assert_eq!(
        buf.capacity(),
        64 - 5,
        "decoder must not reserve the declared length"
    );
    assert_eq!(open.buffered_hint(buf.len()), Some(0xffff_ffff - 40));
    let mut open = ChunkDecoder::new(Decoder::new(Direction::Request).max_message_size(usize::MAX));
    open.push(Bytes::from_static(&HUGE));
    open.push(Bytes::from_static(&[7u8; 40]));
    assert_eq!(open.next_frame(), Ok(None));
    assert_eq!(open.buffered(), 45);

    let after = peak_rss_kib();
    if let (Some(before), Some(after)) = (before, after) {
        let grown_mib = (after.saturating_sub(before)) / 1024;
        // "A few times the limit": 4 MiB of output plus growth slack and the 1 MB input copies.
        assert!(grown_mib <= 24, "peak RSS grew by {grown_mib} MiB");
        eprintln!(
            "bomb {} B built in {built_in:?}; rejected in {rejected_in:?}; peak RSS +{grown_mib} MiB",
            bomb.len()
        );
    }
    assert!(rejected_in < Duration::from_secs(2), "took {rejected_in:?}");

    // The construction is valid gzip: a 4 MiB instance inflates fully, with flate2's reader and
    // with ours, and a limit one byte short rejects it.
    let mut crc = flate2::Crc::new();
    let zeros = vec![0u8; MIB];
    for _ in 0..4 {
        crc.update(&zeros);
    }
    let small = gzip_zeros(4, crc.sum());
    let mut theirs = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&small[..]), &mut theirs).unwrap();
    assert_eq!(theirs.len(), 4 * MIB);
    assert!(theirs.iter().all(|&b| b == 0));
    let mut ours = Vec::new();
    Gzip::default()
        .decompress(&small, &mut ours, 4 * MIB)
        .unwrap();
    assert_eq!(ours, theirs);
    drop((theirs, ours));
    let mut ours = Vec::new();
    assert_eq!(
        Gzip::default().decompress(&small, &mut ours, 4 * MIB - 1),
        Err(FrameError::DecompressedTooLarge { limit: 4 * MIB - 1 })
    );
    drop(ours);
}
