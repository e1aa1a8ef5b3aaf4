//! State that survives a restart and is shared between instances: conversations (checkpoint
//! and the account bound to it), the KV blobs checkpoints refer to, account state (cooldowns,
//! disabled), refreshed credentials and usage counters, behind one async [`Store`] seam with three backends: [`memory`] (tests,
//! `--state memory`), [`sqlite`] (the embedded default) and [`redis`] (several instances).
//!
//! Every table is bounded: conversations by count and age (the oldest go first, counted in the
//! logs), usage by age in days. Caller key secrets never reach a store: usage is keyed by
//! [`caller_hash`], and a key added through the admin API is kept as hashes ([`KeyRecord`]).

pub mod blobs;
pub mod memory;
pub mod redis;
pub mod sqlite;
pub mod timed;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Default upper bound on stored conversations.
pub const DEFAULT_MAX_CONVERSATIONS: usize = 10_000;
/// Blobs kept at most per conversation bound (a checkpoint refers to a handful).
pub const BLOBS_PER_CONVERSATION: usize = 16;
/// Days of usage counters kept.
pub const USAGE_RETENTION_DAYS: u64 = 35;

/// One conversation's saved state: the checkpoint exactly as received and the account that
/// produced it (the conversation's binding: its next request goes back there while it is
/// healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Checkpoint bytes, byte-exact.
    pub checkpoint: Bytes,
    /// The account that produced it.
    pub account: String,
    /// Caller messages of the request that produced it.
    pub covered: usize,
    /// Last use, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// An account's persisted health. Times are wall-clock so they survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AccountRecord {
    /// Not used before this time (milliseconds since the Unix epoch; 0 = no cooldown).
    pub cooldown_until_ms: u64,
    /// Category of the failure that started the cooldown.
    pub reason: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Taken out of rotation for good.
    pub disabled: bool,
}

/// What a usage row counts: one caller (by hash) on one account and model on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    /// [`caller_hash`] of the caller's key.
    pub caller: String,
    /// Account name.
    pub account: String,
    /// Model id.
    pub model: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
}

/// A caller key change made through the admin API, as stored so that it survives a restart.
/// Never the secret: only its SHA-256 (for authentication) and its [`caller_hash`] (for usage).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyRecord {
    /// Key name.
    pub name: String,
    /// Hex SHA-256 of the secret, for a key added through the admin API (`None`: the secret
    /// comes from the config).
    pub digest: Option<String>,
    /// [`caller_hash`] of the secret, with `digest`.
    pub caller: Option<String>,
    /// The policy as JSON (`None`: the config's).
    pub policy: Option<String>,
    /// Revoked: the name is refused even if the config still lists it.
    pub revoked: bool,
}

/// Counter names (errors are `errors.<category>`).
pub mod counter {
    /// Turns that completed.
    pub const REQUESTS: &str = "requests";
    /// Prompt tokens.
    pub const INPUT: &str = "input_tokens";
    /// Generated tokens.
    pub const OUTPUT: &str = "output_tokens";
    /// Prompt tokens read from cache.
    pub const CACHE_READ: &str = "cache_read_tokens";
    /// Prompt tokens written to cache.
    pub const CACHE_WRITE: &str = "cache_write_tokens";
    /// Reasoning tokens.
    pub const REASONING: &str = "reasoning_tokens";
    /// Prefix of the per-category error counters.
    pub const ERRORS_PREFIX: &str = "errors.";
}

/// Usage counters by name.
pub type Counters = BTreeMap<String, u64>;

/// Whether the store works as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreHealth {
    /// Working.
    Ok,
    /// Serving from memory because the configured backend fails.
    Degraded {
        /// Why.
        reason: String,
    },
}

