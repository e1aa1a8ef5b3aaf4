//! The request half of a streaming call: envelopes are encoded by the caller's task, queued
//! under a byte budget, and written by a per-call writer task that coalesces them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{ConnectError, Encoder};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::call::Call;
use crate::error::{Error, ErrorKind};
use crate::options::CallOptions;

/// Queued envelopes are merged into writes of up to this many bytes: one DATA write per
/// small message costs a syscall each, one per 32 KiB does not.
const COALESCE: usize = 32 << 10;

enum Cmd {
    /// An encoded envelope and the budget permits it holds.
    Data(Bytes, u32),
    /// Ack once everything queued before it was handed to the connection.
    Flush(oneshot::Sender<()>),
    /// End the request stream (END_STREAM), then ack.
    Close(oneshot::Sender<()>),
}

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
    tx: Option<mpsc::UnboundedSender<CmdBox>>,
    budget: Arc<Semaphore>,
    budget_max: usize,
    encoder: Encoder,
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

/// Wrapper so the private command enum can cross the channel without a Debug bound leak.
struct CmdBox(Cmd);

impl std::fmt::Debug for CmdBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl SendHalf {
    pub(crate) fn start(call: Arc<Call>, opts: &CallOptions, budget_max: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(budget_max));
        let task = tokio::spawn(writer(call.clone(), rx, budget.clone()));
        let writer = Arc::new(WriterGuard(task.abort_handle()));
        let encoder = Encoder::new()
            .compression(opts.send_compression.compression())
            .compress_min_bytes(opts.compress_min_bytes);
        Self {
            call,
            tx: Some(tx),
            budget,
            budget_max,
            encoder,
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
        self.queue(message).await.map_err(ConnectError::from)
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

    async fn queue(&mut self, message: Bytes) -> Result<(), Error> {
        self.check_open()?;
        self.encoder
            .encode(&message, &mut self.scratch)
            .map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .detail("cannot encode message")
                    .source_err(e)
            })?;
        let env = self.scratch.split().freeze();
        // Budget is capped per message so one message larger than the buffer still fits.
        let n = env.len().min(self.budget_max);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let acquire = self.budget.clone().acquire_many_owned(n);
        let permit = match self.call.deadline {
            Some(at) => match tokio::time::timeout_at(at, acquire).await {
                Ok(p) => p,
                Err(_) => {
                    self.call.reset(h2::Reason::CANCEL);
                    return Err(self.call.deadline_error());
                }
            },
            None => acquire.await,
        };
        // The semaphore is never closed, but a closed one means the writer is gone.
        let Ok(permit) = permit else {
            return Err(self.gone());
        };
        permit.forget();
        self.push(Cmd::Data(env, n))
    }

    async fn flush_queue(&mut self) -> Result<(), Error> {
        self.check_open()?;
        let (ack, done) = oneshot::channel();
        self.push(Cmd::Flush(ack))?;
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
        self.push(Cmd::Close(ack))?;
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

    fn push(&self, cmd: Cmd) -> Result<(), Error> {
        match &self.tx {
            Some(tx) if tx.send(CmdBox(cmd)).is_ok() => Ok(()),
            _ => Err(self.gone()),
        }
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

impl Drop for SendHalf {
    fn drop(&mut self) {
        if !self.closed {
            // The writer resets the stream once it sees the queue close without a Close.
            self.call.reset(h2::Reason::CANCEL);
        }
        self.tx.take();
    }
}

async fn writer(call: Arc<Call>, mut rx: mpsc::UnboundedReceiver<CmdBox>, budget: Arc<Semaphore>) {
    let mut batch = BytesMut::new();
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let Some(CmdBox(first)) = rx.recv().await else {
            return;
        };
        let mut permits: usize = 0;
        let mut close = false;
        let mut big: Option<Bytes> = None;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Cmd::Data(env, n) => {
                    permits += n as usize;
                    if batch.is_empty() && env.len() >= COALESCE {
                        // Large envelopes go out as they are, without a copy.
                        big = Some(env);
                        break;
                    }
                    batch.extend_from_slice(&env);
                }
                Cmd::Flush(ack) => acks.push(ack),
                Cmd::Close(ack) => {
                    acks.push(ack);
                    close = true;
                    break;
                }
            }
            if batch.len() >= COALESCE {
                break;
            }
            next = rx.try_recv().ok().map(|CmdBox(c)| c);
        }
        let data = big.unwrap_or_else(|| batch.split().freeze());
        let res = match call.deadline {
            Some(at) => match tokio::time::timeout_at(at, call.write(data, close)).await {
                Ok(r) => r,
                Err(_) => {
                    call.reset(h2::Reason::CANCEL);
                    Err(call.deadline_error())
                }
            },
            None => call.write(data, close).await,
        };
        if let Err(e) = res {
            call.set_send_error(&e);
            // Closing the budget and dropping the acks and the queue wakes every waiting
            // sender, which then reads the stored error.
            budget.close();
            return;
        }
        budget.add_permits(permits);
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if close {
            return;
        }
    }
}
