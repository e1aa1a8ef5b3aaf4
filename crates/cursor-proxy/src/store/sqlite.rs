//! The embedded default: one SQLite file (WAL, busy timeout, mode 0600), versioned migrations
//! at startup. A corrupt, locked, read-only or newer-schema file is a startup error naming the
//! file and what to do; it is never replaced.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tracing::info;

use super::{
    AccountRecord, Conversation, Counters, Limits, Store, StoreError, USAGE_RETENTION_DAYS,
    UsageKey, day_of, now_ms,
};

/// How long a writer waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Writes between two sweeps of expired and excess conversations (the bound may be exceeded
/// by at most this many rows in between; a sweep on every write would cost a count each time).
const SWEEP_EVERY: u64 = 256;

/// The schema, one entry per version: entry `i` takes the file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE conversations (
         id TEXT PRIMARY KEY,
         checkpoint BLOB NOT NULL,
         account TEXT NOT NULL,
         covered INTEGER NOT NULL,
         updated_ms INTEGER NOT NULL
     );
     CREATE INDEX conversations_by_age ON conversations (updated_ms);
     CREATE TABLE accounts (
         name TEXT PRIMARY KEY,
         cooldown_until_ms INTEGER NOT NULL,
         reason TEXT,
         consecutive_failures INTEGER NOT NULL,
         disabled INTEGER NOT NULL
     );
     CREATE TABLE credentials (
         account TEXT PRIMARY KEY,
         tokens BLOB NOT NULL,
         updated_ms INTEGER NOT NULL
     );
     CREATE TABLE usage (
         caller TEXT NOT NULL,
         account TEXT NOT NULL,
         model TEXT NOT NULL,
         day TEXT NOT NULL,
         counter TEXT NOT NULL,
         value INTEGER NOT NULL,
         PRIMARY KEY (caller, account, model, day, counter)
     ) WITHOUT ROWID;
     CREATE TABLE blobs (
         id BLOB PRIMARY KEY,
         data BLOB NOT NULL,
         updated_ms INTEGER NOT NULL
     );
     CREATE INDEX blobs_by_age ON blobs (updated_ms);",
    // Version 2: caller key changes made through the admin API (hashes only, never secrets).
    "CREATE TABLE caller_keys (
         name TEXT PRIMARY KEY,
         record TEXT NOT NULL,
         updated_ms INTEGER NOT NULL
     );",
];

/// The newest schema version this binary knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// State in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    limits: Limits,
    conn: Mutex<Connection>,
    writes: AtomicU64,
}

impl SqliteStore {
    /// Opens (or creates) the file at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`], [`StoreError::Locked`], [`StoreError::ReadOnly`],
    /// [`StoreError::NewerSchema`] or [`StoreError::Io`], each naming the file.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        prepare_file(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(&path, e))?;
        configure(&conn, &path)?;
        migrate(&conn, &path)?;
        restrict_mode(&path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                limits,
                conn: Mutex::new(conn),
                writes: AtomicU64::new(0),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the connection on a blocking thread.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Inner) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
                f(&conn, &inner).map_err(|e| classify(&inner.path, e))
            })
            .await
            .map_err(StoreError::Task)?
        })
    }
}

/// Refuses a file the operator marked read-only (the owner's write bit cleared): SQLite would
/// otherwise open it read-only and fail only at the first write (and root ignores the bit).
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().readonly() => Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            source: None,
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private(path).map_err(io),
        Err(e) => Err(io(e)),
    }
}

