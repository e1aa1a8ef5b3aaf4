//! Shared helpers for the wire tests.

use std::fmt::Debug;

use prost::Message;

/// Decodes hand-assembled `wire` bytes, checks the result equals `expected`, and checks that
/// encoding `expected` gives back exactly `wire`. The bytes are written in prost's order:
/// ascending field numbers, with a oneof placed at the position of its lowest-numbered member.
#[allow(dead_code)] // not every test binary uses it
pub(crate) fn check<M: Message + Default + PartialEq + Debug>(
    name: &str,
    wire: &[u8],
    expected: &M,
) {
    let decoded = M::decode(wire).unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
    assert_eq!(&decoded, expected, "{name}: decoded value");
    assert_eq!(expected.encode_to_vec(), wire, "{name}: re-encoded bytes");
    assert_eq!(expected.encoded_len(), wire.len(), "{name}: encoded_len");
}

/// Hex text (whitespace ignored) to bytes.
#[allow(unused_imports)] // not every test binary reads hex files
pub(crate) use cursor_test_support::vectors::unhex;
