//! Putting your own engine under powercut: the tiny write-ahead log of `tests/it/wal_subject.rs`
//! as a `Subject`, crash-tested on a built-in scenario, with and without its syncs.
//! Run: `cargo run -p harness --example own_engine`.

#[path = "../tests/it/wal_subject.rs"]
mod wal_subject;

use powercut::suite::run_scenario;
use wal_subject::Wal;

fn main() -> Result<(), String> {
    let scenario = powercut::scenarios::named("o_sync-posix").ok_or("no o_sync-posix")?;
    for sync in [true, false] {
        let result = run_scenario::<Wal>(&scenario, &sync, 0..100, &|_| {});
        println!(
            "wal (sync: {sync}): {} crash states, {:?}",
            result.crash_states(),
            result.by_class()
        );
    }
    Ok(())
}