/// Creates the file owner-only before SQLite opens it, so its WAL and shared-memory files,
/// which SQLite creates with the database's mode, are owner-only from the first byte.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn restrict_mode(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    // The first statement reads the header: a file that is not a database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        info!(file = %path.display(), mode, "SQLite kept its journal mode (WAL unavailable)");
    }
    // WAL with NORMAL: a commit survives the process being killed (not a power cut, which
    // costs at most the last commits, never consistency).
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(|e| classify(path, e))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            source: None,
        });
    }
    Ok(())
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |e| classify(path, e);
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    let known = schema_version();
    if found > known {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    if found < 0 {
        return Err(StoreError::Decode(format!(
            "schema version {found} of {}",
            path.display()
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {step}; PRAGMA user_version = {to}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            sql(e)
        })?;
        info!(file = %path.display(), version = to, "state schema migrated");
    }
    Ok(())
}

/// Maps SQLite's error codes onto the errors an operator can act on.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path, source: e }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path, source: e }
        }
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::ReadOnly {
                path,
                source: Some(Box::new(e)),
            }
        }
        _ => StoreError::Sqlite { path, source: e },
    }
}

/// Drops expired conversations, then the oldest past the bound; logs what it dropped.
fn sweep(conn: &Connection, inner: &Inner) -> rusqlite::Result<()> {
    let ttl = u64::try_from(inner.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX);
    let cutoff = i64::try_from(now_ms().saturating_sub(ttl)).unwrap_or(0);
    let expired = conn.execute(
        "DELETE FROM conversations WHERE updated_ms < ?1",
        params![cutoff],
    )?;
    let max = i64::try_from(inner.limits.max_conversations.max(1)).unwrap_or(i64::MAX);
    let evicted = conn.execute(
        "DELETE FROM conversations WHERE id IN \
         (SELECT id FROM conversations ORDER BY updated_ms DESC LIMIT -1 OFFSET ?1)",
        params![max],
    )?;
    let blobs = conn.execute("DELETE FROM blobs WHERE updated_ms < ?1", params![cutoff])?
        + conn.execute(
            "DELETE FROM blobs WHERE id IN \
             (SELECT id FROM blobs ORDER BY updated_ms DESC LIMIT -1 OFFSET ?1)",
            params![max.saturating_mul(super::BLOBS_PER_CONVERSATION as i64)],
        )?;
    let oldest_day = day_of(now_ms().saturating_sub(USAGE_RETENTION_DAYS * 86_400_000));
    let usage = conn.execute("DELETE FROM usage WHERE day < ?1", params![oldest_day])?;
    if expired + evicted + usage + blobs > 0 {
        info!(
            store = "sqlite",
            expired,
            evicted,
            blobs,
            usage_rows = usage,
            "dropped old state (bounded tables)"
        );
    }
    Ok(())
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn conversation<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
        let id = id.to_owned();
        self.with(move |c, inner| {
            let ttl = u64::try_from(inner.limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX);
            let cutoff = ms(now_ms().saturating_sub(ttl));
            c.prepare_cached(
                "SELECT checkpoint, account, covered, updated_ms FROM conversations \
                 WHERE id = ?1 AND updated_ms >= ?2",
            )?
            .query_row(params![id, cutoff], |r| {
                Ok(Conversation {
                    checkpoint: r.get::<_, Vec<u8>>(0)?.into(),
                    account: r.get(1)?,
                    covered: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    updated_ms: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })
            .optional()
        })
    }

    fn save_conversation<'a>(
        &'a self,
        id: &'a str,
        conversation: Conversation,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.to_owned();
        self.with(move |c, inner| {
            c.prepare_cached(
                "INSERT INTO conversations (id, checkpoint, account, covered, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET \
                 checkpoint = excluded.checkpoint, account = excluded.account, \
                 covered = excluded.covered, updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                id,
                &conversation.checkpoint[..],
                conversation.account,
                i64::try_from(conversation.covered).unwrap_or(i64::MAX),
                ms(conversation.updated_ms),
            ])?;
            if inner.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                sweep(c, inner)?;
            }
            Ok(())
        })
    }

    fn forget_conversation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.to_owned();
        self.with(move |c, _| {
            c.prepare_cached("DELETE FROM conversations WHERE id = ?1")?
                .execute(params![id])
                .map(drop)
        })
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>, StoreError>> {
        self.with(|c, _| {
            let mut st = c.prepare_cached(
                "SELECT name, cooldown_until_ms, reason, consecutive_failures, disabled \
                 FROM accounts",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    AccountRecord {
                        cooldown_until_ms: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        reason: r.get(2)?,
                        consecutive_failures: r.get(3)?,
                        disabled: r.get(4)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }

    fn save_account<'a>(
        &'a self,
        name: &'a str,
        record: AccountRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let name = name.to_owned();
        self.with(move |c, _| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO accounts \
                 (name, cooldown_until_ms, reason, consecutive_failures, disabled) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                name,
                ms(record.cooldown_until_ms),
                record.reason,
                record.consecutive_failures,
                record.disabled
            ])
            .map(drop)
        })
    }

    fn credentials<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let account = account.to_owned();
        self.with(move |c, _| {
            c.prepare_cached("SELECT tokens FROM credentials WHERE account = ?1")?
                .query_row(params![account], |r| r.get(0))
                .optional()
        })
    }

    fn save_credentials<'a>(
        &'a self,
        account: &'a str,
        tokens: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let account = account.to_owned();
        self.with(move |c, _| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO credentials (account, tokens, updated_ms) \
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![account, tokens, ms(now_ms())])
            .map(drop)
        })
    }

    fn add_usage<'a>(
        &'a self,
        key: &'a UsageKey,
        counters: &'a Counters,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (key, counters) = (key.clone(), counters.clone());
        self.with(move |c, _| {
            let tx = c.unchecked_transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO usage (caller, account, model, day, counter, value) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET \
                     value = value + excluded.value",
                )?;
                for (name, n) in &counters {
                    st.execute(params![
                        key.caller,
                        key.account,
                        key.model,
                        key.day,
                        name,
                        ms(*n)
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn blob<'a>(&'a self, id: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        let id = id.to_vec();
        self.with(move |c, _| {
            c.prepare_cached("UPDATE blobs SET updated_ms = ?2 WHERE id = ?1 RETURNING data")?
                .query_row(params![id, ms(now_ms())], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .map(|b| b.map(Bytes::from))
        })
    }

    fn save_blob(&self, id: Bytes, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |c, _| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO blobs (id, data, updated_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&id[..], &data[..], ms(now_ms())])
            .map(drop)
        })
    }

    fn caller_keys(&self) -> BoxFuture<'_, Result<Vec<super::KeyRecord>, StoreError>> {
        self.with(|c, _| {
            let mut st = c.prepare_cached("SELECT name, record FROM caller_keys ORDER BY name")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (name, json) = row?;
                // A record that does not decode is skipped (and named), never fatal.
                match serde_json::from_str(&json) {
                    Ok(record) => out.push(record),
                    Err(e) => tracing::warn!(key = %name, error = %e, "stored caller key does not decode; skipped"),
                }
            }
            Ok(out)
        })
    }

    fn save_caller_key<'a>(
        &'a self,
        record: &'a super::KeyRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let name = record.name.clone();
        let json = serde_json::to_string(record).unwrap_or_default();
        self.with(move |c, _| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO caller_keys (name, record, updated_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![name, json, ms(now_ms())])
            .map(drop)
        })
    }

    fn caller_tokens<'a>(
        &'a self,
        caller: &'a str,
        day: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let (caller, day) = (caller.to_owned(), day.to_owned());
        self.with(move |c, _| {
            c.prepare_cached(
                "SELECT COALESCE(SUM(value), 0) FROM usage \
                 WHERE caller = ?1 AND day = ?2 AND counter IN (?3, ?4)",
            )?
            .query_row(
                params![caller, day, super::counter::INPUT, super::counter::OUTPUT],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
        })
    }

    fn usage(&self) -> BoxFuture<'_, Result<Vec<(UsageKey, Counters)>, StoreError>> {
        self.with(|c, _| {
            let mut st = c.prepare_cached(
                "SELECT caller, account, model, day, counter, value FROM usage \
                 ORDER BY caller, account, model, day",
            )?;
            let mut out: Vec<(UsageKey, Counters)> = Vec::new();
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let key = UsageKey {
                    caller: r.get(0)?,
                    account: r.get(1)?,
                    model: r.get(2)?,
                    day: r.get(3)?,
                };
                let value = u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0);
                match out.last_mut() {
                    Some((k, counters)) if *k == key => {
                        counters.insert(r.get(4)?, value);
                    }
                    _ => out.push((key, Counters::from([(r.get(4)?, value)]))),
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cursor-proxy-sqlite-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("state.sqlite3")
    }

    fn conv(n: u64) -> Conversation {
        Conversation {
            checkpoint: Bytes::from(format!("cp{n}")),
            account: "a".into(),
            covered: 1,
            updated_ms: now_ms() - 100_000 + n,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_file_migrates_to_caller_keys_and_keeps_its_usage() {
        let path = scratch("v1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&format!("{}; PRAGMA user_version = 1;", MIGRATIONS[0]))
                .unwrap();
            c.execute(
                "INSERT INTO usage VALUES ('h', 'a', 'm', '2026-12-05', 'input_tokens', 5), \
                 ('h', 'a', 'm', '2026-12-05', 'output_tokens', 2), \
                 ('h', 'a', 'm', '2026-12-05', 'requests', 1)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, Limits::default()).unwrap();
        assert_eq!(store.caller_tokens("h", "2026-12-05").await.unwrap(), 7);
        let record = super::super::KeyRecord {
            name: "team".into(),
            digest: Some("00".repeat(32)),
            caller: Some("h".into()),
            policy: Some("{}".into()),
            revoked: false,
        };
        store.save_caller_key(&record).await.unwrap();
        assert_eq!(store.caller_keys().await.unwrap(), vec![record]);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema_version());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_conversations_keeps_the_newest_within_the_bound() {
        let path = scratch("flood");
        let limits = Limits {
            conversation_ttl: Duration::from_secs(3600),
            max_conversations: 100,
        };
        let store = SqliteStore::open(&path, limits).unwrap();
        for n in 0..(SWEEP_EVERY * 2) {
            store
                .save_conversation(&format!("c{n}"), conv(n))
                .await
                .unwrap();
        }
        let count: i64 = store
            .with(|c, _| c.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(count, 100, "swept down to the bound at the last sweep");
        let newest = format!("c{}", SWEEP_EVERY * 2 - 1);
        assert!(store.conversation(&newest).await.unwrap().is_some());
        assert!(
            store.conversation("c0").await.unwrap().is_none(),
            "oldest gone"
        );
        // Reopening runs no migration again and keeps the rows.
        drop(store);
        let store = SqliteStore::open(&path, limits).unwrap();
        assert!(store.conversation(&newest).await.unwrap().is_some());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blobs_usage_accounts_and_credentials_round_trip() {
        let path = scratch("roundtrip");
        let store = SqliteStore::open(&path, Limits::default()).unwrap();
        let (id, data) = (Bytes::from_static(b"\x01\x02"), Bytes::from_static(b"blob"));
        store.save_blob(id.clone(), data.clone()).await.unwrap();
        assert_eq!(store.blob(&id).await.unwrap(), Some(data));
        assert_eq!(store.blob(b"missing").await.unwrap(), None);
        let key = UsageKey {
            caller: "h".into(),
            account: "a".into(),
            model: "m".into(),
            day: day_of(now_ms()),
        };
        let two = Counters::from([("requests".to_owned(), 1), ("input_tokens".to_owned(), 10)]);
        store.add_usage(&key, &two).await.unwrap();
        store.add_usage(&key, &two).await.unwrap();
        let rows = store.usage().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1["requests"], 2);
        assert_eq!(rows[0].1["input_tokens"], 20);
        let rec = AccountRecord {
            cooldown_until_ms: 5,
            reason: Some("rate_limited".into()),
            consecutive_failures: 2,
            disabled: false,
        };
        store.save_account("a", rec.clone()).await.unwrap();
        assert_eq!(store.accounts().await.unwrap(), vec![("a".to_owned(), rec)]);
        store.save_credentials("a", b"t".to_vec()).await.unwrap();
        assert_eq!(store.credentials("a").await.unwrap(), Some(b"t".to_vec()));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
