//! Parked tool turns across instances: a turn parked on instance A is registered in the shared
//! store under A's internal address; when the caller's tool results reach instance B, B sends
//! the request to A (marked with the instance secret, so it is never forwarded again) and relays
//! A's answer, so the turn continues on its one upstream `Run`. When A does not answer, B drops
//! the registration and serves the request itself, from the conversation's stored checkpoint.

use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tracing::{debug, info, warn};

use super::session::conversation_id;
use super::turn::Turn;
use super::{Engine, short};

/// The header that marks a request forwarded by another instance; its value is the secret.
pub(super) const FORWARDED_HEADER: &str = "x-cursor-proxy-forwarded";
/// How long connecting to the owning instance may take before it counts as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the owner may take to start its answer. A non-streamed answer starts only when the
/// owner's turn ends, and the owner bounds that turn with its own stall and first-output
/// deadlines; this bound only ends the wait on an owner that stopped answering altogether.
const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Engine {
    /// Drops the owner registration of `conv` (its parked turn was taken here).
    pub(super) async fn disown(&self, conv: &str) {
        if self.cfg.cluster.is_some()
            && let Err(e) = self.store.clear_owner(conv).await
        {
            debug!(error = %e, "cannot clear the parked turn's owner");
        }
    }

    /// Whether `headers` mark a request forwarded by another instance of this cluster.
    fn forwarded(&self, headers: &HeaderMap) -> bool {
        let Some((_, secret)) = &self.cfg.cluster else {
            return false;
        };
        headers
            .get(FORWARDED_HEADER)
            .is_some_and(|v| v.as_bytes() == secret.expose().as_bytes())
    }

    /// The instance holding this request's parked tool turn, when it is another one.
    async fn owner_elsewhere(&self, caller_key: &str, req: &Turn) -> Option<(String, String)> {
        let (me, _) = self.cfg.cluster.as_ref()?;
        if req.trailing_tool_results().is_empty() {
            return None;
        }
        let conv = conversation_id(caller_key, req);
        if self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&conv)
        {
            return None;
        }
        let owner = self.store.owner(&conv).await.ok()??;
        (owner != *me).then_some((conv, owner))
    }

    /// When the request's tool results belong to a turn parked on another instance, forwards
    /// the request there and returns its answer; `None` means "serve it here".
    pub async fn forward_to_owner(
        &self,
        caller_key: &str,
        req: &Turn,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Response> {
        if self.forwarded(headers) {
            return None;
        }
        let (conv, owner) = self.owner_elsewhere(caller_key, req).await?;
        let (_, secret) = self.cfg.cluster.as_ref()?;
        match send(&owner, path, headers, body, secret.expose()).await {
            Ok(resp) => {
                info!(conversation = short(&conv), owner = %owner,
                      "tool results forwarded to the instance holding the parked turn");
                Some(resp)
            }
            Err(e) => {
                warn!(conversation = short(&conv), owner = %owner, error = %e,
                      "the instance holding the parked turn is gone; continuing here from the checkpoint");
                let _ = self.store.clear_owner(&conv).await;
                None
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One HTTP/1.1 request to `owner` (`http://host:port`) with the caller's headers; the answer
/// is relayed as it streams.
async fn send(
    owner: &str,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    secret: &str,
) -> Result<Response, BoxError> {
    let authority = owner
        .strip_prefix("http://")
        .ok_or("the owner address is not http://host:port")?
        .trim_end_matches('/')
        .to_owned();
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(authority.as_str()),
    )
    .await
    .map_err(|_| "connect timed out")??;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)),
    )
    .await
    .map_err(|_| "handshake timed out")??;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "forwarded request connection ended");
        }
    });
    let mut request = http::Request::post(path).body(Full::new(body))?;
    for (name, value) in headers {
        if !matches!(
            *name,
            header::HOST | header::CONNECTION | header::CONTENT_LENGTH | header::TRANSFER_ENCODING
        ) {
            request.headers_mut().append(name, value.clone());
        }
    }
    request
        .headers_mut()
        .insert(header::HOST, HeaderValue::from_str(&authority)?);
    request
        .headers_mut()
        .insert(FORWARDED_HEADER, HeaderValue::from_str(secret)?);
    let response = tokio::time::timeout(RESPONSE_HEAD_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| "the owner did not start its answer in time")??;
    let (parts, incoming) = response.into_parts();
    Ok(Response::from_parts(parts, axum::body::Body::new(incoming)))
}
