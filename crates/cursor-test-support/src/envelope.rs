//! Connect envelopes from raw bytes: a flags byte, a big-endian `u32` length, the payload.
//! Written without `cursor-connect-frame` so the frame crate's own tests can use them.

use bytes::{BufMut, Bytes, BytesMut};

/// The end-stream flag (`0x02`).
pub const END_STREAM: u8 = 0x02;
/// The compressed flag (`0x01`).
pub const COMPRESSED: u8 = 0x01;

/// One envelope with the given flags.
///
/// # Panics
/// If `payload` is longer than `u32::MAX` bytes.
pub fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(flags);
    b.put_u32(u32::try_from(payload.len()).expect("payload fits a u32 length"));
    b.put_slice(payload);
    b.freeze()
}

/// A message envelope (flags 0).
pub fn message(payload: &[u8]) -> Bytes {
    envelope(0, payload)
}

/// The clean end-stream envelope: `{}` with the end-stream flag.
pub fn end_ok() -> Bytes {
    envelope(END_STREAM, b"{}")
}

/// An end-stream envelope carrying an error `code` and `message`, plus one metadata entry
/// (`x-m: v`) so tests can check metadata survives.
pub fn end_err(code: &str, message: &str) -> Bytes {
    let json = format!(
        r#"{{"error":{{"code":"{code}","message":"{message}"}},"metadata":{{"x-m":["v"]}}}}"#
    );
    envelope(END_STREAM, json.as_bytes())
}

/// Splits concatenated envelopes into their payloads, ignoring flags. Stops at a trailing
/// partial envelope.
pub fn split_envelopes(wire: &[u8]) -> Vec<&[u8]> {
    split_frames(wire).into_iter().map(|(_, p)| p).collect()
}

/// Splits concatenated envelopes into `(flags, payload)` pairs.
///
/// # Panics
/// If the input ends inside an envelope: tests use it on bodies they expect to be whole.
pub fn split_frames(wire: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "truncated envelope header");
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        assert!(rest.len() >= 5 + len, "truncated envelope payload");
        out.push((rest[0], &rest[5..5 + len]));
        rest = &rest[5 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let wire = [envelope(1, b"x"), end_ok()].concat();
        assert_eq!(split_frames(&wire), vec![(1, &b"x"[..]), (2, &b"{}"[..])]);
    }
}
