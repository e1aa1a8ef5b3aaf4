//! The typed names a Connect call negotiates in its headers: the message [`Codec`] and the
//! content [`Encoding`]. Transports take these instead of strings, so an unknown name cannot
//! reach the wire.

use std::fmt;

use crate::compression::{Compression, Gzip};

/// A content encoding this crate implements, as named in `connect-content-encoding`,
/// `content-encoding` and the accept lists.
///
/// `Identity` means "not compressed". Marked `#[non_exhaustive]` because more encodings
/// (zstd, br) may be implemented later.
///
/// ```
/// use cursor_connect_frame::Encoding;
///
/// assert_eq!(Encoding::Gzip.name(), "gzip");
/// assert_eq!(Encoding::from_name(" GZIP "), Some(Encoding::Gzip));
/// assert_eq!(Encoding::from_name("br"), None);
/// assert!(Encoding::Identity.compression().is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// gzip (RFC 1952), implemented by [`Gzip`].
    Gzip,
    /// No compression.
    #[default]
    Identity,
}

impl Encoding {
    /// The name on the wire: `"gzip"` or `"identity"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Identity => "identity",
        }
    }

    /// The encoding a header names (trimmed, case-insensitive); `None` for names this crate
    /// does not implement.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        [Self::Gzip, Self::Identity]
            .into_iter()
            .find(|e| name.eq_ignore_ascii_case(e.name()))
    }

    /// A fresh (de)compressor for this encoding; `None` for `Identity`.
    pub fn compression(self) -> Option<Box<dyn Compression>> {
        match self {
            Self::Gzip => Some(Box::new(Gzip::default())),
            Self::Identity => None,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The message codec of a call, which names its content types:
/// `application/connect+<codec>` for streams and `application/<codec>` for unary calls.
///
/// Marked `#[non_exhaustive]`: Connect allows other codecs.
///
/// ```
/// use cursor_connect_frame::Codec;
///
/// assert_eq!(Codec::Proto.stream_content_type(), "application/connect+proto");
/// assert_eq!(Codec::Json.unary_content_type(), "application/json");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON messages (`json`).
    Json,
    /// Protobuf binary messages (`proto`), the default.
    #[default]
    Proto,
}

impl Codec {
    /// The codec name: `"proto"` or `"json"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Proto => "proto",
        }
    }

    /// The content type of a streaming call: `application/connect+<codec>`.
    pub const fn stream_content_type(self) -> &'static str {
        match self {
            Self::Json => "application/connect+json",
            Self::Proto => "application/connect+proto",
        }
    }

    /// The content type of a unary call: `application/<codec>`.
    pub const fn unary_content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in [Encoding::Gzip, Encoding::Identity] {
            assert_eq!(Encoding::from_name(e.name()), Some(e));
            assert_eq!(e.to_string(), e.name());
        }
        assert_eq!(Encoding::Gzip.compression().map(|c| c.name()), Some("gzip"));
        for c in [Codec::Json, Codec::Proto] {
            assert_eq!(c.stream_content_type(), format!("application/connect+{c}"));
            assert_eq!(c.unary_content_type(), format!("application/{c}"));
        }
    }
}
