//! Configuration: a TOML file, environment variables and command-line flags, in rising priority.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Cursor's API host.
pub const CURSOR_UPSTREAM: &str = "https://api2.cursor.sh";

/// Secrets in the config (tokens, keys) are `cursor-connect`'s own type: one redaction rule.
pub use cursor_connect::Secret;

pub use crate::store::StateConfig;

/// One Cursor account in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Name used in logs and `/healthz`.
    pub name: String,
    /// The access token inline.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token (re-read on credential refresh).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Backend base URL for this account (default: the global upstream).
    #[serde(default)]
    pub upstream: Option<String>,
    /// A refresh token: expiring or rejected access tokens are renewed with Cursor's OAuth
    /// refresh grant.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// A Cursor user API key, exchanged for access tokens (then no `token` is needed).
    #[serde(default)]
    pub cursor_api_key: Option<Secret>,
    /// The account group: caller keys pinned to a group (`account_group`) use only its
    /// accounts.
    #[serde(default)]
    pub group: Option<String>,
}

impl AccountConfig {
    /// An account with only a name (token given separately).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Reads the account's token from wherever the config says it lives.
    pub fn load_token(&self) -> Result<Secret, ConfigError> {
        self.load_token_with(&|k| std::env::var(k).ok())
    }

    /// Same as [`AccountConfig::load_token`] with an explicit environment lookup.
    pub fn load_token_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, ConfigError> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            return Ok(Secret::new(text.trim()));
        }
        if let Some(var) = &self.token_env {
            return env(var)
                .map(Secret::new)
                .ok_or_else(|| ConfigError::MissingEnv(var.clone()));
        }
        match (&self.token, &self.cursor_api_key) {
            (Some(t), _) => Ok(t.clone()),
            // The access token is obtained by exchanging the API key on first use.
            (None, Some(_)) => Ok(Secret::default()),
            (None, None) => Err(ConfigError::NoToken(self.name.clone())),
        }
    }

    /// Whether the account's credentials can be renewed through Cursor's token endpoints.
    pub fn renewable(&self) -> bool {
        self.refresh_token.is_some() || self.cursor_api_key.is_some()
    }
}

/// The TOML config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<String>,
    /// Backend base URL.
    pub upstream: Option<String>,
    /// Keys callers must present.
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Accounts.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Attempts per request before giving up (transparent retry).
    pub max_attempts: Option<u32>,
    /// Seconds a turn waits for the caller's tool results.
    pub tool_wait_timeout_secs: Option<u64>,
    /// Seconds a checkpoint is kept.
    pub checkpoint_ttl_secs: Option<u64>,
    /// Seconds the model list is cached.
    pub models_cache_secs: Option<u64>,
    /// Seconds an upstream run may receive nothing before it fails as stalled (and is retried
    /// elsewhere while the caller has seen nothing).
    pub stall_timeout_secs: Option<u64>,
    /// Seconds an upstream run may go without any output while the server only sends
    /// heartbeats (then it fails as stalled, and is retried elsewhere).
    pub first_output_timeout_secs: Option<u64>,

    // Operations (see `ops::settings`).
    /// Caller keys with policies.
    #[serde(default)]
    pub keys: Vec<crate::ops::keys::KeyConfig>,
    /// Model aliases: `alias = "model"`.
    #[serde(default)]
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Fallback models: `model = ["fallback", ...]`.
    #[serde(default)]
    pub fallbacks: std::collections::BTreeMap<String, Vec<String>>,
    /// The admin API key (`--admin-key` / `CURSOR_PROXY_ADMIN_KEY` win).
    pub admin_key: Option<Secret>,
    /// Seconds running turns may take to finish on shutdown (default 30).
    pub drain_timeout_secs: Option<u64>,
    /// Where state lives: a SQLite file path, or `memory` (default: a file in the data dir).
    pub state: Option<String>,
    /// A Redis URL: state shared by several instances (wins over `state`).
    pub redis: Option<String>,
    /// Conversations kept at most (the least recently used go first).
    pub max_conversations: Option<usize>,
}

