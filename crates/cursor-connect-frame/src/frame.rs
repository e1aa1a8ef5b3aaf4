//! Envelope flags, decoded frames and stream direction.

use std::fmt;

use bytes::Bytes;

/// Length of the envelope header: one flag byte and a 32-bit big-endian length.
pub const HEADER_LEN: usize = 5;

/// The envelope flag byte.
///
/// Bit 0 marks a compressed payload, bit 1 the end-stream envelope; the other six bits are
/// reserved and rejected by the [`Decoder`](crate::Decoder).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// A plain, uncompressed message.
    pub const NONE: Self = Self(0);
    /// The payload is compressed with the stream's encoding.
    pub const COMPRESSED: Self = Self(0x01);
    /// The payload is the end-stream JSON (responses only).
    pub const END_STREAM: Self = Self(0x02);
    /// The bits this crate understands; everything else is reserved.
    const KNOWN: u8 = 0x03;

    /// The raw flag byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds flags from a raw byte, keeping reserved bits (the decoder rejects them).
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// Whether bit 0 (compressed) is set.
    pub const fn is_compressed(self) -> bool {
        self.0 & Self::COMPRESSED.0 != 0
    }

    /// Whether bit 1 (end-stream) is set.
    pub const fn is_end_stream(self) -> bool {
        self.0 & Self::END_STREAM.0 != 0
    }

    /// Whether any of the six reserved bits is set.
    pub const fn has_reserved_bits(self) -> bool {
        self.0 & !Self::KNOWN != 0
    }

    /// These flags with the compressed bit set or cleared.
    pub const fn with_compressed(self, on: bool) -> Self {
        if on {
            Self(self.0 | Self::COMPRESSED.0)
        } else {
            Self(self.0 & !Self::COMPRESSED.0)
        }
    }

    /// These flags with the end-stream bit set or cleared.
    pub const fn with_end_stream(self, on: bool) -> Self {
        if on {
            Self(self.0 | Self::END_STREAM.0)
        } else {
            Self(self.0 & !Self::END_STREAM.0)
        }
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x}", self.0)?;
        if self.is_compressed() {
            f.write_str(" compressed")?;
        }
        if self.is_end_stream() {
            f.write_str(" end-stream")?;
        }
        f.write_str(")")
    }
}

/// One decoded envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The flag byte as it was on the wire (so `is_compressed` tells whether it *was*
    /// compressed).
    pub flags: Flags,
    /// The payload, already decompressed.
    pub payload: Bytes,
}

impl Frame {
    /// Whether this is the end-stream envelope (parse it with
    /// [`EndStream::parse`](crate::EndStream::parse)).
    pub const fn is_end_stream(&self) -> bool {
        self.flags.is_end_stream()
    }
}

/// Which way the envelopes flow; decides whether the end-stream bit is legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: flags 0 and 1 only.
    Request,
    /// Server to client: flags 0 to 3, ending with exactly one end-stream envelope.
    Response,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_bits() {
        let f = Flags::NONE.with_compressed(true).with_end_stream(true);
        assert_eq!(f.bits(), 3);
        assert!(f.is_compressed() && f.is_end_stream() && !f.has_reserved_bits());
        assert_eq!(f.with_compressed(false), Flags::END_STREAM);
        assert_eq!(f.with_end_stream(false), Flags::COMPRESSED);
        assert!(Flags::from_bits(0x04).has_reserved_bits());
        assert_eq!(format!("{f:?}"), "Flags(0x03 compressed end-stream)");
    }
}
