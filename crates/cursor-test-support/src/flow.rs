//! Flow-controlled writing and capacity-releasing reading on raw `h2` streams.

use bytes::{Bytes, BytesMut};
use h2::{RecvStream, SendStream};

/// Sends all of `data` on `tx` within the peer's flow-control window: reserves capacity (at
/// most 1 MiB at a time), waits for it, sends what was granted, and repeats. `eos` ends the
/// stream with the last piece. Returns the stream's error if it is reset or the connection
/// goes away while waiting.
pub async fn send_all(
    tx: &mut SendStream<Bytes>,
    mut data: Bytes,
    eos: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return tx.send_data(data, eos);
    }
    while !data.is_empty() {
        tx.reserve_capacity(data.len().min(1 << 20));
        while tx.capacity() == 0 {
            match std::future::poll_fn(|cx| tx.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(h2::Error::from(h2::Reason::CANCEL)),
            }
        }
        let piece = data.split_to(tx.capacity().min(data.len()));
        tx.send_data(piece, eos && data.is_empty())?;
    }
    Ok(())
}

/// Reads a body to its end, releasing flow-control capacity as it goes.
pub async fn read_body(body: &mut RecvStream) -> Result<Bytes, h2::Error> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}
