//! `cursor-proxy`: an OpenAI- and Anthropic-compatible HTTP server over a pool of Cursor accounts.
//!
//! Callers speak `POST /v1/chat/completions` or `POST /v1/messages` (streaming or not, with tools,
//! images and reasoning); the proxy runs each turn on Cursor's agent service through
//! `cursor-connect`, fails over between accounts before the first byte, keeps conversations on
//! their checkpoints, and holds a turn open while the caller runs the tools it asked for.
//! With no account configured it starts `cursor-mock` in-process, so it works on a fresh machine.
//!
//! ```
//! use cursor_proxy::Proxy;
//! use cursor_proxy::ops::config::Config;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // No account configured: the proxy runs on an in-process cursor-mock and, on loopback,
//! // accepts any key. (`Config::load(&Cli::parse())` is what the binary does.)
//! let config = Config { listen: "127.0.0.1:0".parse()?, ..Config::default() };
//! let proxy = Proxy::start(config).await?;
//! println!("{}", proxy.curl_line());
//!
//! // Any OpenAI client works; plain HTTP/1.1 keeps the example free of dependencies.
//! let body = r#"{"model":"composer-2.5","messages":[{"role":"user","content":"Hello!"}]}"#;
//! let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! tcp.write_all(format!(
//!     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer any\r\n\
//!      Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
//!     body.len()
//! ).as_bytes()).await?;
//! let mut reply = String::new();
//! tcp.read_to_string(&mut reply).await?;
//! assert!(reply.starts_with("HTTP/1.1 200"));
//! assert!(reply.contains(r#""finish_reason":"stop""#));
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod engine;
pub mod ops;
pub mod store;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::models::ModelCache;
use crate::api::routes::{self, AppState};
use crate::engine::pool::{Account, Pool};
use crate::engine::{Engine, EngineConfig};
use crate::ops::Ops;
use crate::ops::auth::Auth;
use crate::ops::config::{Config, UpstreamMode};
use crate::upstream::{Upstream, embedded};

pub use crate::upstream::embedded::MOCK_MODEL;

