//! Benchmarks for trawl (see `benches/`).
