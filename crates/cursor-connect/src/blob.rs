//! The blob store behind the agent protocol's KV channel.
//!
//! During a run the server stores prompt, turn and step blobs on the client (`set_blob_args`)
//! and reads them back (`get_blob_args`), possibly in a later turn; checkpoints refer to them by
//! id. Ids are SHA-256 digests of the content (reference §2.2).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// The default byte budget of a [`MemoryBlobStore`].
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// Why a blob could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// Storing the blob would exceed the store's byte budget.
    #[error("blob store full: {len} more bytes would exceed the budget of {limit}")]
    Full {
        /// Size of the rejected blob, id included.
        len: usize,
        /// The store's budget.
        limit: usize,
    },
    /// A backend-specific failure.
    #[error("blob store failed: {0}")]
    Backend(String),
}

/// Where KV blobs live. Implement it to persist blobs (a database, disk) across processes.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// The blob stored under `id`, if any.
    fn get(&self, id: &[u8]) -> Option<Bytes>;
    /// Stores `data` under `id` (the server chooses ids; they are normally SHA-256 digests).
    fn set(&self, id: Bytes, data: Bytes) -> Result<(), BlobError>;
}

/// The SHA-256 digest of `data`: the id content-addressed blobs are stored under.
pub fn blob_id(data: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&Sha256::digest(data))
}

/// An in-memory, content-addressed blob store with a byte budget (the default store).
///
/// ```
/// use cursor_connect::{BlobStore, MemoryBlobStore, blob_id};
/// let store = MemoryBlobStore::default();
/// let id = store.insert(bytes::Bytes::from_static(b"hello"));
/// assert_eq!(id, blob_id(b"hello"));
/// assert_eq!(store.get(&id).unwrap(), "hello");
/// ```
pub struct MemoryBlobStore {
    inner: Mutex<Inner>,
    limit: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Bytes, Bytes>,
    bytes: usize,
}

impl MemoryBlobStore {
    /// A store that holds at most `max_bytes` of blob ids and data.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            limit: max_bytes,
        }
    }

    /// Stores `data` under its SHA-256 id and returns the id. Over budget, the blob is not
    /// stored (the id is still returned).
    pub fn insert(&self, data: Bytes) -> Bytes {
        let id = blob_id(&data);
        if let Err(e) = self.set(id.clone(), data) {
            tracing::debug!(error = %e, "blob not stored");
        }
        id
    }

    /// Number of blobs held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when no blob is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, ids and data.
    pub fn total_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map inconsistent: recover.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryBlobStore {
    fn default() -> Self {
        Self::with_max_bytes(DEFAULT_MAX_BYTES)
    }
}

impl fmt::Debug for MemoryBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        f.debug_struct("MemoryBlobStore")
            .field("blobs", &g.map.len())
            .field("bytes", &g.bytes)
            .field("limit", &self.limit)
            .finish()
    }
}

impl BlobStore for MemoryBlobStore {
    fn get(&self, id: &[u8]) -> Option<Bytes> {
        self.lock().map.get(id).cloned()
    }

    fn set(&self, id: Bytes, data: Bytes) -> Result<(), BlobError> {
        let mut g = self.lock();
        // Ids count too: the server chooses them, and a flood of empty blobs under large ids
        // must not grow memory past the budget.
        let old = g.map.get(&id).map_or(0, |d| id.len() + d.len());
        let len = id.len().saturating_add(data.len());
        let after = (g.bytes - old).saturating_add(len);
        if after > self.limit {
            return Err(BlobError::Full {
                len,
                limit: self.limit,
            });
        }
        g.bytes = after;
        g.map.insert(id, data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_ids() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            crate::ids::hex_lower(&blob_id(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn set_get_and_overwrite_accounting() {
        let s = MemoryBlobStore::with_max_bytes(12);
        s.set(Bytes::from_static(b"a"), Bytes::from_static(b"12345"))
            .unwrap();
        s.set(Bytes::from_static(b"a"), Bytes::from_static(b"1234567"))
            .unwrap();
        assert_eq!(s.total_bytes(), 8);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.set(Bytes::from_static(b"b"), Bytes::from_static(b"1234")),
            Err(BlobError::Full { len: 5, limit: 12 })
        );
        assert_eq!(s.get(b"b"), None);
        s.set(Bytes::from_static(b"b"), Bytes::from_static(b"123"))
            .unwrap();
        assert_eq!(s.total_bytes(), 12);
        assert_eq!(s.get(b"a").unwrap(), "1234567");
    }

    #[test]
    fn server_chosen_ids_count_against_the_budget() {
        // Empty blobs under large ids: without counting ids the map grows without bound.
        let s = MemoryBlobStore::with_max_bytes(1 << 20);
        let mut stored = 0;
        for i in 0..64u8 {
            let id = Bytes::from(vec![i; 64 << 10]);
            if s.set(id, Bytes::new()).is_ok() {
                stored += 1;
            }
        }
        assert_eq!(stored, 16);
        assert!(s.total_bytes() <= 1 << 20);
    }

    #[test]
    fn insert_is_content_addressed() {
        let s = MemoryBlobStore::default();
        let a = s.insert(Bytes::from_static(b"x"));
        let b = s.insert(Bytes::from_static(b"x"));
        assert_eq!(a, b);
        assert_eq!(s.len(), 1);
        assert!(format!("{s:?}").contains("blobs: 1"));
    }
}
