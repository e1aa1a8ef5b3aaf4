//! The operator's subcommands: `login`, `import` and `accounts`. They work on the accounts file
//! ([`AccountBook`]) and print for a person; tokens are never printed.

use std::path::{Path, PathBuf};

use super::accounts::{AccountBook, SavedAccount, default_path, email_claim};
use super::config::{CURSOR_UPSTREAM, Secret};
use super::login::{self, LoginError, Pkce, PollOptions};

/// A subcommand.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Sign in to Cursor in a browser and save the account.
    Login(LoginArgs),
    /// Save the account the Cursor IDE or CLI is signed in with.
    Import(ImportArgs),
    /// List, remove, disable or enable saved accounts.
    Accounts {
        /// What to do (default: list).
        #[command(subcommand)]
        action: Option<AccountsAction>,
    },
}

/// `cursor-proxy login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Name of the saved account (default: the email, else `cursor`).
    #[arg(long)]
    pub name: Option<String>,
    /// Only print the URL; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Cursor's website, where the login page is.
    #[arg(long, default_value = login::CURSOR_WEBSITE)]
    pub website: String,
    /// Cursor's API host, which is polled for the tokens.
    #[arg(long, default_value = CURSOR_UPSTREAM)]
    pub api: String,
    /// First delay between polls in milliseconds (tests shorten it).
    #[arg(long, default_value_t = 1000, hide = true)]
    pub poll_base_ms: u64,
    /// Polls at most.
    #[arg(long, default_value_t = login::MAX_POLLS, hide = true)]
    pub max_polls: u32,
}

/// Where `import` reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ImportFrom {
    /// The IDE's `state.vscdb`.
    Ide,
    /// The CLI's `auth.json`.
    Cli,
}

/// `cursor-proxy import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Source (default: the IDE, then the CLI).
    #[arg(long, value_enum)]
    pub from: Option<ImportFrom>,
    /// The file to read instead of the usual place.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Name of the saved account (default: the source, `ide` or `cli`).
    #[arg(long)]
    pub name: Option<String>,
}

/// `cursor-proxy accounts …`.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum AccountsAction {
    /// List saved accounts (no secrets).
    List,
    /// Delete a saved account.
    Remove {
        /// Its name.
        name: String,
    },
    /// Keep a saved account but do not serve with it.
    Disable {
        /// Its name.
        name: String,
    },
    /// Serve with a disabled account again.
    Enable {
        /// Its name.
        name: String,
    },
}

/// Runs a subcommand against the accounts file at `file` (or the default place). The error
/// is the message for the user.
pub async fn run(command: &Command, file: Option<&Path>) -> Result<(), String> {
    let path = match file {
        Some(p) => p.to_owned(),
        None => default_path(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .ok_or("no home directory: pass --accounts-file")?,
    };
    let mut book = AccountBook::open(&path).map_err(|e| super::chain(&e))?;
    match command {
        Command::Login(args) => login(args, &mut book).await,
        Command::Import(args) => import(args, &mut book),
        Command::Accounts { action } => accounts(action.as_ref(), &mut book),
    }
}

async fn login(args: &LoginArgs, book: &mut AccountBook) -> Result<(), String> {
    let pkce = Pkce::new();
    let url = pkce.login_url(&args.website);
    println!("Open this page in a browser and sign in to Cursor:\n\n  {url}\n");
    if !args.no_browser {
        open_browser(&url);
    }
    println!(
        "Waiting for the sign-in to finish (up to {} polls)…",
        args.max_polls
    );
    let opts = PollOptions {
        api: args.api.clone(),
        base: std::time::Duration::from_millis(args.poll_base_ms.max(1)),
        max_polls: args.max_polls.max(1),
    };
    let tokens = login::poll(&pkce, &opts, |n| {
        if n % 10 == 0 {
            println!("  still waiting ({n} polls)…");
        }
    })
    .await
    .map_err(|e: LoginError| e.to_string())?;
    let email = email_claim(tokens.access_token.expose());
    let name = args
        .name
        .clone()
        .or_else(|| email.clone())
        .unwrap_or_else(|| "cursor".to_owned());
    let upstream = (args.api.trim_end_matches('/') != CURSOR_UPSTREAM).then(|| args.api.clone());
    save(
        book,
        &name,
        tokens.access_token,
        tokens.refresh_token,
        email.clone(),
        "login",
        upstream,
    )?;
    match email {
        Some(e) => println!(
            "Signed in as {e}; saved as account {name:?} in {}.",
            book.path().display()
        ),
        None => println!(
            "Signed in; saved as account {name:?} in {}.",
            book.path().display()
        ),
    }
    Ok(())
}

fn save(
    book: &mut AccountBook,
    name: &str,
    access_token: Secret,
    refresh_token: Option<Secret>,
    email: Option<String>,
    source: &str,
    upstream: Option<String>,
) -> Result<(), String> {
    book.upsert(SavedAccount {
        name: name.to_owned(),
        access_token,
        refresh_token,
        email,
        source: source.to_owned(),
        upstream,
        cursor_api_key: None,
        group: None,
        disabled: false,
        added_unix: 0,
    })
    .map_err(|e| super::chain(&e))
}

/// Opens `url` in the desktop's browser when there is one; failures only mean the user opens
/// it by hand.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        Some(("open", vec![url]))
    } else if cfg!(windows) {
        Some(("cmd", vec!["/C", "start", "", url]))
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        Some(("xdg-open", vec![url]))
    } else {
        None
    };
    if let Some((cmd, args)) = program {
        let spawned = std::process::Command::new(cmd)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_err() {
            println!("(could not open a browser; open the page above by hand)");
        }
    }
}

