//! The embedded `cursor-mock` backend used when no account is configured (feature
//! `embedded-mock`, on by default; without it, starting with no account is an error).

#[cfg(feature = "embedded-mock")]
use cursor_mock::{MockServer, Scenario};

use crate::engine::pool::Account;
#[cfg(feature = "embedded-mock")]
use crate::ops::config::{AccountConfig, Secret};

/// Model name the curl line uses against the embedded mock.
pub const MOCK_MODEL: &str = "composer-2.5";

/// A running in-process mock; it stops when dropped.
#[cfg(feature = "embedded-mock")]
#[derive(Debug)]
pub(crate) struct Embedded {
    mock: MockServer,
}

#[cfg(feature = "embedded-mock")]
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

/// Built without the embedded mock: no value of this type exists.
#[cfg(not(feature = "embedded-mock"))]
#[derive(Debug)]
pub(crate) struct Embedded {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "embedded-mock"))]
impl Embedded {
    pub(crate) async fn start() -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "cursor-proxy was built without the `embedded-mock` feature: configure an account",
        ))
    }

    pub(crate) fn url(&self) -> String {
        match self.never {}
    }

    pub(crate) fn account(&self) -> Account {
        match self.never {}
    }
}
