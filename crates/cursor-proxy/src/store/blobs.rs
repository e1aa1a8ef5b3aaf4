//! The client's KV [`BlobStore`] backed by the [`Store`], so that a checkpoint restored after a
//! restart (or on another instance) can be served the blobs it refers to.

use std::sync::Arc;

use bytes::Bytes;
use cursor_connect::{BlobError, BlobStore, MemoryBlobStore};
use tokio::runtime::{Handle, RuntimeFlavor};
use tracing::warn;

use super::Store;

/// Bytes of blobs cached in this process in front of the store.
const CACHE_BYTES: usize = 64 << 20;

/// Blobs in memory first, then in the store. The client's blob interface is synchronous, so
/// a store access blocks this worker thread (`block_in_place`) for its duration: a local
/// SQLite read or one Redis round trip, each bounded by the backend's deadline.
#[derive(Debug)]
pub struct StoreBlobs {
    cache: MemoryBlobStore,
    store: Arc<dyn Store>,
}

impl StoreBlobs {
    /// Blobs kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            cache: MemoryBlobStore::with_max_bytes(CACHE_BYTES),
            store,
        }
    }
}

/// Runs `f` to completion from synchronous code inside the runtime, when the runtime allows
/// blocking one of its threads (multi-threaded); `None` otherwise.
fn blocking<F: Future>(f: F) -> Option<F::Output> {
    let handle = Handle::try_current().ok()?;
    (handle.runtime_flavor() == RuntimeFlavor::MultiThread)
        .then(|| tokio::task::block_in_place(|| handle.block_on(f)))
}

impl BlobStore for StoreBlobs {
    fn get(&self, id: &[u8]) -> Option<Bytes> {
        if let Some(data) = self.cache.get(id) {
            return Some(data);
        }
        let data = match blocking(self.store.blob(id))? {
            Ok(found) => found?,
            Err(e) => {
                warn!(error = %e, "reading a blob from the state store failed");
                return None;
            }
        };
        // A full cache only means the next read goes to the store again.
        let _ = self.cache.set(Bytes::copy_from_slice(id), data.clone());
        Some(data)
    }

    fn set(&self, id: Bytes, data: Bytes) -> Result<(), BlobError> {
        let _ = self.cache.set(id.clone(), data.clone());
        let store = Arc::clone(&self.store);
        let save = async move { store.save_blob(id, data).await };
        // Saved before the turn goes on, so a checkpoint never refers to a blob that a crash
        // lost; on a runtime that cannot block, saved in the background.
        let outcome = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => blocking(save),
            Ok(h) => {
                h.spawn(save);
                None
            }
            Err(_) => None,
        };
        if let Some(Err(e)) = outcome {
            return Err(BlobError::Backend(e.to_string()));
        }
        Ok(())
    }
}
