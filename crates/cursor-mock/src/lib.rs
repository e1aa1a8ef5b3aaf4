//! cursor-mock: work in progress.
