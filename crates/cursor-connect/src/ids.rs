//! Random identifiers: UUIDs, request ids, session keys.

use std::fmt::Write as _;

use rand::RngCore as _;

/// Returns a random RFC 9562 version-4 UUID in its lowercase hyphenated form.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Returns `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex_lower(&b)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The request ids of one logical call.
///
/// `x-original-request-id` stays the same across every retry of the call, while
/// `x-request-id` is fresh for each attempt (the CLI's behaviour, reference §3.1).
///
/// ```
/// let mut ids = cursor_connect::RequestIds::new();
/// let first = ids.request_id().to_owned();
/// let original = ids.original_request_id().to_owned();
/// ids.next_attempt();
/// assert_ne!(ids.request_id(), first);
/// assert_eq!(ids.original_request_id(), original);
/// assert_eq!(ids.attempt(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    original: String,
    current: String,
    attempt: u32,
}

impl RequestIds {
    /// Starts a new logical call; the first attempt's id doubles as the original id.
    pub fn new() -> Self {
        let id = uuid_v4();
        Self {
            original: id.clone(),
            current: id,
            attempt: 0,
        }
    }

    /// Starts a new attempt: a fresh `x-request-id`, the same `x-original-request-id`.
    pub fn next_attempt(&mut self) {
        self.current = uuid_v4();
        self.attempt = self.attempt.saturating_add(1);
    }

    /// The current attempt's `x-request-id`.
    pub fn request_id(&self) -> &str {
        &self.current
    }

    /// The `x-original-request-id`, stable across attempts.
    pub fn original_request_id(&self) -> &str {
        &self.original
    }

    /// The number of retries so far (0 for the first attempt).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let u = uuid_v4();
            assert_eq!(u.len(), 36);
            let parts: Vec<&str> = u.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'));
            assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
            assert!(seen.insert(u));
        }
    }

    #[test]
    fn attempts_keep_original() {
        let mut ids = RequestIds::new();
        assert_eq!(ids.request_id(), ids.original_request_id());
        let orig = ids.original_request_id().to_owned();
        let mut all = vec![ids.request_id().to_owned()];
        for _ in 0..3 {
            ids.next_attempt();
            assert_eq!(ids.original_request_id(), orig);
            assert!(!all.contains(&ids.request_id().to_owned()));
            all.push(ids.request_id().to_owned());
        }
        assert_eq!(ids.attempt(), 3);
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(hex_lower(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(random_hex(32).len(), 64);
    }
}
