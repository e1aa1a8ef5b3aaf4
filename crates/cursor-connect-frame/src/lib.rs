//! cursor-connect-frame: work in progress.
