//! Shutdown and reload: SIGTERM / Ctrl-C stop accepting, answer new requests 503 and let running
//! turns finish up to the drain deadline; SIGHUP reloads keys, limits and aliases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Proxy;

/// Default drain deadline.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the proxy is draining, and for how long it may.
#[derive(Debug)]
pub struct Lifecycle {
    draining: AtomicBool,
    drain_timeout: Duration,
}

impl Lifecycle {
    /// Not draining; drains for at most `drain_timeout`.
    pub fn new(drain_timeout: Duration) -> Self {
        Self {
            draining: AtomicBool::new(false),
            drain_timeout,
        }
    }

    /// Whether new requests are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// The drain deadline.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }
}

/// What ended [`run`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Exit {
    /// A shutdown signal; the drain finished (or hit its deadline).
    Drained,
    /// The server stopped on its own with this error.
    Failed(std::io::Error),
}

/// Serves until SIGTERM or Ctrl-C, reloading on SIGHUP; then drains.
pub async fn run(mut proxy: Proxy) -> Exit {
    let ops = std::sync::Arc::clone(&proxy.state().ops);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut hup = Hangup::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = hup.recv() => {
                // `reload` logs and counts the outcome; on error the old config stays.
                let _ = ops.reload();
            }
            r = proxy.stopped() => {
                return Exit::Failed(r.err().unwrap_or_else(|| std::io::Error::other("the server stopped")));
            }
        }
    }
    tracing::info!(
        deadline_s = ops.lifecycle.drain_timeout().as_secs(),
        "shutting down: new requests get 503, running turns may finish"
    );
    proxy.drain().await;
    Exit::Drained
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP where there is one; never fires elsewhere.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut()
            && s.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}
