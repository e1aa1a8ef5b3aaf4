//! The client's KV [`BlobStore`] backed by the [`Store`], so that a checkpoint restored after a
//! restart (or on another instance) can be served the blobs it refers to.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cursor_connect::{BlobError, BlobStore, MemoryBlobStore};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;
use tracing::warn;

use super::Store;

/// Bytes of blobs cached in this process in front of the store.
const CACHE_BYTES: usize = 64 << 20;

/// Blobs in memory first, then in the store. Writes go to the store behind the run (see
/// [`StoreBlobs::settle`]). The client's blob interface is synchronous, so a read that misses
/// the cache blocks this worker thread (`block_in_place`) for one store access, bounded by the
/// backend's deadline.
#[derive(Debug)]
pub struct StoreBlobs {
    cache: MemoryBlobStore,
    store: Arc<dyn Store>,
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl StoreBlobs {
    /// Blobs kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            cache: MemoryBlobStore::with_max_bytes(CACHE_BYTES),
            store,
            pending: Mutex::default(),
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

impl StoreBlobs {
    /// Waits until every blob handed over so far is in the store (called before a turn's
    /// response ends, so an acknowledged checkpoint never refers to a blob a crash lost).
    pub async fn settle(&self) {
        let pending = std::mem::take(&mut *self.lock_pending());
        for save in pending {
            let _ = save.await;
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlobStore for StoreBlobs {
    fn get(&self, id: &[u8]) -> Option<Bytes> {
        if let Some(data) = self.cache.get(id) {
            return Some(data);
        }
        // Only after a restart or on another instance: the blob is not cached here yet.
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
        let save = async move {
            if let Err(e) = store.save_blob(id, data).await {
                warn!(error = %e, "saving a blob to the state store failed");
            }
        };
        // Written behind, without blocking the run; `settle` waits for it before the turn's
        // response ends.
        match Handle::try_current() {
            Ok(h) => {
                let mut pending = self.lock_pending();
                pending.retain(|s| !s.is_finished());
                pending.push(h.spawn(save));
            }
            Err(_) => warn!("no runtime to save a blob with; it stays in memory"),
        }
        Ok(())
    }
}
