//! The `x-cursor-checksum` header the IDE sends (reference §4, addenda 7).
//!
//! The value is an 8-character prefix that encodes the current time in units of 1000 s,
//! followed by the machine id and, optionally, `/` and the mac machine id. The prefix is built
//! the way the IDE's JavaScript builds it: JS `>>` works on 32-bit integers with the shift
//! count taken mod 32, so the six input bytes are `[k>>8, k, k>>24, k>>16, k>>8, k]`, not the
//! big-endian 48-bit value a 64-bit port would produce. Only this layout reproduces the real
//! captured headers (C01, C02).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The XOR key the obfuscation starts with.
const KEY: u8 = 0xA5;

/// The time unit the prefix counts, in milliseconds (1000 s).
const UNIT_MS: u64 = 1_000_000;

/// Computes the 8-character checksum prefix for a wall-clock time in Unix milliseconds.
///
/// ```
/// // Worked example from the protocol reference, §4.2.
/// assert_eq!(cursor_connect::checksum::prefix(1_755_000_000_000), "YhsdCtGu");
/// ```
pub fn prefix(unix_ms: u64) -> String {
    // Truncation to 32 bits is the point: JS bitwise operators work on int32.
    let k = (unix_ms / UNIT_MS) as u32;
    let mut bytes = [
        (k >> 8) as u8,
        k as u8,
        (k >> 24) as u8,
        (k >> 16) as u8,
        (k >> 8) as u8,
        k as u8,
    ];
    obfuscate(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds the full header value: prefix, machine id, and `/mac_machine_id` when given.
///
/// ```
/// let v = cursor_connect::checksum::header_value(1_755_000_000_000, "ab", Some("cd"));
/// assert_eq!(v, "YhsdCtGuab/cd");
/// ```
pub fn header_value(unix_ms: u64, machine_id: &str, mac_machine_id: Option<&str>) -> String {
    let mut out = prefix(unix_ms);
    out.push_str(machine_id);
    if let Some(mac) = mac_machine_id {
        out.push('/');
        out.push_str(mac);
    }
    out
}

/// Decodes a checksum prefix back to the time unit it encodes (`floor(unix_ms / 1e6)`).
///
/// Returns `None` when the prefix is not 8 URL-safe base64 characters or the de-obfuscated
/// bytes are not in the JS layout (`b[0] == b[4]`, `b[1] == b[5]`).
pub fn decode_prefix(prefix: &str) -> Option<u32> {
    let raw = prefix.get(..8)?;
    let decoded = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let mut bytes: [u8; 6] = decoded.try_into().ok()?;
    deobfuscate(&mut bytes);
    if bytes[0] != bytes[4] || bytes[1] != bytes[5] {
        return None;
    }
    Some(u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]))
}

fn obfuscate(bytes: &mut [u8; 6]) {
    let mut k = KEY;
    for (i, b) in bytes.iter_mut().enumerate() {
        // Feedback uses the output byte.
        *b = (*b ^ k).wrapping_add(i as u8);
        k = *b;
    }
}

fn deobfuscate(bytes: &mut [u8; 6]) {
    let mut k = KEY;
    for (i, b) in bytes.iter_mut().enumerate() {
        let c = *b;
        *b = c.wrapping_sub(i as u8) ^ k;
        k = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `x-cursor-checksum` value of a captured header dump (tests/vectors).
    fn captured(dump: &str) -> &str {
        dump.lines()
            .find_map(|l| l.strip_prefix("x-cursor-checksum: "))
            .expect("dump has a checksum line")
            .trim()
    }

    fn obfuscated(unix_ms: u64) -> [u8; 6] {
        let s = prefix(unix_ms);
        URL_SAFE_NO_PAD.decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn worked_example_1755000000000() {
        assert_eq!(
            obfuscated(1_755_000_000_000),
            [0x62, 0x1b, 0x1d, 0x0a, 0xd1, 0xae]
        );
        assert_eq!(prefix(1_755_000_000_000), "YhsdCtGu");
    }

    #[test]
    fn worked_example_2026_01_01() {
        assert_eq!(
            obfuscated(1_767_225_600_000),
            [0x52, 0x6c, 0x6e, 0x77, 0x84, 0xc2]
        );
        assert_eq!(prefix(1_767_225_600_000), "Umxud4TC");
    }

    #[test]
    fn sixty_four_bit_variant_is_not_what_we_emit() {
        // The reference lists the 64-bit-shift variant's prefixes; ours must differ.
        let mut b = [0, 0, 0, 0x1a, 0xc7, 0x78];
        obfuscate(&mut b);
        assert_eq!(b, [0xa5, 0xa6, 0xa8, 0xb5, 0x76, 0x13]);
        assert_eq!(URL_SAFE_NO_PAD.encode(b), "paaotXYT");
        assert_ne!(prefix(1_755_000_000_000), "paaotXYT");
        let mut b = [0, 0, 0, 0x1a, 0xf7, 0x39];
        obfuscate(&mut b);
        assert_eq!(URL_SAFE_NO_PAD.encode(b), "paaotUaE");
    }

    #[test]
    fn c01_real_header_0_44_11() {
        // Window 2025-02-16T10:16:40Z .. 10:33:20Z.
        let dump = cursor_test_support::vectors::text("C01-checksum-0.44.11.txt");
        let real = captured(&dump);
        assert!(real.starts_with("LpyehxCq"));
        let start = 1_739_701_000_000;
        for ms in [start, start + 500_000, start + 999_999] {
            assert_eq!(
                header_value(
                    ms,
                    "565f478973be4748a6523d4b3090ef2250cff6c8bfda465aaa4ef0aafb74e52d",
                    Some("0bcdac88-d1e1-41c0-aa7b-73105ca1628f"),
                ),
                real
            );
        }
        assert_ne!(prefix(start + 1_000_000), "LpyehxCq");
        assert_eq!(decode_prefix(real), Some(1_739_701));
    }

    #[test]
    fn c02_real_header_2_0_77() {
        let dump = cursor_test_support::vectors::text("C02-checksum-2.0.77.txt");
        let real = captured(&dump);
        assert!(real.starts_with("Vy4wLeOe"));
        // The same value is in the full IDE header dump of that capture (H01).
        assert_eq!(
            real,
            captured(&cursor_test_support::vectors::text(
                "H01-headers-ide-2.0.77-availablemodels.txt"
            ))
        );
        // A capture time inside the published window: 2025-12-17T22:20:46Z.
        let capture_ms = 1_766_010_046_587;
        let (machine, mac) = real[8..].split_once('/').unwrap();
        assert_eq!(header_value(capture_ms, machine, Some(mac)), real);
        assert_eq!(decode_prefix(real), Some(1_766_010));
        assert_eq!(real.len(), 137);
    }

    #[test]
    fn decode_rejects_garbage() {
        assert_eq!(decode_prefix("short"), None);
        assert_eq!(decode_prefix("!!!!!!!!"), None);
        // 64-bit layout does not satisfy the JS invariants.
        assert_eq!(decode_prefix("paaotXYT"), None);
    }

    #[test]
    fn round_trip_over_many_times() {
        let mut ms = 1_600_000_000_000u64;
        for _ in 0..2000 {
            let p = prefix(ms);
            assert_eq!(p.len(), 8);
            assert_eq!(decode_prefix(&p), Some((ms / UNIT_MS) as u32));
            ms += 7_777_777_777;
        }
    }
}
