//! The operations part of the configuration: `[[keys]]` with policies, `[aliases]` and
//! `[fallbacks]`, the admin key and the drain deadline. Kept apart from `config.rs` so the two
//! grow independently; [`Config`](super::config::Config) holds one [`OpsConfig`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::aliases::Aliases;
use super::config::Secret;
use super::keys::{KeyConfig, KeySpec};
use super::lifecycle::DEFAULT_DRAIN_TIMEOUT;

/// Resolved operations settings.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Caller keys with policies (besides the plain `api_keys`).
    pub keys: Vec<KeySpec>,
    /// Model aliases and fallbacks.
    pub aliases: Aliases,
    /// The admin API's key; `None` turns the admin API (and the status page) off.
    pub admin_key: Option<Secret>,
    /// How long running turns may take to finish on shutdown.
    pub drain_timeout: Duration,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            aliases: Aliases::default(),
            admin_key: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// The file's operations tables, as read.
#[derive(Debug, Clone, Copy)]
pub struct OpsFile<'a> {
    /// `[[keys]]`.
    pub keys: &'a [KeyConfig],
    /// `[aliases]`.
    pub aliases: &'a BTreeMap<String, String>,
    /// `[fallbacks]`.
    pub fallbacks: &'a BTreeMap<String, Vec<String>>,
    /// `admin_key`.
    pub admin_key: Option<&'a Secret>,
    /// `drain_timeout_secs`.
    pub drain_timeout_secs: Option<u64>,
}

impl OpsConfig {
    /// Resolves the file's tables; `admin_key` from the command line or environment wins over
    /// the file's. The error says which entry is wrong.
    pub fn resolve(
        file: &OpsFile<'_>,
        admin_key: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let secret = match (&k.key, &k.key_env) {
                (Some(s), _) => s.clone(),
                (None, Some(var)) => env(var).map(Secret::new).ok_or_else(|| {
                    format!("key {:?}: environment variable {var} is not set", k.name)
                })?,
                (None, None) => return Err(format!("key {:?} has no key or key_env", k.name)),
            };
            keys.push(KeySpec {
                name: k.name.clone(),
                secret,
                policy: k.policy(),
            });
        }
        let aliases = Aliases {
            aliases: file.aliases.clone(),
            fallbacks: file.fallbacks.clone(),
        };
        aliases.validate()?;
        let admin_key = admin_key
            .filter(|k| !k.is_empty())
            .map(Secret::new)
            .or_else(|| file.admin_key.cloned());
        if admin_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            return Err("the admin key must be at least 16 characters".into());
        }
        Ok(Self {
            keys,
            aliases,
            admin_key,
            drain_timeout: file
                .drain_timeout_secs
                .map_or(DEFAULT_DRAIN_TIMEOUT, Duration::from_secs),
        })
    }
}
