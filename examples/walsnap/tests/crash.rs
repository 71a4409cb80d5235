//! Crash tests of walsnap through powercut's builder: the default suite passes on the correct
//! engine, and the planted bug is caught, shrunk and printed with the command that replays it.

use powercut::{Check, Failure};
use std::time::Instant;
use walsnap::{Bug, Config, Subject};

#[test]
fn the_default_suite_passes() {
    let started = Instant::now();
    match Check::<Subject>::new(Config::default()).seeds(0..SEEDS).run() {
        Ok(summary) => println!("{summary}in {:.1?}", started.elapsed()),
        Err(failure) => panic!("{failure}"),
    }
}

/// Seeds of every default scenario (`POWERCUT_SEEDS=A..B` overrides it for a longer sweep).
const SEEDS: u64 = 200;

#[test]
fn the_planted_bug_is_caught() {
    let o_sync = powercut::scenarios::named("o_sync-posix").expect("a default scenario");
    let config = Config { bug: Some(Bug::PublishWithoutSync), ..Config::default() };
    // The crash tests need the `powercut` feature: the printed replay command must say so.
    let check = Check::<Subject>::new(config).test_command("cargo test --features powercut");
    let result = check.scenarios([o_sync]).no_regressions().seeds(0..20).run();
    let failure = match result {
        Err(f @ Failure::Violation(_)) => f,
        Err(other) => panic!("expected a violation, got: {other}"),
        Ok(summary) => panic!("the planted bug went unnoticed:\n{summary}"),
    };
    let text = failure.to_string();
    println!("{text}");
    // Replaying the printed case (POWERCUT_CASE set) runs just that case, with nothing to shrink.
    let replaying = std::env::var_os("POWERCUT_CASE").is_some();
    let shrunk = if replaying { "the replay:" } else { "shrunk to" };
    for needle in [shrunk, "replay it:", "POWERCUT_CASE="] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}