/// Command-line flags (each also readable from the environment).
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "cursor-proxy",
    version,
    about = "OpenAI- and Anthropic-compatible proxy over Cursor accounts"
)]
pub struct Cli {
    /// Address to listen on (default 127.0.0.1:8787).
    #[arg(long, env = "CURSOR_PROXY_LISTEN")]
    pub listen: Option<String>,
    /// Backend base URL (default: Cursor's; with no account, the embedded mock).
    #[arg(long, env = "CURSOR_PROXY_UPSTREAM")]
    pub upstream: Option<String>,
    /// A key callers must present (repeatable).
    #[arg(long = "api-key")]
    pub api_keys: Vec<String>,
    /// TOML config file.
    #[arg(long, env = "CURSOR_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Key for the admin API and status page (off without one; at least 16 characters).
    #[arg(long, env = "CURSOR_PROXY_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// The file `login` and `import` save accounts to, which the proxy serves with (default
    /// `~/.config/cursor-proxy/accounts.json`).
    #[arg(long, env = "CURSOR_PROXY_ACCOUNTS_FILE", global = true)]
    pub accounts_file: Option<PathBuf>,
    /// `login`, `import`, `accounts`; none: serve.
    #[command(subcommand)]
    pub command: Option<crate::ops::cli::Command>,
    /// Where state lives: a SQLite file, or `memory` (default: `state.sqlite3` in the
    /// platform's data directory).
    #[arg(long, env = "CURSOR_PROXY_STATE")]
    pub state: Option<String>,
    /// Redis URL for state shared by several instances (wins over --state).
    #[arg(long, env = "CURSOR_PROXY_REDIS")]
    pub redis: Option<String>,
    /// 32-byte key (64 hex digits or base64) that encrypts credentials stored in Redis.
    #[arg(long, env = "CURSOR_PROXY_REDIS_KEY", hide_env_values = true)]
    pub redis_key: Option<String>,
    /// Secret shared by the instances on one Redis: with it, tool results that reach this
    /// instance for a turn parked on another are forwarded there.
    #[arg(long, env = "CURSOR_PROXY_INSTANCE_SECRET", hide_env_values = true)]
    pub instance_secret: Option<String>,
    /// This instance's address as the other instances reach it (default `http://` + the
    /// listen address actually bound).
    #[arg(long, env = "CURSOR_PROXY_ADVERTISE")]
    pub advertise: Option<String>,
}

/// Where turns go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamMode {
    /// Start `cursor-mock` in-process and use it.
    EmbeddedMock,
    /// A real backend at this base URL.
    Remote(String),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Upstream selection.
    pub upstream: UpstreamMode,
    /// Caller keys; empty means "any key" (only allowed for the embedded mock on loopback).
    pub api_keys: Vec<Secret>,
    /// Accounts with their tokens.
    pub accounts: Vec<(AccountConfig, Secret)>,
    /// Attempts per request.
    pub max_attempts: u32,
    /// How long an open turn waits for tool results.
    pub tool_wait_timeout: Duration,
    /// Checkpoint lifetime.
    pub checkpoint_ttl: Duration,
    /// Model list cache lifetime.
    pub models_cache: Duration,
    /// The upstream client's stall timeout: a run that receives nothing this long fails.
    pub stall_timeout: Duration,
    /// The upstream client's first-output deadline: a run that produces no output this long
    /// (heartbeats only) fails.
    pub first_output_timeout: Duration,
    /// Caller key policies, aliases, admin key, drain deadline.
    pub ops: crate::ops::settings::OpsConfig,
    /// Where state lives (default [`StateConfig::Memory`]; the binary's default is a file).
    pub state: StateConfig,
    /// Conversations kept at most.
    pub max_conversations: usize,
    /// Secret shared by the instances of one Redis (enables parked-turn forwarding).
    pub instance_secret: Option<Secret>,
    /// This instance's address for the other instances (default: `http://` + bound address).
    pub advertise: Option<String>,
    /// The accounts file (`login`, `import`, and accounts added through the admin API);
    /// `None`: accounts added through the admin API last until the process exits.
    pub accounts_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8787))),
            upstream: UpstreamMode::EmbeddedMock,
            api_keys: Vec::new(),
            accounts: Vec::new(),
            max_attempts: 3,
            tool_wait_timeout: Duration::from_secs(300),
            checkpoint_ttl: Duration::from_secs(30 * 60),
            models_cache: Duration::from_secs(300),
            stall_timeout: cursor_connect::DEFAULT_STALL_TIMEOUT,
            first_output_timeout: Duration::from_secs(120),
            ops: crate::ops::settings::OpsConfig::default(),
            state: StateConfig::Memory,
            max_conversations: crate::store::DEFAULT_MAX_CONVERSATIONS,
            instance_secret: None,
            advertise: None,
            accounts_file: None,
        }
    }
}

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this program.
    #[error("invalid config file {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: toml::de::Error,
    },
    /// The listen address does not parse.
    #[error("invalid listen address {0:?}")]
    Listen(String),
    /// An account names an environment variable that is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// An account has no token source.
    #[error("account {0:?} has no token, token_env, token_file or cursor_api_key")]
    NoToken(String),
    /// Keys are required in this mode.
    #[error(
        "no caller API key configured: use --api-key or api_keys (only the embedded mock on loopback runs without)"
    )]
    KeysRequired,
    /// An upstream was given but no account.
    #[error(
        "--upstream set but no account configured (set CURSOR_ACCESS_TOKEN or add [[accounts]])"
    )]
    NoAccount,
    /// Keys, aliases or the admin key are wrong.
    #[error("invalid operations settings: {0}")]
    Ops(String),
    /// No platform data directory for the default state file.
    #[error("cannot find a data directory for the state file: pass --state PATH or --state memory")]
    NoDataDir,
}

