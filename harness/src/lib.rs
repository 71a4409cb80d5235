//! harness: crash exploration, the oracle and its checks, and the `powercut` CLI.
//!
//! The harness lands with the harness-core issue; this crate exists so the workspace layout is in
//! place.
