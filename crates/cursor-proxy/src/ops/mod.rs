//! Running the proxy: configuration, caller keys, logging.

pub mod auth;
pub mod config;
pub mod logging;
