//! Field numbers present in a protobuf message, read off the wire (so a field that is present
//! but empty counts, and fields our schema does not declare count too).

use std::collections::BTreeSet;

/// One top-level field: its number, and its payload when it is length-delimited.
type Field<'a> = (u32, Option<&'a [u8]>);

/// Each top-level field. `None` on malformed input, which a test then reports.
fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (key, rest) = varint(buf)?;
        buf = rest;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => buf = varint(buf)?.1,
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            2 => {
                let (len, rest) = varint(buf)?;
                let len = usize::try_from(len).ok()?;
                out.push((number, Some(rest.get(..len)?)));
                buf = &rest[len..];
                continue;
            }
            _ => return None,
        }
        out.push((number, None));
    }
    Some(out)
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &buf[i + 1..]));
        }
    }
    None
}

/// The field numbers present in `buf`.
pub(crate) fn numbers(buf: &[u8]) -> BTreeSet<u32> {
    let all = fields(buf).unwrap_or_else(|| panic!("malformed protobuf: {buf:02x?}"));
    all.into_iter().map(|(n, _)| n).collect()
}

/// The payload of the first length-delimited field `n`.
pub(crate) fn field(buf: &[u8], n: u32) -> Option<&[u8]> {
    fields(buf)?
        .into_iter()
        .find_map(|(number, payload)| (number == n).then_some(payload).flatten())
}