/// How often an instance on a shared store reads the other instances' account state.
const ACCOUNT_SYNC_PERIOD: std::time::Duration = std::time::Duration::from_millis(400);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The embedded mock backend did not start.
    #[error("cannot start the embedded mock backend")]
    Mock(#[source] std::io::Error),
    /// The upstream client could not be built.
    #[error("cannot build the upstream client")]
    Upstream(#[source] cursor_connect::Error),
    /// The state store could not be opened.
    #[error("cannot open the state store")]
    Store(#[source] store::StoreError),
}

/// This instance's address and secret for parked-turn forwarding: only on a shared store and
/// with an instance secret.
fn cluster(config: &Config, addr: SocketAddr, kind: &str) -> Option<(String, ops::config::Secret)> {
    let secret = config.instance_secret.clone().filter(|_| kind == "redis")?;
    let me = config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    Some((me, secret))
}

/// Opens the configured state store.
async fn open_store(config: &Config) -> Result<Arc<dyn store::Store>, StartError> {
    let limits = store::Limits {
        conversation_ttl: config.checkpoint_ttl,
        max_conversations: config.max_conversations,
    };
    store::open(&config.state, limits)
        .await
        .map_err(StartError::Store)
}

/// A running proxy. Dropping it stops serving.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    embedded: Option<embedded::Embedded>,
}

impl Proxy {
    /// Starts the proxy as `config` says: on Cursor (or the configured upstream) with the configured
    /// accounts, or on an in-process `cursor-mock` when no account is configured.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let (embedded, accounts, label) = match &config.upstream {
            UpstreamMode::EmbeddedMock => {
                let e = embedded::Embedded::start()
                    .await
                    .map_err(StartError::Mock)?;
                let accounts = vec![e.account()];
                let label = format!("embedded cursor-mock at {}", e.url());
                (Some(e), accounts, label)
            }
            UpstreamMode::Remote(url) => {
                let accounts = config
                    .accounts
                    .iter()
                    .map(|(cfg, token)| Account::new(cfg.clone(), token.clone(), url))
                    .collect();
                (None, accounts, url.clone())
            }
        };
        let store = open_store(&config).await?;
        let mut cursor = upstream::cursor::CursorUpstream::with_stall_timeout(config.stall_timeout)
            .first_output_timeout(config.first_output_timeout);
        let mut blobs = None;
        if store.kind() != "memory" {
            let b = Arc::new(store::blobs::StoreBlobs::new(Arc::clone(&store)));
            cursor = cursor
                .blob_store(Arc::clone(&b) as Arc<dyn cursor_connect::BlobStore>)
                .persist_credentials(Arc::clone(&store));
            cursor.restore_credentials(&accounts).await;
            blobs = Some(b);
        }
        let upstream: Arc<dyn Upstream> = Arc::new(cursor);
        let mut proxy = Self::launch(&config, upstream, accounts, label, (store, blobs)).await?;
        proxy.embedded = embedded;
        Ok(proxy)
    }

    /// Starts the proxy over an explicit upstream and account list (tests, embedding). The
    /// upstream keeps its own KV blobs (see [`CursorUpstream::blob_store`](
    /// upstream::cursor::CursorUpstream::blob_store) to keep them in the state store).
    pub async fn start_with(
        config: &Config,
        upstream: Arc<dyn Upstream>,
        accounts: Vec<Account>,
        upstream_label: String,
    ) -> Result<Self, StartError> {
        let store = open_store(config).await?;
        Self::launch(config, upstream, accounts, upstream_label, (store, None)).await
    }

    async fn launch(
        config: &Config,
        upstream: Arc<dyn Upstream>,
        accounts: Vec<Account>,
        upstream_label: String,
        (store, blobs): (Arc<dyn store::Store>, Option<Arc<store::blobs::StoreBlobs>>),
    ) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let pool = Arc::new(Pool::new(accounts));
        let store_kind = store.kind();
        let timed = store::timed::TimedStore::new(store);
        let store_latency = timed.latency();
        let engine = Engine::with_store(
            upstream,
            pool,
            EngineConfig {
                max_attempts: config.max_attempts,
                tool_wait_timeout: config.tool_wait_timeout,
                checkpoint_ttl: config.checkpoint_ttl,
                cluster: cluster(config, addr, store_kind),
                ..EngineConfig::default()
            },
            Arc::new(timed),
        );
        if let Some(b) = blobs {
            engine.settle_blobs_of(b);
        }
        engine.load_account_state().await;
        if engine.store_kind() == "redis" {
            // Other instances' cooldowns reach this one within a second.
            tokio::spawn(engine::sync_account_state(
                Arc::downgrade(&engine),
                ACCOUNT_SYNC_PERIOD,
            ));
        }
        let ops = Arc::new(Ops::new(config));
        ops.metrics.register_store(store_latency);
        match ops::keystore::restore(&ops.keys, engine.store().as_ref()).await {
            Ok(0) => {}
            Ok(n) => info!(
                changes = n,
                "caller key changes restored from the state store"
            ),
            Err(e) => {
                warn!(error = %ops::chain(&e), "cannot read caller keys from the state store; using the config's")
            }
        }
        let auth = Auth::ring(Arc::clone(&ops.keys), config.open_mode_allowed());
        let state = Arc::new(AppState {
            engine,
            auth,
            models: ModelCache::new(config.models_cache),
            upstream_label,
            ops: Arc::clone(&ops),
        });
        let app = app(&state, ops);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Without TCP_NODELAY, Nagle's algorithm holds each small SSE event back until the
            // caller's delayed ACK (~40 ms per request on a kept-alive connection).
            let listener = listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY not set on an accepted connection");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        info!(
            listen = %addr, upstream = %state.upstream_label, accounts = state.engine.pool().accounts().len(),
            open_auth = state.auth.is_open(), state = %config.state.describe(),
            "cursor-proxy listening"
        );
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task,
            embedded: None,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handler state (engine, pool, auth), for inspection.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Whether the proxy runs on the embedded mock.
    pub fn is_embedded_mock(&self) -> bool {
        self.embedded.is_some()
    }

    /// A ready-to-paste `curl` command that streams an answer through this proxy.
    pub fn curl_line(&self) -> String {
        let key = if self.state.auth.is_open() {
            "any-key"
        } else {
            "$CURSOR_PROXY_KEY"
        };
        let model = if self.embedded.is_some() {
            MOCK_MODEL
        } else {
            "composer-2.5"
        };
        format!(
            "curl -N http://{}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
             -d '{{\"model\":\"{model}\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'",
            self.addr
        )
    }

    /// Runs until the server stops (it stops on its own only on an I/O error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        match task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Waits for the server task to end on its own (an I/O error). Cancel-safe: after a
    /// `select!` picked another branch the proxy can still be drained.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Graceful shutdown: new requests get 503 while running turns finish, up to the drain
    /// deadline; then connections are closed.
    pub async fn drain(mut self) {
        let ops = Arc::clone(&self.state.ops);
        ops.lifecycle.start_draining();
        ops.metrics.set_draining();
        let deadline = tokio::time::Instant::now() + ops.lifecycle.drain_timeout();
        // Polling a gauge is enough here: it runs once per shutdown, 20 times a second.
        while ops.metrics.active_streams().get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let left = ops.metrics.active_streams().get();
        if left > 0 {
            tracing::warn!(
                running = left,
                "drain deadline passed; closing running turns"
            );
        } else {
            tracing::info!("drained: no turn running");
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        let grace = std::time::Duration::from_secs(2);
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("connections still open 2 s after the drain; dropping them");
        }
    }

    /// Stops accepting connections and waits (bounded) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        if tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("open connections did not finish within 5 s of shutdown");
        }
    }
}

/// The API routes, the admin routes and `/metrics`, under the request-id / drain middleware.
fn app(state: &Arc<AppState>, ops: Arc<Ops>) -> axum::Router {
    routes::router(Arc::clone(state))
        .merge(ops::admin::router(Arc::clone(state)))
        .layer(axum::middleware::from_fn_with_state(
            ops,
            ops::request::layer,
        ))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
