//! cursor-proxy started in-process on cursor-mock backends (feature `proxy`; only
//! cursor-proxy's integration tests and benches use it, see the README); [`http`], the plain
//! HTTP/1.1 caller and request bodies its tests share; [`process`], the proxy binary as a child
//! process, a private `redis-server` and scratch directories.

pub mod http;
pub mod process;

use std::sync::Arc;

use cursor_proxy::Proxy;
use cursor_proxy::engine::pool::Account;
use cursor_proxy::ops::config::{AccountConfig, Config, Secret, UpstreamMode};
use cursor_proxy::upstream::cursor::CursorUpstream;

/// The label the proxy reports for its upstream in these tests.
pub const UPSTREAM_LABEL: &str = "mock";

/// An account named `name` whose upstream is the mock at `url`, with access token `token`.
pub fn mock_account(name: &str, url: &str, token: &str) -> Account {
    let cfg = AccountConfig {
        upstream: Some(url.to_owned()),
        ..AccountConfig::named(name)
    };
    Account::new(cfg, Secret::new(token), url)
}

/// A proxy configuration on `127.0.0.1:0` for remote (mock) upstreams, accepting caller `key`.
/// Change fields before [`start`] for anything else.
pub fn config(key: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        upstream: UpstreamMode::Remote(UPSTREAM_LABEL.into()),
        api_keys: vec![Secret::new(key)],
        ..Config::default()
    }
}

/// Starts the proxy with `config` in front of `accounts`, through the real `cursor-connect`
/// upstream.
///
/// # Panics
/// If the proxy does not start.
pub async fn start(config: &Config, accounts: Vec<Account>) -> Proxy {
    Proxy::start_with(
        config,
        Arc::new(CursorUpstream::new()),
        accounts,
        UPSTREAM_LABEL.into(),
    )
    .await
    .expect("proxy starts")
}

/// Starts the proxy accepting caller `key` with one account per mock URL (named `acct0`,
/// `acct1`, …, token `tok`).
pub async fn on_mocks(key: &str, urls: &[String]) -> Proxy {
    let accounts = urls
        .iter()
        .enumerate()
        .map(|(i, u)| mock_account(&format!("acct{i}"), u, "tok"))
        .collect();
    start(&config(key), accounts).await
}
