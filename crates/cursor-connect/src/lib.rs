//! cursor-connect: work in progress.
