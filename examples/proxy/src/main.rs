//! cursor-proxy: work in progress.

fn main() {}
