//! The request half of a streaming call: the caller's task encodes each envelope straight
//! into one shared batch buffer, under a byte budget, and a per-call writer task hands what
//! has accumulated to the connection under flow control.
//!
//! Per message that is one lock and one copy (the encode itself): no allocation, no channel
//! hop, and the writer is woken only when it is idle.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{ConnectError, Encoder};
use tokio::sync::oneshot;

use crate::call::Call;
use crate::error::{Error, ErrorKind};
use crate::options::CallOptions;

/// Envelopes are encoded into shared buffers that double in size from the first envelope's
/// up to this: once a call streams, one allocation per 64 messages of 1 KiB instead of one
/// per message, while a call that sends one small message keeps no 64 KiB buffer for its
/// lifetime. A full buffer is queued as it is and a new one started, so queued bytes are
/// never moved. It also bounds one write (but for a single larger message), so budget comes
/// back to a waiting sender in steps.
const BATCH_ALLOC: usize = 64 << 10;

/// Sends request messages on a streaming call.
///
/// Every method fails with a `ConnectError`, the same type as [`RecvHalf`](crate::RecvHalf)
/// and the call's other failures; a transport failure keeps its facts as the error's
/// `TransportCause`, with this crate's [`Error`] as its `source()`.
///
/// `send` waits when more than the endpoint's send buffer is queued, so a slow peer slows
/// the caller down instead of growing memory. Dropping a `SendHalf` without
/// [`close_send`](SendHalf::close_send) resets the stream with CANCEL: a request cut short
/// must never look complete to the server.
#[derive(Debug)]
pub struct SendHalf {
    call: Arc<Call>,
    queue: Arc<Shared>,
    budget_max: usize,
    encoder: Encoder,
    /// Whether the encoder may compress: then the encoded size is known only after encoding
    /// into `scratch`; without compression it is `5 + len` and the encode goes straight
    /// into the batch.
    compressing: bool,
    scratch: BytesMut,
    closed: bool,
    writer: Arc<WriterGuard>,
}

/// Aborts the call's writer task once both halves are gone. While the receive half lives,
/// the writer may still be delivering a `close_send` whose caller stopped waiting; after
/// that nobody owns the call, and a peer that never grants window must not keep the task
/// (and through it the stream and the connection) alive.
#[derive(Debug)]
pub(crate) struct WriterGuard(tokio::task::AbortHandle);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the sender and the writer share. The std mutex is only held for short synchronous
/// sections (an encode, a split), never across an await.
struct Shared(Mutex<Queue>);

#[derive(Default)]
struct Queue {
    /// Filled buffers of encoded envelopes, oldest first; they precede `batch`.
    full: VecDeque<Bytes>,
    /// The buffer envelopes are being encoded into; its bytes are the newest queued.
    batch: BytesMut,
    /// Capacity of the next buffer (at least the envelope it is started for).
    next_alloc: usize,
    /// Bytes encoded and not yet handed to the connection: in `batch` or being written.
    /// This is what the budget bounds.
    queued: usize,
    /// Acks of flushes (and of the close) requested after the bytes now in `batch`.
    acks: Vec<oneshot::Sender<()>>,
    /// End the stream once `batch` is written.
    close: bool,
    /// The send half went away without closing: the writer stops.
    abandoned: bool,
    /// A write failed and the writer stopped; the error is in `Call::send_error`.
    failed: bool,
    /// The writer, while it waits for work.
    writer: Option<Waker>,
    /// The sender, while it waits for budget.
    sender: Option<Waker>,
}