fn import(args: &ImportArgs, book: &mut AccountBook) -> Result<(), String> {
    let sources: &[ImportFrom] = match args.from {
        Some(ImportFrom::Ide) => &[ImportFrom::Ide],
        Some(ImportFrom::Cli) => &[ImportFrom::Cli],
        None => &[ImportFrom::Ide, ImportFrom::Cli],
    };
    let mut tried = Vec::new();
    for &source in sources {
        let path = match (&args.path, source) {
            (Some(p), _) => Some(p.clone()),
            (None, ImportFrom::Ide) => cursor_connect::auth::ide_state_db_path(),
            (None, ImportFrom::Cli) => cursor_connect::auth::cli_auth_file_path(),
        };
        let Some(path) = path else { continue };
        let read = match source {
            ImportFrom::Ide => cursor_connect::auth::read_ide_state_db(&path),
            ImportFrom::Cli => cursor_connect::auth::read_cli_auth_file(&path),
        };
        let tokens = match read {
            Ok(t) => t,
            Err(e) => {
                tried.push(format!("{}: {}", path.display(), super::chain(&e)));
                continue;
            }
        };
        let Some(access) = tokens.access_token else {
            tried.push(format!("{}: no access token in it", path.display()));
            continue;
        };
        let label = if source == ImportFrom::Ide {
            "ide"
        } else {
            "cli"
        };
        let name = args.name.clone().unwrap_or_else(|| label.to_owned());
        let email = email_claim(access.secret().expose());
        save(
            book,
            &name,
            access.secret().clone(),
            tokens.refresh_token,
            email,
            label,
            None,
        )?;
        println!(
            "Imported the {label} login from {} as account {name:?}.",
            path.display()
        );
        return Ok(());
    }
    if tried.is_empty() {
        return Err("no Cursor login found (no home directory); pass --path".into());
    }
    Err(format!(
        "no Cursor login could be imported:\n  {}",
        tried.join("\n  ")
    ))
}

fn accounts(action: Option<&AccountsAction>, book: &mut AccountBook) -> Result<(), String> {
    let file = book.path().display().to_string();
    let missing = |name: &str| format!("no saved account named {name:?} in {file}");
    match action {
        None | Some(AccountsAction::List) => {
            if book.list().is_empty() {
                println!("No saved accounts in {}.", book.path().display());
            }
            for a in book.list() {
                println!(
                    "{}\t{}\t{}\t{}\tadded {}",
                    a.name,
                    if a.disabled { "disabled" } else { "enabled" },
                    a.email.as_deref().unwrap_or("-"),
                    a.source,
                    super::usage::date_of_unix(a.added_unix)
                );
            }
            Ok(())
        }
        Some(AccountsAction::Remove { name }) => match book.remove(name) {
            Ok(true) => {
                println!("Removed {name:?}.");
                Ok(())
            }
            Ok(false) => Err(missing(name)),
            Err(e) => Err(super::chain(&e)),
        },
        Some(AccountsAction::Disable { name } | AccountsAction::Enable { name }) => {
            let disable = matches!(action, Some(AccountsAction::Disable { .. }));
            match book.set_disabled(name, disable) {
                Ok(true) => {
                    let done = if disable { "Disabled" } else { "Enabled" };
                    println!("{done} {name:?} (a running proxy picks this up on restart).");
                    Ok(())
                }
                Ok(false) => Err(missing(name)),
                Err(e) => Err(super::chain(&e)),
            }
        }
    }
}
