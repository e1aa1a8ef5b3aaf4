//! `Reason`: an HTTP/2 error code (RFC 9113 §7) as an open newtype with names.

use std::fmt;

/// An HTTP/2 error code, as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
///
/// The code space is open: a peer may send a code newer than RFC 9113, and it stays
/// representable (with no name). The 14 codes RFC 9113 defines are associated constants.
/// `Display` prints the RFC name (`REFUSED_STREAM`), or the code in hex when it has none;
/// `Debug` prints `Reason(REFUSED_STREAM)` or `Reason(0x1e)`.
///
/// ```
/// use cursor_connect_frame::Reason;
///
/// let r = Reason::from(7);
/// assert_eq!(r, Reason::REFUSED_STREAM);
/// assert_eq!(r.to_string(), "REFUSED_STREAM");
/// assert_eq!(u32::from(r), 0x7);
/// assert_eq!(Reason::from(0x1e).name(), None);
/// assert_eq!(Reason::from(0x1e).to_string(), "0x1e");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(u32);

/// RFC 9113 §7 names, indexed by code.
const NAMES: [&str; 14] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
];

impl Reason {
    /// `0x0`: graceful shutdown, not the result of an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// `0x1`: the peer detected an unspecific protocol error.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// `0x2`: the peer hit an unexpected internal error.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// `0x3`: the flow-control protocol was violated.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// `0x4`: SETTINGS were not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// `0x5`: a frame arrived on a half-closed stream.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// `0x6`: a frame had an invalid size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// `0x7`: the stream was refused before any application processing (safe to retry).
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// `0x8`: the stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// `0x9`: the HPACK header compression context cannot be maintained.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// `0xa`: the connection of a CONNECT request was reset or closed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// `0xb`: the peer asks us to generate less load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// `0xc`: the transport does not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// `0xd`: the peer requires HTTP/1.1 for this request.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// Every code RFC 9113 defines, in code order.
    pub const ALL: [Self; 14] = [
        Self::NO_ERROR,
        Self::PROTOCOL_ERROR,
        Self::INTERNAL_ERROR,
        Self::FLOW_CONTROL_ERROR,
        Self::SETTINGS_TIMEOUT,
        Self::STREAM_CLOSED,
        Self::FRAME_SIZE_ERROR,
        Self::REFUSED_STREAM,
        Self::CANCEL,
        Self::COMPRESSION_ERROR,
        Self::CONNECT_ERROR,
        Self::ENHANCE_YOUR_CALM,
        Self::INADEQUATE_SECURITY,
        Self::HTTP_1_1_REQUIRED,
    ];

    /// The code with this number (known or not).
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The code as sent on the wire.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The RFC 9113 name (`"REFUSED_STREAM"`), or `None` for a code RFC 9113 does not define.
    pub const fn name(self) -> Option<&'static str> {
        if (self.0 as usize) < NAMES.len() {
            Some(NAMES[self.0 as usize])
        } else {
            None
        }
    }
}

impl From<u32> for Reason {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<Reason> for u32 {
    fn from(reason: Reason) -> Self {
        reason.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_their_names() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.code() as usize, i);
            assert_eq!(r.name(), Some(NAMES[i]));
            assert_eq!(r.to_string(), NAMES[i]);
        }
        assert_eq!(Reason::HTTP_1_1_REQUIRED.code(), 0xd);
        assert_eq!(Reason::new(0xe).name(), None);
        assert_eq!(Reason::new(u32::MAX).to_string(), "0xffffffff");
        assert_eq!(
            format!("{:?}", Reason::ENHANCE_YOUR_CALM),
            "Reason(ENHANCE_YOUR_CALM)"
        );
        assert_eq!(format!("{:?}", Reason::new(0x1e)), "Reason(0x1e)");
    }
}