impl Queue {
    /// Queues the current buffer as it is and starts one with room for `len` more bytes.
    fn new_buffer(&mut self, len: usize) {
        let cap = len.max(self.next_alloc);
        self.next_alloc = cap.saturating_mul(2).min(BATCH_ALLOC);
        let fresh = BytesMut::with_capacity(cap);
        let filled = std::mem::replace(&mut self.batch, fresh);
        if !filled.is_empty() {
            self.full.push_back(filled.freeze());
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: formatting must never wait for (or deadlock with) a holder.
        let mut d = f.debug_struct("Queue");
        if let Ok(q) = self.0.try_lock() {
            d.field("queued", &q.queued)
                .field("close", &q.close)
                .field("failed", &q.failed);
        }
        d.finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means another holder panicked; the queue is still consistent
        // (every section that mutates it cannot panic halfway).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an ack (a flush, or the close) behind everything queued so far and wakes
    /// an idle writer. False once the writer failed.
    fn push_ack(&self, ack: oneshot::Sender<()>, close: bool) -> bool {
        let writer = {
            let mut q = self.lock();
            if q.failed {
                return false;
            }
            q.acks.push(ack);
            q.close |= close;
            q.writer.take()
        };
        if let Some(w) = writer {
            w.wake();
        }
        true
    }

    /// The writer's next piece of work, or `None` once the send half was abandoned.
    fn poll_job(&self, cx: &mut Context<'_>) -> Poll<Option<Job>> {
        let mut q = self.lock();
        if q.abandoned {
            return Poll::Ready(None);
        }
        if q.full.is_empty() && q.batch.is_empty() && q.acks.is_empty() && !q.close {
            q.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // `split` keeps the buffer's spare capacity for the next envelopes.
        let data = match q.full.pop_front() {
            Some(data) => data,
            None => q.batch.split().freeze(),
        };
        // Acks and the close wait until every byte queued before them is written.
        let (acks, close) = if q.full.is_empty() && q.batch.is_empty() {
            (std::mem::take(&mut q.acks), q.close)
        } else {
            (Vec::new(), false)
        };
        Poll::Ready(Some(Job { data, acks, close }))
    }

    /// Returns budget for `written` bytes and wakes a sender waiting for it.
    fn release(&self, written: usize) {
        let sender = {
            let mut q = self.lock();
            q.queued -= written;
            q.sender.take()
        };
        if let Some(w) = sender {
            w.wake();
        }
    }

    /// Marks the writer failed: senders waiting for budget wake, and dropping the pending
    /// acks wakes waiting flushes and closes; all of them then read the stored error.
    fn fail(&self) {
        let (sender, acks) = {
            let mut q = self.lock();
            q.failed = true;
            (q.sender.take(), std::mem::take(&mut q.acks))
        };
        drop(acks);
        if let Some(w) = sender {
            w.wake();
        }
    }
}

/// One write: a prefix of the batch, and what completes once it was handed over.
struct Job {
    data: Bytes,
    acks: Vec<oneshot::Sender<()>>,
    close: bool,
}

impl SendHalf {
    pub(crate) fn start(call: Arc<Call>, opts: &CallOptions, budget_max: usize) -> Self {
        let queue = Arc::new(Shared(Mutex::new(Queue::default())));
        let task = tokio::spawn(writer(call.clone(), queue.clone()));
        let writer = Arc::new(WriterGuard(task.abort_handle()));
        let compression = opts.send_compression.compression();
        let compressing = compression.is_some();
        let encoder = Encoder::new()
            .compression(compression)
            .compress_min_bytes(opts.compress_min_bytes);
        Self {
            call,
            queue,
            budget_max,
            encoder,
            compressing,
            scratch: BytesMut::new(),
            closed: false,
            writer,
        }
    }

    /// A share of the writer task's lifetime, for the receive half to hold.
    pub(crate) fn writer_guard(&self) -> Arc<WriterGuard> {
        self.writer.clone()
    }

    /// Queues one message (already-serialized protobuf). Returns once it is queued; waits
    /// while the send buffer is full, bounded by the call deadline.
    pub async fn send(&mut self, message: Bytes) -> Result<(), ConnectError> {
        self.enqueue(&message).await.map_err(ConnectError::from)
    }

    /// Waits until every queued message was handed to the HTTP/2 connection.
    pub async fn flush(&mut self) -> Result<(), ConnectError> {
        self.flush_queue().await.map_err(ConnectError::from)
    }

    /// Ends the request stream (END_STREAM) after the queued messages. Calling it again is
    /// a no-op.
    pub async fn close_send(&mut self) -> Result<(), ConnectError> {
        self.close().await.map_err(ConnectError::from)
    }

    async fn enqueue(&mut self, message: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        let len = if self.compressing {
            self.scratch.clear();
            self.encoder
                .encode(message, &mut self.scratch)
                .map_err(encode_error)?
        } else if u32::try_from(message.len()).is_err() {
            // Refused before the batch makes room for it, as the encoder would refuse it.
            let e = cursor_connect_frame::FrameError::PayloadTooLong { len: message.len() };
            return Err(encode_error(e));
        } else {
            Encoder::encoded_len(message.len())
        };
        // Budget is capped per message so one message larger than the buffer still fits
        // (alone, once the queue drained).
        let want = len.min(self.budget_max);
        loop {
            if self.try_append(message, len, want)? {
                return Ok(());
            }
            self.wait_budget(want).await?;
        }
    }

    /// Appends the envelope to the batch if the budget allows `want` more bytes now.
    fn try_append(&mut self, message: &[u8], len: usize, want: usize) -> Result<bool, Error> {
        let writer = {
            let mut q = self.queue.lock();
            if q.failed {
                drop(q);
                return Err(self.gone());
            }
            if q.queued > 0 && q.queued + want > self.budget_max {
                return Ok(false);
            }
            if q.batch.capacity() - q.batch.len() < len {
                q.new_buffer(len);
            }
            if self.compressing {
                q.batch.extend_from_slice(&self.scratch);
            } else {
                // The length was checked in `enqueue`; the encoder checks it again before
                // writing anything, so a failure leaves the batch as it was.
                self.encoder
                    .encode(message, &mut q.batch)
                    .map_err(encode_error)?;
            }
            q.queued += len;
            q.writer.take()
        };
        if let Some(w) = writer {
            w.wake();
        }
        Ok(true)
    }

    /// Waits until the writer returned enough budget for `want` bytes (or failed), bounded
    /// by the call deadline.
    async fn wait_budget(&self, want: usize) -> Result<(), Error> {
        let ready = poll_fn(|cx| {
            let mut q = self.queue.lock();
            if q.failed || q.queued == 0 || q.queued + want <= self.budget_max {
                return Poll::Ready(());
            }
            q.sender = Some(cx.waker().clone());
            Poll::Pending
        });
        match self.call.deadline {
            Some(at) => {
                if tokio::time::timeout_at(at, ready).await.is_err() {
                    self.call.reset(h2::Reason::CANCEL);
                    return Err(self.call.deadline_error());
                }
            }
            None => ready.await,
        }
        Ok(())
    }

    async fn flush_queue(&mut self) -> Result<(), Error> {
        self.check_open()?;
        let (ack, done) = oneshot::channel();
        if !self.queue.push_ack(ack, false) {
            return Err(self.gone());
        }
        self.wait(done).await
    }

    async fn close(&mut self) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        if let Some(e) = self.call.send_error() {
            return Err(e);
        }
        let (ack, done) = oneshot::channel();
        if !self.queue.push_ack(ack, true) {
            return Err(self.gone());
        }
        self.closed = true;
        self.wait(done).await
    }

    fn check_open(&self) -> Result<(), Error> {
        if let Some(e) = self.call.send_error() {
            return Err(e);
        }
        if self.closed {
            return Err(Error::new(ErrorKind::Closed).detail("send side already closed"));
        }
        Ok(())
    }

    fn gone(&self) -> Error {
        self.call
            .send_error()
            .unwrap_or_else(|| Error::new(ErrorKind::Closed).detail("stream closed"))
    }

    async fn wait(&self, done: oneshot::Receiver<()>) -> Result<(), Error> {
        let res = match self.call.deadline {
            Some(at) => match tokio::time::timeout_at(at, done).await {
                Ok(r) => r,
                Err(_) => {
                    self.call.reset(h2::Reason::CANCEL);
                    return Err(self.call.deadline_error());
                }
            },
            None => done.await,
        };
        res.map_err(|_| self.gone())
    }
}

fn encode_error(e: cursor_connect_frame::FrameError) -> Error {
    Error::new(ErrorKind::InvalidInput)
        .detail("cannot encode message")
        .source_err(e)
}

impl Drop for SendHalf {
    fn drop(&mut self) {
        if self.closed {
            // The writer still delivers the close, even if its caller stopped waiting.
            return;
        }
        self.call.reset(h2::Reason::CANCEL);
        let writer = {
            let mut q = self.queue.lock();
            q.abandoned = true;
            q.writer.take()
        };
        if let Some(w) = writer {
            w.wake();
        }
    }
}

async fn writer(call: Arc<Call>, queue: Arc<Shared>) {
    while let Some(job) = poll_fn(|cx| queue.poll_job(cx)).await {
        let written = job.data.len();
        let res = match call.deadline {
            Some(at) => match tokio::time::timeout_at(at, call.write(job.data, job.close)).await {
                Ok(r) => r,
                Err(_) => {
                    call.reset(h2::Reason::CANCEL);
                    Err(call.deadline_error())
                }
            },
            None => call.write(job.data, job.close).await,
        };
        if let Err(e) = res {
            call.set_send_error(&e);
            // Dropping this job's acks wakes their waiters too.
            queue.fail();
            return;
        }
        queue.release(written);
        for ack in job.acks {
            let _ = ack.send(());
        }
        if job.close {
            return;
        }
    }
}
