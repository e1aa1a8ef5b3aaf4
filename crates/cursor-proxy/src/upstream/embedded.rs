//! The embedded `cursor-mock` backend used when no account is configured.

use cursor_mock::{MockServer, Scenario};

use crate::engine::pool::Account;
use crate::ops::config::{AccountConfig, Secret};

/// Model name the curl line uses against the embedded mock.
pub const MOCK_MODEL: &str = "composer-2.5";

/// A running in-process mock; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Embedded {
    mock: MockServer,
}

impl Embedded {
    pub(crate) async fn start() -> std::io::Result<Self> {
        Ok(Self {
            mock: MockServer::start(Scenario::default()).await?,
        })
    }

    pub(crate) fn url(&self) -> String {
        self.mock.url()
    }

    pub(crate) fn account(&self) -> Account {
        Account::new(
            AccountConfig::named("mock"),
            Secret::new("mock-access-token"),
            &self.mock.url(),
        )
    }
}
