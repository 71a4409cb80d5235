//! harness integration tests: the default suite on the correct engine and on every bug switch,
//! determinism across thread counts, a second subject, scenario errors, the command line.
#![expect(clippy::unwrap_used, reason = "test helpers: a panic is the failure report")]

mod architecture;
mod blackbox;
mod bugs;
mod check;
mod cli;
mod contract;
mod determinism;
mod external;
mod readme;
mod scenario_fields;
mod wal;
mod wal_subject;

use powercut::bitcask::{Bitcask, BitcaskSpec};
use powercut::scenario::Scenario;
use powercut::subject::config_for;
use std::path::PathBuf;

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.json"))
}

pub fn scenario(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).unwrap()
}

/// Every scenario of the default suite, by file name order.
pub fn suite() -> Vec<Scenario> {
    powercut::scenarios::default()
}

/// The built-in engine's configuration for `s`, with `bugs` on.
pub fn bitcask(s: &Scenario, bugs: &[&str]) -> BitcaskSpec {
    let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
    config_for::<Bitcask>(s, &BitcaskSpec::default(), &bugs).unwrap()
}
