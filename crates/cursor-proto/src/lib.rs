//! cursor-proto: work in progress.
