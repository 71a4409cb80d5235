//! harness integration tests: the default suite on the correct engine and on every bug switch,
//! determinism across thread counts, a second subject, scenario errors, the command line.
#![expect(clippy::unwrap_used, reason = "test helpers: a panic is the failure report")]

mod blackbox;
mod bugs;
mod cli;
mod determinism;
mod wal;
mod wal_subject;

use harness::scenario::Scenario;
use std::path::PathBuf;

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(format!("{name}.json"))
}

pub fn scenario(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).unwrap()
}

/// Every scenario of the default suite, by file name order.
pub fn suite() -> Vec<Scenario> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| Scenario::load(p).unwrap()).collect()
}
