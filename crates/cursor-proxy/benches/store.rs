//! Store bench (placeholder while it is written).
fn main() {}
