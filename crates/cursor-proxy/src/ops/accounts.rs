//! Accounts saved by `cursor-proxy login` and `cursor-proxy import`: a JSON file, written
//! atomically and readable only by its owner (0600), that the proxy adds to its configured
//! accounts at start.
//!
//! [`AccountBook`] is the seam for the state store (issue "State that survives"): `list`,
//! `upsert`, `remove`, `set_disabled` and `touch` are all a store has to provide.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::config::{AccountConfig, Secret};

/// The largest accounts file read.
const MAX_FILE: u64 = 4 << 20;

/// One saved account.
#[derive(Clone, PartialEq, Eq)]
pub struct SavedAccount {
    /// Name.
    pub name: String,
    /// Access token.
    pub access_token: Secret,
    /// Refresh token, if the login gave one.
    pub refresh_token: Option<Secret>,
    /// Email from the token's claims, if it has one.
    pub email: Option<String>,
    /// Where it came from: `login`, `ide`, `cli`.
    pub source: String,
    /// The API host it logged in against, when not Cursor's.
    pub upstream: Option<String>,
    /// A Cursor user API key (accounts added through the admin API may have one).
    pub cursor_api_key: Option<Secret>,
    /// The account group (see `account_group` on caller keys).
    pub group: Option<String>,
    /// Taken out of rotation by `cursor-proxy accounts disable`.
    pub disabled: bool,
    /// When it was saved (Unix seconds).
    pub added_unix: u64,
}

impl std::fmt::Debug for SavedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedAccount")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("source", &self.source)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl SavedAccount {
    /// The account as the proxy's pool takes it.
    pub fn to_config(&self) -> (AccountConfig, Secret) {
        let cfg = AccountConfig {
            refresh_token: self.refresh_token.clone(),
            upstream: self.upstream.clone(),
            cursor_api_key: self.cursor_api_key.clone(),
            group: self.group.clone(),
            ..AccountConfig::named(&self.name)
        };
        (cfg, self.access_token.clone())
    }
}

/// The file's form (secrets as plain strings only here, on their way to and from disk).
#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    accounts: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    added_unix: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why the accounts file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// Reading or writing failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// read / write.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an accounts file.
    #[error("{} is not a valid accounts file", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The file is larger than any accounts file should be.
    #[error("{} is larger than 4 MiB", .0.display())]
    TooLarge(PathBuf),
}

/// The accounts file.
#[derive(Debug)]
pub struct AccountBook {
    path: PathBuf,
    accounts: Vec<SavedAccount>,
}

/// The default place: `$XDG_CONFIG_HOME/cursor-proxy/accounts.json` (`~/.config/...`), or
/// `%APPDATA%\cursor-proxy\accounts.json` on Windows.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = if cfg!(windows) {
        env("APPDATA").map(PathBuf::from)
    } else {
        env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
    };
    base.map(|b| b.join("cursor-proxy").join("accounts.json"))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AccountBook {
    /// Opens the file at `path`; a missing file is an empty book.
    pub fn open(path: &Path) -> Result<Self, BookError> {
        let io = |source| BookError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE => return Err(BookError::TooLarge(path.to_owned())),
            Ok(_) => {
                let text = std::fs::read(path).map_err(io)?;
                serde_json::from_slice::<File>(&text).map_err(|source| BookError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(io(e)),
        };
        let accounts = file
            .accounts
            .into_iter()
            .map(|e| SavedAccount {
                name: e.name,
                access_token: Secret::new(e.access_token),
                refresh_token: e.refresh_token.map(Secret::new),
                email: e.email,
                source: e.source,
                upstream: e.upstream,
                cursor_api_key: e.cursor_api_key.map(Secret::new),
                group: e.group,
                disabled: e.disabled,
                added_unix: e.added_unix,
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            accounts,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every saved account.
    pub fn list(&self) -> &[SavedAccount] {
        &self.accounts
    }

    /// Adds `account`, replacing one of the same name; saves.
    pub fn upsert(&mut self, mut account: SavedAccount) -> Result<(), BookError> {
        if account.added_unix == 0 {
            account.added_unix = now_unix();
        }
        match self.accounts.iter_mut().find(|a| a.name == account.name) {
            Some(a) => *a = account,
            None => self.accounts.push(account),
        }
        self.save()
    }

    /// Removes the account `name`; saves. Returns whether it existed.
    pub fn remove(&mut self, name: &str) -> Result<bool, BookError> {
        let before = self.accounts.len();
        self.accounts.retain(|a| a.name != name);
        if self.accounts.len() == before {
            return Ok(false);
        }
        self.save().map(|()| true)
    }

    /// Disables or enables the account `name`; saves. Returns whether it exists.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<bool, BookError> {
        let Some(a) = self.accounts.iter_mut().find(|a| a.name == name) else {
            return Ok(false);
        };
        a.disabled = disabled;
        self.save().map(|()| true)
    }

    /// Writes the book: to a 0600 temporary file next to it, then renamed over it, so a crash
    /// never leaves half a file and the tokens are never readable by others.
    fn save(&self) -> Result<(), BookError> {
        let io = |source| BookError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let file = File {
            accounts: self.accounts.iter().map(entry).collect(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        write_private(&tmp, &text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

fn entry(a: &SavedAccount) -> Entry {
    Entry {
        name: a.name.clone(),
        access_token: a.access_token.expose().to_owned(),
        refresh_token: a.refresh_token.as_ref().map(|s| s.expose().to_owned()),
        email: a.email.clone(),
        source: a.source.clone(),
        upstream: a.upstream.clone(),
        cursor_api_key: a.cursor_api_key.as_ref().map(|s| s.expose().to_owned()),
        group: a.group.clone(),
        disabled: a.disabled,
        added_unix: a.added_unix,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The `email` claim of a JWT access token, if it has one (no signature is checked).
pub fn email_claim(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("email")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_privately_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("cursor-proxy-book-{}", std::process::id()));
        let path = dir.join("accounts.json");
        let mut book = AccountBook::open(&path).unwrap();
        assert!(book.list().is_empty());
        book.upsert(SavedAccount {
            name: "a".into(),
            access_token: Secret::new("tok-a-secret"),
            refresh_token: None,
            email: Some("a@example.com".into()),
            source: "login".into(),
            upstream: None,
            cursor_api_key: None,
            group: Some("team".into()),
            disabled: false,
            added_unix: 0,
        })
        .unwrap();
        assert!(book.set_disabled("a", true).unwrap());
        assert!(!book.set_disabled("b", true).unwrap());
        let again = AccountBook::open(&path).unwrap();
        assert_eq!(again.list().len(), 1);
        assert!(again.list()[0].disabled);
        assert_eq!(again.list()[0].to_config().0.group.as_deref(), Some("team"));
        assert_eq!(again.list()[0].access_token.expose(), "tok-a-secret");
        assert!(!format!("{again:?}").contains("tok-a-secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = again;
        assert!(again.remove("a").unwrap());
        assert!(AccountBook::open(&path).unwrap().list().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn email_from_claims() {
        use base64::Engine as _;
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!("{}.{}.sig", b("{}"), b(r#"{"email":"x@y.z"}"#));
        assert_eq!(email_claim(&jwt).as_deref(), Some("x@y.z"));
        assert_eq!(email_claim("not-a-jwt"), None);
    }
}
