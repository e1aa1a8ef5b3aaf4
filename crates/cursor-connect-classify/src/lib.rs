//! cursor-connect-classify: work in progress.
