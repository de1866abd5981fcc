//! Placeholder: the lookup bench comes with the cache.

fn main() {}
