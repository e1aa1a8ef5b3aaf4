//! The captured Cursor wire vectors, stored once in this crate's `vectors/` folder (provenance
//! in `vectors/README.md`). Names are the file names, e.g. `"F01-heartbeat-frame.hex"`.
//!
//! Text vectors may carry `#` comment lines from the capture notes: [`body`] strips them.

use std::path::PathBuf;

/// The folder holding every vector.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Every vector's file name, sorted (the README excluded).
///
/// # Panics
/// If the folder cannot be read.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("vectors folder")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .filter(|n| n != "README.md")
        .collect();
    names.sort();
    names
}

/// The raw bytes of vector `name`.
///
/// # Panics
/// If there is no such vector.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Vector `name` as text.
///
/// # Panics
/// If there is no such vector or it is not UTF-8.
pub fn text(name: &str) -> String {
    String::from_utf8(bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Vector `name` without its `#` comment lines (lines joined with `\n`).
pub fn body(name: &str) -> String {
    text(name)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `.hex` vector decoded to bytes.
pub fn hex(name: &str) -> Vec<u8> {
    unhex(&text(name))
}

/// Hex text to bytes; white space is ignored.
///
/// # Panics
/// On an odd number of digits or a non-hex character.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(s, 16).unwrap_or_else(|e| panic!("hex {s:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_vector_decodes() {
        assert_eq!(
            hex("F01-heartbeat-frame.hex"),
            unhex("00 00000004 0a026a00")
        );
        assert!(names().len() >= 29);
    }
}
