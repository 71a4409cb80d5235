//! harness: powercut's crash exploration, oracle and checks.
//!
//! - [`subject`]: the `Subject` trait an engine under test implements, and the built-in Bitcask.
//! - [`scenario`]: scenario files (JSON, unknown fields rejected).
//! - [`workload`]: the operations a seed runs; every value tagged with the write that made it.
//! - [`run`]: one seed — the workload once, crash points captured as it goes, crash states,
//!   recovery, checks, a crash during recovery, writes after recovery.
//! - [`oracle`]: the history, the promises, the named violation classes.
//! - [`suite`]: seeds in parallel, results in seed order, the digest, the JSON results.
//!
//! Determinism: a seed's outcome depends only on the scenario, the seed and the binary. Seeds run
//! in parallel but nothing is shared between them, and results are ordered by seed.

pub mod bugs;
pub mod cli;
pub mod oracle;
pub mod report;
pub mod report_html;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod state;
pub mod subject;
pub mod suite;
pub mod workload;
