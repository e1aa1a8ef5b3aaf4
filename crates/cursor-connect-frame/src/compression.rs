//! Per-message compression: the [`Compression`] trait and its gzip implementation.

use std::fmt;

use flate2::{Compress, Crc, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::FrameError;
use crate::names::Encoding;

/// A per-message compression algorithm (the `connect-content-encoding` of a stream).
///
/// Implementations keep their (de)compressor state between messages so that each message does
/// not pay for a fresh allocation; every message is still compressed independently, as the
/// protocol requires.
pub trait Compression: Send + Sync + fmt::Debug {
    /// The encoding name as it appears in `connect-content-encoding`, e.g. `"gzip"`.
    fn name(&self) -> &'static str;

    /// Appends the compressed form of `src` to `dst`.
    fn compress(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError>;

    /// Appends the decompressed form of `src` to `dst`, producing at most `limit` bytes.
    ///
    /// Implementations must stop as soon as the output would exceed `limit` (inflate at most
    /// `limit + 1` bytes, never drain the rest) and return
    /// [`FrameError::DecompressedTooLarge`]; corrupt input is
    /// [`FrameError::CorruptCompressed`].
    fn decompress(&mut self, src: &[u8], dst: &mut Vec<u8>, limit: usize)
    -> Result<(), FrameError>;
}

/// Returns the compression for an encoding name: `gzip` gives [`Gzip`]; `identity` and names
/// this crate does not implement give `None`.
pub fn compression_for(name: &str) -> Option<Box<dyn Compression>> {
    Encoding::from_name(name).and_then(Encoding::compression)
}

const GZIP_NAME: &str = "gzip";
/// Member header we write: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
const GZIP_TRAILER_LEN: usize = 8;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;
/// Smallest output step while inflating: big enough to amortise calls, small enough that a bomb
/// is noticed early.
const INFLATE_STEP: usize = 16 * 1024;

/// gzip (RFC 1952) over raw deflate from flate2's zlib-rs backend.
///
/// The gzip member framing and CRC are handled here so that the raw inflate/deflate state can be
/// reset and reused between messages (zlib-rs re-allocates on reset in gzip mode). Concatenated
/// members are accepted when decompressing.
pub struct Gzip {
    level: u32,
    // Created on first use: a decoder never pays for deflate state (hundreds of KiB), an
    // encoder never pays for inflate state.
    inflate: Option<Decompress>,
    deflate: Option<Compress>,
}

impl Gzip {
    /// gzip at the given level (0 = store, 1 = fastest, 9 = smallest; values above 9 are
    /// clamped).
    pub fn with_level(level: u32) -> Self {
        let level = level.min(9);
        Self {
            level,
            inflate: None,
            deflate: None,
        }
    }

    /// The compression level in use.
    pub fn level(&self) -> u32 {
        self.level
    }
}

impl Default for Gzip {
    /// gzip at level 6, the zlib default.
    fn default() -> Self {
        Self::with_level(6)
    }
}

impl fmt::Debug for Gzip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gzip").field("level", &self.level).finish()
    }
}

fn corrupt(len: usize, reason: &'static str) -> FrameError {
    FrameError::CorruptCompressed {
        encoding: GZIP_NAME,
        len,
        reason,
    }
}

/// Returns the length of the gzip member header at the start of `src`.
fn gzip_header_len(src: &[u8], total: usize) -> Result<usize, FrameError> {
    let truncated = || corrupt(total, "truncated header");
    if src.len() < GZIP_HEADER.len() {
        return Err(truncated());
    }
    if src[0] != 0x1f || src[1] != 0x8b {
        return Err(corrupt(total, "bad magic"));
    }
    if src[2] != 8 {
        return Err(corrupt(total, "unsupported method"));
    }
    let flg = src[3];
    if flg & FRESERVED != 0 {
        return Err(corrupt(total, "reserved header flags"));
    }
    let mut pos = GZIP_HEADER.len();
    if flg & FEXTRA != 0 {
        let xlen = src.get(pos..pos + 2).ok_or_else(truncated)?;
        let xlen = usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        pos += 2 + xlen;
        if pos > src.len() {
            return Err(truncated());
        }
    }
    for bit in [FNAME, FCOMMENT] {
        if flg & bit != 0 {
            let nul = src[pos..]
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(truncated)?;
            pos += nul + 1;
        }
    }
    if flg & FHCRC != 0 {
        pos += 2;
        if pos > src.len() {
            return Err(truncated());
        }
    }
    Ok(pos)
}

