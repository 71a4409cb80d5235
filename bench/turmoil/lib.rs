//! Nothing here: see `benches/vs_turmoil.rs`.