impl Config {
    /// Builds the configuration from flags, the process environment and the config file.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self::resolve(cli, &env)
    }

    /// Same as [`Config::load`] with an explicit environment lookup (for tests).
    pub fn resolve(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut cfg = Self::default();
        let listen = cli
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        cfg.listen = listen
            .parse()
            .map_err(|_| ConfigError::Listen(listen.clone()))?;

        cfg.accounts = accounts(&file, env)?;
        cfg.accounts
            .extend(saved_accounts(cli, env, &cfg.accounts)?);
        cfg.accounts_file = cli
            .accounts_file
            .clone()
            .or_else(|| crate::ops::accounts::default_path(env));

        let upstream = cli.upstream.clone().or_else(|| file.upstream.clone());
        cfg.upstream = match (upstream, cfg.accounts.is_empty()) {
            (None, true) => UpstreamMode::EmbeddedMock,
            (Some(_), true) => return Err(ConfigError::NoAccount),
            (Some(u), false) => UpstreamMode::Remote(u),
            (None, false) => UpstreamMode::Remote(CURSOR_UPSTREAM.to_owned()),
        };

        cfg.api_keys = caller_keys(cli, &file, env);
        cfg.ops = ops_settings(cli, &file, env)?;
        crate::ops::keys::validate(&crate::ops::key_specs(&cfg))
            .map_err(|e| ConfigError::Ops(e.to_string()))?;
        if cfg.api_keys.is_empty() && cfg.ops.keys.is_empty() && !cfg.open_mode_allowed() {
            return Err(ConfigError::KeysRequired);
        }
        cfg.apply_tunables(&file);
        cfg.state = state(cli, &file)?;
        cfg.instance_secret = cli.instance_secret.as_deref().map(Secret::new);
        cfg.advertise = cli.advertise.clone();
        Ok(cfg)
    }

    /// The file's tunables over the defaults.
    fn apply_tunables(&mut self, file: &FileConfig) {
        if let Some(n) = file.max_attempts {
            self.max_attempts = n.clamp(1, 10);
        }
        if let Some(s) = file.tool_wait_timeout_secs {
            self.tool_wait_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = file.checkpoint_ttl_secs {
            self.checkpoint_ttl = Duration::from_secs(s);
        }
        if let Some(s) = file.models_cache_secs {
            self.models_cache = Duration::from_secs(s);
        }
        if let Some(s) = file.stall_timeout_secs {
            self.stall_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = file.first_output_timeout_secs {
            self.first_output_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = file.max_conversations {
            self.max_conversations = n.max(1);
        }
    }

    /// Whether running without caller keys is allowed: embedded mock, loopback listener.
    pub fn open_mode_allowed(&self) -> bool {
        self.upstream == UpstreamMode::EmbeddedMock && self.listen.ip().is_loopback()
    }
}

/// The accounts: the file's, then `CURSOR_ACCESS_TOKEN` / `CURSOR_API_KEY`, then
/// `CURSOR_ACCESS_TOKENS`.
fn accounts(
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(AccountConfig, Secret)>, ConfigError> {
    let mut accounts = Vec::new();
    for a in &file.accounts {
        accounts.push((a.clone(), a.load_token_with(env)?));
    }
    let access = env("CURSOR_ACCESS_TOKEN");
    let api_key = env("CURSOR_API_KEY");
    if access.is_some() || api_key.is_some() {
        let acct = AccountConfig {
            refresh_token: env("CURSOR_REFRESH_TOKEN").map(Secret::new),
            cursor_api_key: api_key.map(Secret::new),
            ..AccountConfig::named("env")
        };
        accounts.push((acct, Secret::new(access.unwrap_or_default())));
    }
    if let Some(list) = env("CURSOR_ACCESS_TOKENS") {
        for (i, tok) in list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            accounts.push((
                AccountConfig::named(&format!("env-{}", i + 1)),
                Secret::new(tok),
            ));
        }
    }
    Ok(accounts)
}

/// The caller keys: the file's, the flags', then `CURSOR_PROXY_API_KEYS`.
fn caller_keys(cli: &Cli, file: &FileConfig, env: &dyn Fn(&str) -> Option<String>) -> Vec<Secret> {
    let mut keys = file.api_keys.clone();
    keys.extend(cli.api_keys.iter().map(Secret::new));
    if let Some(list) = env("CURSOR_PROXY_API_KEYS") {
        keys.extend(
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(Secret::new),
        );
    }
    keys
}

/// The enabled accounts of the accounts file (`login` / `import`), skipping names the config
/// already has.
fn saved_accounts(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    configured: &[(AccountConfig, Secret)],
) -> Result<Vec<(AccountConfig, Secret)>, ConfigError> {
    let path = cli
        .accounts_file
        .clone()
        .or_else(|| crate::ops::accounts::default_path(env));
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let book = crate::ops::accounts::AccountBook::open(&path)
        .map_err(|e| ConfigError::Ops(crate::ops::chain(&e)))?;
    Ok(book
        .list()
        .iter()
        .filter(|a| !a.disabled && !configured.iter().any(|(c, _)| c.name == a.name))
        .map(crate::ops::accounts::SavedAccount::to_config)
        .collect())
}

fn ops_settings(
    cli: &Cli,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::ops::settings::OpsConfig, ConfigError> {
    let tables = crate::ops::settings::OpsFile {
        keys: &file.keys,
        aliases: &file.aliases,
        fallbacks: &file.fallbacks,
        admin_key: file.admin_key.as_ref(),
        drain_timeout_secs: file.drain_timeout_secs,
    };
    crate::ops::settings::OpsConfig::resolve(&tables, cli.admin_key.as_deref(), env)
        .map_err(ConfigError::Ops)
}

/// Where state lives: `--redis`, else `--state` (`memory` or a path), else the default file.
fn state(cli: &Cli, file: &FileConfig) -> Result<StateConfig, ConfigError> {
    if let Some(url) = cli.redis.clone().or_else(|| file.redis.clone()) {
        return Ok(StateConfig::Redis {
            url,
            key: cli.redis_key.as_deref().map(Secret::new),
        });
    }
    match cli.state.clone().or_else(|| file.state.clone()).as_deref() {
        Some("memory") => Ok(StateConfig::Memory),
        Some(path) => Ok(StateConfig::Sqlite(PathBuf::from(path))),
        None => crate::store::default_state_file()
            .map(StateConfig::Sqlite)
            .ok_or(ConfigError::NoDataDir),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_to_embedded_mock_on_loopback_without_keys() {
        let cfg = Config::resolve(&Cli::default(), &no_env).unwrap();
        assert_eq!(cfg.upstream, UpstreamMode::EmbeddedMock);
        assert!(cfg.api_keys.is_empty() && cfg.open_mode_allowed());
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn open_mode_refused_off_loopback() {
        let cli = Cli {
            listen: Some("0.0.0.0:9000".into()),
            ..Cli::default()
        };
        assert!(matches!(
            Config::resolve(&cli, &no_env),
            Err(ConfigError::KeysRequired)
        ));
        let cli = Cli {
            listen: Some("0.0.0.0:9000".into()),
            api_keys: vec!["k".into()],
            ..Cli::default()
        };
        assert!(Config::resolve(&cli, &no_env).is_ok());
    }

    #[test]
    fn file_env_and_flags_merge() {
        let dir = std::env::temp_dir().join(format!("cursor-proxy-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("proxy.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\napi_keys = [\"file-key\"]\nmax_attempts = 5\n\
             [[accounts]]\nname = \"a\"\ntoken = \"tok-a\"\n\
             [[accounts]]\nname = \"b\"\ntoken_env = \"TOK_B\"\nupstream = \"http://127.0.0.1:2\"\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "TOK_B" => Some("tok-b".to_owned()),
            "CURSOR_ACCESS_TOKENS" => Some("x, y".to_owned()),
            _ => None,
        };
        let cli = Cli {
            listen: Some("127.0.0.1:3".into()),
            api_keys: vec!["flag-key".into()],
            config: Some(path),
            ..Cli::default()
        };
        let cfg = Config::resolve(&cli, &env).unwrap();
        assert_eq!(cfg.listen.port(), 3);
        assert_eq!(cfg.upstream, UpstreamMode::Remote(CURSOR_UPSTREAM.into()));
        let names: Vec<_> = cfg.accounts.iter().map(|(a, _)| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "env-1", "env-2"]);
        assert_eq!(cfg.accounts[1].1.expose(), "tok-b");
        assert_eq!(cfg.api_keys.len(), 2);
        assert_eq!(cfg.max_attempts, 5);
        assert!(
            !format!("{cfg:?}").contains("tok-a"),
            "Debug must redact tokens"
        );
    }

    #[test]
    fn example_file_parses() {
        let cfg: FileConfig = toml::from_str(include_str!("../../proxy.example.toml")).unwrap();
        assert_eq!(cfg.accounts.len(), 2);
        assert_eq!(
            cfg.accounts[1].token_env.as_deref(),
            Some("CURSOR_TOKEN_PERSONAL")
        );
        assert_eq!(cfg.max_attempts, Some(3));
        assert_eq!(cfg.keys[0].policy().requests_per_minute, Some(60));
        assert_eq!(cfg.aliases["claude-sonnet-4-5"], "claude-4.5-sonnet");
        assert_eq!(cfg.fallbacks["claude-4.6-opus-high"].len(), 2);
        assert_eq!(cfg.drain_timeout_secs, Some(30));
    }

    #[test]
    fn env_account_with_refresh_token_or_api_key_only() {
        let env = |k: &str| match k {
            "CURSOR_API_KEY" => Some("key_abc".to_owned()),
            "CURSOR_REFRESH_TOKEN" => Some("rt".to_owned()),
            _ => None,
        };
        let cfg = Config::resolve(
            &Cli {
                api_keys: vec!["k".into()],
                ..Cli::default()
            },
            &env,
        )
        .unwrap();
        let (acct, token) = &cfg.accounts[0];
        assert!(acct.renewable() && token.expose().is_empty());
        assert_eq!(
            acct.cursor_api_key.as_ref().map(Secret::expose),
            Some("key_abc")
        );
        let file: FileConfig =
            toml::from_str("[[accounts]]\nname = \"k\"\ncursor_api_key = \"key_x\"\n").unwrap();
        assert!(file.accounts[0].load_token_with(&no_env).is_ok());
        let bare: FileConfig = toml::from_str("[[accounts]]\nname = \"n\"\n").unwrap();
        assert!(matches!(
            bare.accounts[0].load_token_with(&no_env),
            Err(ConfigError::NoToken(_))
        ));
    }

    #[test]
    fn upstream_without_account_is_an_error() {
        let cli = Cli {
            upstream: Some("http://127.0.0.1:1".into()),
            ..Cli::default()
        };
        assert!(matches!(
            Config::resolve(&cli, &no_env),
            Err(ConfigError::NoAccount)
        ));
    }

    #[test]
    fn state_flags_choose_the_store() {
        let cfg = Config::resolve(&Cli::default(), &no_env).unwrap();
        match &cfg.state {
            StateConfig::Sqlite(path) => assert!(path.ends_with("cursor-proxy/state.sqlite3")),
            other => panic!("default is the data-dir file, got {other:?}"),
        }
        let cli = |state: Option<&str>, redis: Option<&str>| Cli {
            state: state.map(str::to_owned),
            redis: redis.map(str::to_owned),
            redis_key: Some("k".repeat(64)),
            ..Cli::default()
        };
        let state = |c: Cli| Config::resolve(&c, &no_env).unwrap().state;
        assert_eq!(state(cli(Some("memory"), None)), StateConfig::Memory);
        assert_eq!(
            state(cli(Some("/tmp/x.db"), None)),
            StateConfig::Sqlite("/tmp/x.db".into())
        );
        let redis = state(cli(Some("/tmp/x.db"), Some("redis://:pw@127.0.0.1:1/")));
        assert!(matches!(redis, StateConfig::Redis { ref key, .. } if key.is_some()));
        let shown = redis.describe();
        assert!(
            shown.contains("redis://:***@127.0.0.1:1/") && !shown.contains("kkkk"),
            "{shown}"
        );
    }
}
