//! State shared by the halves of one call, and the flow-controlled write loop.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::SendStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::conn::ConnState;
use crate::error::{Error, ErrorKind};

/// Most capacity requested from h2 at once. Must stay below 2^31 (h2 casts it to u32) and
/// small enough not to pin connection window that other streams could use.
const RESERVE_CHUNK: usize = 1 << 20;

/// One call's shared state. The h2 `SendStream` lives behind a std mutex that is only held
/// inside synchronous sections or a single `poll`, never across an await.
#[derive(Debug)]
pub(crate) struct Call {
    stream: Mutex<SendStream<Bytes>>,
    pub(crate) conn: Arc<ConnState>,
    pub(crate) deadline: Option<Instant>,
    response_started: AtomicBool,
    data_received: AtomicBool,
    finished: AtomicBool,
    send_error: Mutex<Option<Error>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Call {
    pub(crate) fn new(
        stream: SendStream<Bytes>,
        conn: Arc<ConnState>,
        deadline: Option<Instant>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Arc<Self> {
        Arc::new(Self {
            stream: Mutex::new(stream),
            conn,
            deadline,
            response_started: AtomicBool::new(false),
            data_received: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            send_error: Mutex::new(None),
            _permit: permit,
        })
    }

    fn lock(&self) -> MutexGuard<'_, SendStream<Bytes>> {
        // A poisoned lock only means another holder panicked; the stream is still usable.
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mark_started(&self) {
        self.response_started.store(true, Ordering::Release);
    }

    /// Records that response DATA arrived (implies the response started).
    pub(crate) fn mark_data(&self) {
        self.response_started.store(true, Ordering::Release);
        self.data_received.store(true, Ordering::Release);
    }

    pub(crate) fn started(&self) -> bool {
        self.response_started.load(Ordering::Acquire)
    }

    /// Adds how far the response got to an error about this call (see
    /// [`Error::set_response_progress`]).
    pub(crate) fn progress(&self, err: Error) -> Error {
        err.set_response_progress(self.started(), self.data_received.load(Ordering::Acquire))
    }

    /// Records that the call reached its end (clean or failed): dropping the halves then
    /// does not reset anything.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Resets the stream unless the call already ended.
    pub(crate) fn reset(&self, reason: h2::Reason) {
        if !self.is_finished() {
            self.lock().send_reset(reason);
        }
    }

    pub(crate) fn set_send_error(&self, err: &Error) {
        let mut g = self.send_error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(err.shallow_clone());
        }
    }

    pub(crate) fn send_error(&self) -> Option<Error> {
        let g = self.send_error.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(Error::shallow_clone)
    }

    /// Turns an h2 stream error into ours, with the response-started flag and, for a lost
    /// connection, the driver's recorded reason.
    pub(crate) async fn stream_error(&self, err: h2::Error) -> Error {
        let e = self.progress(Error::from_h2(err));
        self.conn.refine(e).await
    }

    pub(crate) fn deadline_error(&self) -> Error {
        self.progress(Error::new(ErrorKind::Deadline).detail("call deadline passed"))
    }

    /// Why the stream can no longer send: the peer's RST_STREAM reason, the connection's
    /// error, or a local reset.
    async fn closed_cause(&self) -> Error {
        let polled = {
            let mut cx = Context::from_waker(Waker::noop());
            self.lock().poll_reset(&mut cx)
        };
        let e = match polled {
            Poll::Ready(Ok(reason)) => Error::new(ErrorKind::Reset)
                .with_reason(crate::error::reason_from_h2(reason))
                .remote(true)
                .retry_safe(reason == h2::Reason::REFUSED_STREAM),
            Poll::Ready(Err(e)) => Error::from_h2(e),
            Poll::Pending => Error::new(ErrorKind::Closed).detail("stream closed"),
        };
        let e = self.progress(e);
        self.conn.refine(e).await
    }

    /// Sends `data` under HTTP/2 flow control: reserve, wait for capacity (checking the
    /// level first, since `poll_capacity` is edge-triggered), then send at most what was
    /// granted. Never hands h2 more than its window, so h2 never buffers without bound.
    pub(crate) async fn write(&self, mut data: Bytes, eos: bool) -> Result<(), Error> {
        if data.is_empty() {
            if eos {
                return self.send_data(Bytes::new(), true).await;
            }
            // Empty non-EOS DATA frames count against peers' abuse budgets: never send one.
            return Ok(());
        }
        while !data.is_empty() {
            self.lock().reserve_capacity(data.len().min(RESERVE_CHUNK));
            let granted = poll_fn(|cx| self.poll_granted(cx)).await;
            let Some(cap) = granted else {
                return Err(self.closed_cause().await);
            };
            let chunk = data.split_to(cap.min(data.len()));
            let last = data.is_empty();
            self.send_data(chunk, eos && last).await?;
        }
        // Give back any claim we no longer need so other streams can use the window.
        self.lock().reserve_capacity(0);
        Ok(())
    }

    fn poll_granted(&self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let mut s = self.lock();
        loop {
            let cap = s.capacity();
            if cap > 0 {
                return Poll::Ready(Some(cap));
            }
            match s.poll_capacity(cx) {
                // Capacity may have been taken back by a SETTINGS change: check again.
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    async fn send_data(&self, data: Bytes, eos: bool) -> Result<(), Error> {
        let res = self.lock().send_data(data, eos);
        match res {
            Ok(()) => Ok(()),
            // "inactive stream": the real cause is in poll_reset / the connection.
            Err(_) => Err(self.closed_cause().await),
        }
    }
}
