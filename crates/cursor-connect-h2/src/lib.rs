//! cursor-connect-h2: work in progress.
