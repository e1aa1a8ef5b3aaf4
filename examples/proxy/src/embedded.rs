//! The embedded `cursor-mock` backend used when no account is configured.

use crate::config::{AccountConfig, Secret};
use crate::pool::Account;

/// Model name the curl line uses against the embedded mock.
pub const MOCK_MODEL: &str = "composer-2.5";

/// A running in-process mock.
#[derive(Debug)]
pub(crate) struct Embedded {
    url: String,
}

impl Embedded {
    pub(crate) async fn start() -> std::io::Result<Self> {
        Err(std::io::Error::other("cursor-mock not wired yet"))
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn account(&self) -> Account {
        Account::new(
            AccountConfig::named("mock"),
            Secret::new("mock-access-token"),
            &self.url,
        )
    }
}