/// A store operation or opening failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite file is not a database (or is damaged).
    #[error(
        "state file {} is corrupt or not a cursor-proxy database; it was left untouched: move it \
         aside (or restore a backup) and restart, or choose another file with --state",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Another process holds the database locked beyond the busy timeout.
    #[error(
        "state file {} is locked by another process; stop the other process or choose another \
         file with --state",
        path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file or its directory cannot be written.
    #[error(
        "state file {} is read-only; make it (and its directory) writable by this user, or \
         choose another file with --state",
        path.display()
    )]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// The underlying error, when there is one.
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The file was written by a newer cursor-proxy.
    #[error(
        "state file {} has schema version {found}, newer than the {known} this cursor-proxy \
         knows; upgrade cursor-proxy, or choose another file with --state (the file was left \
         untouched)",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
    },
    /// The file or its directory could not be created or opened.
    #[error("cannot open state file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Any other SQLite failure.
    #[error("state database {} failed", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A Redis command failed.
    #[error("redis failed")]
    Redis(#[source] ::redis::RedisError),
    /// A Redis command took longer than its deadline.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A stored value does not decode.
    #[error("stored value for {0} does not decode")]
    Decode(String),
    /// The encryption key is not 32 bytes of hex or base64.
    #[error("the Redis encryption key must be 32 bytes, as 64 hex digits or base64")]
    BadKey,
    /// A blocking task was lost (the runtime is shutting down).
    #[error("store task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// The store seam. Every method is async and bounded in time by its backend; an error is the
/// caller's to log (the engine keeps serving without the store).
pub trait Store: Send + Sync + fmt::Debug {
    /// `memory`, `sqlite` or `redis`, for logs and `/healthz`.
    fn kind(&self) -> &'static str;

    /// The conversation's saved state, if any and not expired.
    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>>;

    /// Saves a conversation's state (evicting the oldest past the bound).
    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        conversation: Conversation,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Drops a conversation's state.
    fn forget_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every account's persisted state.
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>>;

    /// Saves an account's state.
    fn save_account<'a>(
        &'a self,
        name: &'a str,
        record: AccountRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// An account's persisted credentials (an opaque token-set encoding), if any.
    fn credentials<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Saves an account's credentials; done before a refreshed token is used, so a rotated
    /// refresh token is never lost.
    fn save_credentials<'a>(
        &'a self,
        account: &'a str,
        tokens: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Adds `counters` to the usage row `key`.
    fn add_usage<'a>(
        &'a self,
        key: &'a UsageKey,
        counters: &'a Counters,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every usage row.
    fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>>;

    /// A KV blob a checkpoint refers to (its last-use time is renewed).
    fn blob<'a>(&'a self, id: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>>;

    /// Saves a KV blob (bounded like conversations: by age and count).
    fn save_blob(&self, id: Bytes, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Registers `owner` (an instance's internal address) as the holder of `conv`'s parked
    /// tool turn for `ttl`. Only shared stores keep it; the others ignore it.
    fn set_owner<'a>(
        &'a self,
        _conv: &'a str,
        _owner: &'a str,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// The instance holding `conv`'s parked tool turn, if another one registered it.
    fn owner<'a>(&'a self, _conv: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    /// Drops `conv`'s owner registration.
    fn clear_owner<'a>(&'a self, _conv: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the store works as configured.
    fn health(&self) -> StoreHealth {
        StoreHealth::Ok
    }

    /// Input plus output tokens counted for `caller` on `day`, over every account and model:
    /// what `tokens_per_day` is checked against. Backends override this with a cheaper read.
    fn caller_tokens<'a>(
        &'a self,
        caller: &'a str,
        day: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            Ok(self
                .usage()
                .await?
                .iter()
                .filter(|(k, _)| k.caller == caller && k.day == day)
                .map(|(_, c)| tokens_of(c))
                .sum())
        })
    }

    /// The caller key changes made through the admin API (see [`KeyRecord`]).
    fn caller_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Saves (replaces) the record of the key `record.name`. A store that does not override
    /// this keeps admin changes only in the running process.
    fn save_caller_key<'a>(
        &'a self,
        record: &'a KeyRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = record;
        Box::pin(async { Ok(()) })
    }

    /// Counts one hit on the window counter `name`, shared by every instance on this store,
    /// and returns the hits so far; the counter is gone `window` after its last hit (callers
    /// put the window's number in `name`). `None`: the store is not shared between instances
    /// (or cannot answer now), and each process limits on its own.
    fn hit_window<'a>(
        &'a self,
        name: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let _ = (name, window);
        Box::pin(async { Ok(None) })
    }
}

