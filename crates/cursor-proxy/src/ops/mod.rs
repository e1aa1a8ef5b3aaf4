//! Running the proxy: configuration, caller keys and their policies, usage, metrics, request
//! ids, the admin API and status page, shutdown and reload.
//!
//! [`Ops`] holds the operator-facing state of one proxy: caller keys ([`keys::KeyRing`]),
//! metrics, aliases, draining. Usage is not kept here: the engine's store is its one record
//! ([`usage`] reads it).

pub mod accounting;
pub mod accounts;
pub mod admin;
pub mod aliases;
pub mod auth;
pub mod cli;
pub mod config;
pub mod keys;
pub mod keystore;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod request;
pub mod settings;
pub mod usage;

use std::sync::{Arc, Mutex, RwLock};

use self::aliases::Aliases;
use self::config::{Config, Secret, UpstreamMode};
use self::keys::{KeyRing, KeySpec};
use self::lifecycle::Lifecycle;
use self::metrics::Metrics;

/// Reads the configuration again (for SIGHUP and `POST /admin/v1/reload`); the error text says
/// why the new one is refused.
pub type ConfigSource = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The operator-facing state of one proxy.
pub struct Ops {
    /// Caller keys.
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Metrics,
    /// Model aliases and fallbacks.
    aliases: RwLock<Arc<Aliases>>,
    /// SHA-256 of the admin key; `None`: the admin API is off.
    admin_key: Option<[u8; 32]>,
    /// Draining state.
    pub lifecycle: Lifecycle,
    source: Mutex<Option<ConfigSource>>,
    /// Where accounts added through the admin API are saved; held while the file changes.
    pub(crate) accounts_file: tokio::sync::Mutex<Option<std::path::PathBuf>>,
    /// The upstream of accounts added without one (`None` on the embedded mock).
    pub(crate) default_upstream: Option<String>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("keys", &self.keys)
            .field("admin_api", &self.admin_key.is_some())
            .finish_non_exhaustive()
    }
}

/// The caller keys a configuration declares: the plain `api_keys` (named `key-1`, `key-2`, …,
/// without limits) and the `[[keys]]` with their policies.
pub fn key_specs(config: &Config) -> Vec<KeySpec> {
    let plain = config.api_keys.iter().enumerate().map(|(i, s)| KeySpec {
        name: format!("key-{}", i + 1),
        secret: s.clone(),
        policy: keys::KeyPolicy::default(),
    });
    plain.chain(config.ops.keys.iter().cloned()).collect()
}

impl Ops {
    /// The state for `config` (its keys were validated when it was loaded).
    pub fn new(config: &Config) -> Self {
        Self {
            keys: Arc::new(KeyRing::new(&key_specs(config))),
            metrics: Metrics::new(),
            aliases: RwLock::new(Arc::new(config.ops.aliases.clone())),
            admin_key: config
                .ops
                .admin_key
                .as_ref()
                .map(|k| keys::digest(k.expose())),
            lifecycle: Lifecycle::new(config.ops.drain_timeout),
            source: Mutex::new(None),
            accounts_file: tokio::sync::Mutex::new(config.accounts_file.clone()),
            default_upstream: match &config.upstream {
                UpstreamMode::Remote(url) => Some(url.clone()),
                UpstreamMode::EmbeddedMock => None,
            },
        }
    }

    /// The aliases and fallbacks now.
    pub fn aliases(&self) -> Arc<Aliases> {
        Arc::clone(&self.aliases.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the admin API is on.
    pub fn admin_enabled(&self) -> bool {
        self.admin_key.is_some()
    }

    /// Whether `presented` is the admin key (constant time).
    pub fn is_admin_key(&self, presented: &str) -> bool {
        self.admin_key
            .as_ref()
            .is_some_and(|d| keys::matches(presented, d))
    }

    /// Where reloads read the configuration from.
    pub fn set_config_source(&self, source: ConfigSource) {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Reads the configuration from the source and applies its keys, limits and aliases. On any
    /// error the running configuration stays and the reason is returned.
    pub fn reload(&self) -> Result<(), String> {
        let result = {
            let source = self.source.lock().unwrap_or_else(|e| e.into_inner());
            match source.as_ref() {
                Some(read) => read(),
                None => Err("this proxy has no configuration source to reload from".into()),
            }
        }
        .and_then(|config| self.apply(&config));
        self.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(reason) => {
                tracing::warn!(%reason, "configuration reload refused; the old one stays")
            }
        }
        result
    }

    /// Applies the reloadable parts of `config`: keys and limits, aliases and fallbacks.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        config.ops.aliases.validate()?;
        self.keys
            .replace(&key_specs(config))
            .map_err(|e| e.to_string())?;
        *self.aliases.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(config.ops.aliases.clone());
        Ok(())
    }
}

/// The secrets of `config` the log redactor must know: caller keys, the admin key, account
/// tokens.
pub fn secrets(config: &Config) -> Vec<Secret> {
    let mut out: Vec<Secret> = key_specs(config).into_iter().map(|k| k.secret).collect();
    out.extend(config.ops.admin_key.clone());
    for (account, token) in &config.accounts {
        out.push(token.clone());
        out.extend(account.refresh_token.clone());
        out.extend(account.cursor_api_key.clone());
    }
    out
}

/// An error and its sources, `: `-separated (for messages to a person).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
