//! Black-box mode on programs written in Python: the example key-value store (a correct variant
//! and one per classic mistake) and SQLite with synchronous=FULL. Needs strace and python3
//! (`.ci/run` installs strace when it is missing).

use harness::blackbox::explore::{self, Options, Promise};
use harness::blackbox::{Recording, Trace, record};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/blackbox")
}

/// The interpreter itself (a version-manager shim in front of it costs ~100 ms per check).
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for the black-box tests");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn trace_of(dir: &Path, args: &[&str]) -> Trace {
    trace_failing(dir, args, None)
}

fn trace_failing(dir: &Path, args: &[&str], fail_sync: Option<u64>) -> Trace {
    let mut command = vec![python()];
    command.extend(args.iter().map(|a| a.to_string()));
    record(&Recording { dir: dir.to_path_buf(), command, ack: "^ACK ".into(), fail_sync })
        .unwrap_or_else(|e| panic!("{e} (is strace installed?)"))
}

fn options(check: String, scratch: &Path, budget: usize) -> Options {
    Options {
        profile: faultfs::Profile::posix(),
        seed: 7,
        budget,
        per_point: 6,
        sampled: 4,
        check,
        timeout: Duration::from_secs(20),
        jobs: 2,
        promise: Promise::Durable,
        shrink_runs: 32,
        scratch: scratch.to_path_buf(),
    }
}

fn explore_kv(variant: &str) -> (Trace, explore::Exploration) {
    explore_kv_failing(variant, None)
}

fn explore_kv_failing(variant: &str, fail_sync: Option<u64>) -> (Trace, explore::Exploration) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let kv = examples().join("kvstore.py");
    let kv = kv.to_str().unwrap();
    let trace = trace_failing(
        &data,
        &[kv, data.to_str().unwrap(), "load", "9", "--variant", variant],
        fail_sync,
    );
    let check = format!("{} {kv} {{dir}} recover --variant {variant}", python());
    let found =
        explore::explore(&trace, &options(check, &tmp.path().join("scratch"), 120), &|_, _| {})
            .unwrap();
    (trace, found)
}

fn classes(x: &explore::Exploration) -> Vec<&'static str> {
    let mut c: Vec<&str> = x.failures.iter().map(|f| f.verdict.class).collect();
    c.dedup();
    c
}

#[test]
fn the_example_store_passes_and_each_mistake_is_found() {
    let (trace, correct) = explore_kv("correct");
    let acks =
        trace.ops.iter().filter(|o| matches!(o, harness::blackbox::TraceOp::Ack { .. })).count();
    assert_eq!(acks, 10, "9 puts and 1 delete acknowledged");
    assert!(correct.checked >= 60, "only {} states checked", correct.checked);
    assert!(correct.failures.is_empty(), "false positives: {:?}", correct.failures);

    for (variant, class) in
        [("no-fsync", "durability"), ("no-dir-fsync", "durability"), ("no-crc", "validity")]
    {
        let (_, found) = explore_kv(variant);
        assert!(
            classes(&found).contains(&class),
            "{variant}: expected {class}, found {:?}",
            classes(&found)
        );
        let (shrunk, _) = found.shrunk.as_ref().expect("the first failure is shrunk");
        assert_eq!(shrunk.verdict.class, found.failures[0].verdict.class);
        assert!(
            shrunk.dropped.len() <= found.failures[0].dropped.len(),
            "{variant}: shrinking dropped more"
        );
    }
}

/// With the third fsync failing: the correct store stops without acknowledging and passes; the
/// one that retries the fsync and acknowledges has lost the data the failed fsync dropped.
#[test]
fn a_failed_fsync_has_linux_semantics_and_retrying_it_is_found() {
    let (trace, correct) = explore_kv_failing("correct", Some(3));
    assert_ne!(trace.header.exit_code, Some(0), "the correct store exits on EIO");
    assert!(trace.ops.iter().any(|o| matches!(o, harness::blackbox::TraceOp::SyncFailed { .. })));
    assert!(correct.failures.is_empty(), "false positives: {:?}", correct.failures.first());
    let (trace, retry) = explore_kv_failing("retry-fsync", Some(3));
    assert_eq!(trace.header.exit_code, Some(0));
    assert!(classes(&retry).contains(&"durability"), "found {:?}", classes(&retry));
}

#[test]
fn a_trace_gives_the_same_states_every_time_and_ids_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let kv = examples().join("kvstore.py");
    let trace =
        trace_of(tmp.path(), &[kv.to_str().unwrap(), tmp.path().to_str().unwrap(), "load", "6"]);
    let o = options(String::new(), tmp.path(), 80);
    let ids = || {
        let replayed = explore::replay(&trace, &o.profile, o.seed).unwrap();
        let (states, _) = explore::states(&replayed, &o);
        let ids: Vec<String> = states
            .iter()
            .map(|c| explore::state_id(&replayed.points[c.point].0.power_cut_space(), &c.state))
            .collect();
        for (c, id) in states.iter().zip(&ids) {
            let (point, state) = explore::find_state(&replayed, id).unwrap();
            assert_eq!((point, &state), (c.point, &c.state), "{id} reads back as itself");
        }
        ids
    };
    let first = ids();
    assert!(first.len() > 20);
    assert_eq!(first, ids());
    let again = Trace::load(&{
        let p = tmp.path().join("t.trace");
        std::fs::write(&p, trace.to_text()).unwrap();
        p
    })
    .unwrap();
    assert_eq!(again, trace, "a trace file reads back as written");
}

/// SQLite promises durability with synchronous=FULL: any failure here is powercut's bug.
#[test]
fn sqlite_with_synchronous_full_survives_every_crash_state() {
    let script = examples().join("sqlite_kv.py");
    let script = script.to_str().unwrap();
    for journal in ["delete", "wal"] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let trace =
            trace_of(&data, &[script, data.to_str().unwrap(), "load", "4", journal, "full"]);
        let check = format!("{} {script} {{dir}} check", python());
        let found =
            explore::explore(&trace, &options(check, &tmp.path().join("scratch"), 60), &|_, _| {})
                .unwrap();
        assert!(found.checked >= 40, "{journal}: only {} states", found.checked);
        assert!(found.failures.is_empty(), "{journal}: {:?}", found.failures.first());
    }
}