impl Compression for Gzip {
    fn name(&self) -> &'static str {
        GZIP_NAME
    }

    fn compress(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        let failed = || FrameError::CompressFailed {
            encoding: GZIP_NAME,
        };
        let level = self.level;
        let deflate = self
            .deflate
            .get_or_insert_with(|| Compress::new(flate2::Compression::new(level), false));
        deflate.reset();
        dst.extend_from_slice(&GZIP_HEADER);
        // Deflate's worst case is a few bytes per 16 KiB block over the input size.
        dst.reserve(src.len() / 2 + 64);
        let mut input = src;
        loop {
            if dst.len() == dst.capacity() {
                dst.reserve(src.len() / 4 + 64);
            }
            let before = deflate.total_in();
            let status = deflate
                .compress_vec(input, dst, FlushCompress::Finish)
                .map_err(|_| failed())?;
            let consumed = usize::try_from(deflate.total_in() - before).map_err(|_| failed())?;
            input = input.get(consumed..).ok_or_else(failed)?;
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(src);
        dst.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952 §2.3.1).
        dst.extend_from_slice(&(src.len() as u32).to_le_bytes());
        Ok(())
    }

    fn decompress(
        &mut self,
        src: &[u8],
        dst: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), FrameError> {
        let total = src.len();
        let start = dst.len();
        // We accept limit + 1 bytes of output so that "exactly limit" is distinguishable from
        // "more than limit" without inflating any further.
        let cap = limit.saturating_add(1);
        let mut input = src;
        let inflate = self.inflate.get_or_insert_with(|| Decompress::new(false));
        loop {
            let hdr = gzip_header_len(input, total)?;
            input = &input[hdr..];
            inflate.reset(false);
            let member_start = dst.len();
            loop {
                let produced = dst.len() - start;
                if produced > limit {
                    return Err(FrameError::DecompressedTooLarge { limit });
                }
                if dst.len() == dst.capacity() {
                    // Grow geometrically, but never past the remaining budget: a bomb can make
                    // us hold at most limit + 1 bytes.
                    let step = produced
                        .max(INFLATE_STEP)
                        .max(input.len().saturating_mul(2));
                    dst.reserve_exact(step.min(cap - produced));
                }
                let before_in = inflate.total_in();
                let before_out = dst.len();
                let status = inflate
                    .decompress_vec(input, dst, FlushDecompress::None)
                    .map_err(|_| corrupt(total, "invalid deflate data"))?;
                let consumed = usize::try_from(inflate.total_in() - before_in)
                    .map_err(|_| corrupt(total, "invalid deflate data"))?;
                input = input.get(consumed..).unwrap_or_default();
                if status == Status::StreamEnd {
                    break;
                }
                let made_progress = consumed > 0 || dst.len() > before_out;
                if !made_progress && dst.len() < dst.capacity() {
                    // Output space was available and nothing moved: the input ran out.
                    return Err(corrupt(total, "truncated deflate data"));
                }
            }
            if dst.len() - start > limit {
                return Err(FrameError::DecompressedTooLarge { limit });
            }
            let trailer = input
                .get(..GZIP_TRAILER_LEN)
                .ok_or_else(|| corrupt(total, "truncated trailer"))?;
            let want_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let want_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            let member = &dst[member_start..];
            let mut crc = Crc::new();
            crc.update(member);
            if crc.sum() != want_crc {
                return Err(corrupt(total, "crc mismatch"));
            }
            if member.len() as u32 != want_len {
                return Err(corrupt(total, "length mismatch"));
            }
            input = &input[GZIP_TRAILER_LEN..];
            if input.is_empty() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Gzip::default().compress(data, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_reuses_state() {
        let mut g = Gzip::default();
        for n in [0usize, 1, 100, 70_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut c = Vec::new();
            g.compress(&data, &mut c).unwrap();
            let mut d = Vec::new();
            g.decompress(&c, &mut d, n).unwrap();
            assert_eq!(d, data);
        }
    }

    #[test]
    fn interoperates_with_flate2_gz() {
        use std::io::{Read, Write};
        let data = b"hello hello hello hello".repeat(50);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        let theirs = enc.finish().unwrap();
        let mut d = Vec::new();
        Gzip::default()
            .decompress(&theirs, &mut d, 1 << 20)
            .unwrap();
        assert_eq!(d, data);

        let ours = gz(&data);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&ours[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn limit_is_exact() {
        let data = vec![7u8; 1000];
        let c = gz(&data);
        let mut d = Vec::new();
        Gzip::default().decompress(&c, &mut d, 1000).unwrap();
        let mut d = Vec::new();
        assert_eq!(
            Gzip::default().decompress(&c, &mut d, 999),
            Err(FrameError::DecompressedTooLarge { limit: 999 })
        );
        assert!(d.len() <= 1000);
    }

    #[test]
    fn corrupt_inputs_are_distinct_errors() {
        let c = gz(b"some text that compresses some text that compresses");
        let mut g = Gzip::default();
        let mut d = Vec::new();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "truncated header"),
            (b"not gzip at all".to_vec(), "bad magic"),
            (c[..c.len() - 3].to_vec(), "truncated trailer"),
            (c[..12].to_vec(), "truncated deflate data"),
            (
                {
                    let mut x = c.clone();
                    let n = x.len();
                    x[n - 8] ^= 1;
                    x
                },
                "crc mismatch",
            ),
        ];
        for (input, reason) in cases {
            d.clear();
            match g.decompress(&input, &mut d, 1 << 20) {
                Err(FrameError::CorruptCompressed { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn concatenated_members_and_header_fields() {
        let mut two = gz(b"abc");
        two.extend_from_slice(&gz(b"def"));
        let mut d = Vec::new();
        Gzip::default().decompress(&two, &mut d, 10).unwrap();
        assert_eq!(d, b"abcdef");

        // FEXTRA + FNAME + FCOMMENT + FHCRC all present.
        let inner = gz(b"xyz");
        let mut m = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        m.extend_from_slice(&[2, 0, 9, 9]);
        m.extend_from_slice(b"name\0comment\0");
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&inner[10..]);
        let mut d = Vec::new();
        Gzip::default().decompress(&m, &mut d, 10).unwrap();
        assert_eq!(d, b"xyz");
    }

    #[test]
    fn names() {
        assert_eq!(compression_for("gzip").unwrap().name(), "gzip");
        assert!(compression_for("identity").is_none());
        assert!(compression_for("br").is_none());
        assert_eq!(Gzip::with_level(42).level(), 9);
    }
}