/// Input plus output tokens of a usage row.
pub fn tokens_of(counters: &Counters) -> u64 {
    let n = |k: &str| counters.get(k).copied().unwrap_or(0);
    n(counter::INPUT).saturating_add(n(counter::OUTPUT))
}

/// Bounds shared by every backend.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A conversation unused this long is gone.
    pub conversation_ttl: Duration,
    /// At most this many conversations; the least recently used go first.
    pub max_conversations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            conversation_ttl: Duration::from_secs(30 * 60),
            max_conversations: DEFAULT_MAX_CONVERSATIONS,
        }
    }
}

/// Where the proxy keeps its state.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateConfig {
    /// This process's memory only (lost on restart).
    Memory,
    /// One SQLite file.
    Sqlite(PathBuf),
    /// A Redis server shared by several instances.
    Redis {
        /// `redis://host:port/db` (or `rediss://`).
        url: String,
        /// 32-byte key that encrypts credentials at rest; without it credentials stay in
        /// this process's memory.
        key: Option<crate::ops::config::Secret>,
    },
}

impl fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StateConfig {
    /// One line for the startup banner (no secret: a Redis URL's password is masked).
    pub fn describe(&self) -> String {
        match self {
            Self::Memory => "memory (lost on restart)".to_owned(),
            Self::Sqlite(path) => format!("sqlite file {}", path.display()),
            Self::Redis { url, key } => format!(
                "redis {} (credentials {})",
                mask_password(url),
                if key.is_some() {
                    "encrypted in redis"
                } else {
                    "in memory only: no --redis-key"
                }
            ),
        }
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_owned(),
    }
}

/// The default state file: `state.sqlite3` in the platform's data directory for
/// `cursor-proxy` (`~/.local/share/cursor-proxy` on Linux).
pub fn default_state_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "cursor-proxy")
        .map(|d| d.data_dir().join("state.sqlite3"))
}

/// Opens the configured store (runs migrations, connects to Redis).
///
/// # Errors
/// What the backend's `open` returns, naming the file or server.
pub async fn open(config: &StateConfig, limits: Limits) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        StateConfig::Memory => Arc::new(memory::MemoryStore::new(limits)),
        StateConfig::Sqlite(path) => {
            let path = path.clone();
            let store =
                tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path, limits))
                    .await
                    .map_err(StoreError::Task)??;
            Arc::new(store)
        }
        StateConfig::Redis { url, key } => {
            Arc::new(redis::RedisStore::open(url, key.as_ref(), limits).await?)
        }
    })
}

/// The caller key as stored: a SHA-256 prefix, never the key itself.
pub fn caller_hash(key: &str) -> String {
    let d = Sha256::digest(format!("cursor-proxy usage caller\0{key}").as_bytes());
    hex::encode(&d[..12])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The UTC day of `ms` (milliseconds since the epoch) as `YYYY-MM-DD`.
pub fn day_of(ms: u64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm): no date crate for one format.
    let days = i64::try_from(ms / 86_400_000).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The counters of one completed turn.
pub fn turn_counters(usage: &cursor_connect::Usage) -> Counters {
    [
        (counter::REQUESTS, 1),
        (counter::INPUT, usage.input_tokens),
        (counter::OUTPUT, usage.output_tokens),
        (counter::CACHE_READ, usage.cache_read_tokens),
        (counter::CACHE_WRITE, usage.cache_write_tokens),
        (counter::REASONING, usage.reasoning_tokens),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The counter of one failed attempt, by the classifier's category.
pub fn error_counter(category: &str) -> Counters {
    Counters::from([(format!("{}{category}", counter::ERRORS_PREFIX), 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
        assert_eq!(day_of(1_798_675_200_000 + 86_399_999), "2026-12-31");
    }

    #[test]
    fn caller_hash_hides_the_key() {
        let h = caller_hash("sk-secret");
        assert_eq!(h.len(), 24);
        assert!(!h.contains("secret"));
        assert_ne!(h, caller_hash("sk-other"));
    }
}
