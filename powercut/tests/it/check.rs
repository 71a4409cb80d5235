//! The test-side builder on a subject that is not the built-in engine: the default suite passes
//! for a correct log (skipping, and saying so, the scenario it cannot run), a log that skips its
//! syncs fails with the shrunk case replayed and the command that replays it, and the failure
//! persists and is replayed first by the next run.

use crate::wal_subject::Wal;
use powercut::{Check, Failure};

#[test]
fn a_correct_subject_passes_the_default_suite_and_skips_what_it_cannot_run() {
    let summary = Check::<Wal>::new(true).seeds(0..4).no_regressions().run().unwrap();
    assert_eq!(summary.skipped.len(), 1, "{:?}", summary.skipped);
    assert_eq!(summary.skipped[0].0, "atomic-batch-posix");
    assert_eq!(summary.results.len(), powercut::scenarios::default().len() - 1);
    assert!(summary.crash_states() > 0);
    let text = summary.to_string();
    assert!(text.contains("PASS wal:") && text.contains("skipped atomic-batch-posix"), "{text}");
}

#[test]
fn a_failure_is_shrunk_replayed_persisted_and_replayed_first_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let o_sync = powercut::scenarios::named("o_sync-posix").unwrap();
    let check = |sync: bool| {
        Check::<Wal>::new(sync).scenarios([o_sync.clone()]).seeds(0..40).regressions(dir.path())
    };
    let Err(Failure::Violation(v)) = check(false).run() else { panic!("the unsynced log passed") };
    let text = Failure::Violation(v.clone()).to_string();
    for needle in ["FAIL wal on scenario o_sync-posix", "shrunk to", "== the workload", "VIOLATION"]
    {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let command = format!("POWERCUT_CASE='o_sync-posix {}' cargo test", v.case);
    assert!(text.contains(&command), "{command:?} missing from:\n{text}");
    let saved = v.saved.clone().expect("the case is saved");
    assert!(saved.starts_with(dir.path()));
    // The next run replays it first: the fixed log passes it, the broken one fails on it at once.
    let summary = check(true).run().unwrap();
    assert_eq!(summary.regressions, 1);
    let Err(Failure::Violation(again)) = check(false).run() else {
        panic!("the saved case passed")
    };
    assert_eq!((again.case.clone(), again.saved.clone()), (v.case.clone(), Some(saved)));
}

#[test]
fn a_bad_subject_section_is_a_setup_error_naming_the_field() {
    let mut s = powercut::scenarios::named("o_sync-posix").unwrap();
    s.subject.insert("wal".into(), serde_json::json!({"sync": true}));
    let err = Check::<Wal>::new(true).scenarios([s]).no_regressions().run().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Failure::Setup(_)), "{text}");
    assert!(text.contains("subject.wal") && text.contains("o_sync-posix"), "{text}");
}

#[test]
fn a_check_that_checks_nothing_fails_loudly() {
    let o_sync = powercut::scenarios::named("o_sync-posix").unwrap();
    // An empty seed range runs no crash state: not a pass.
    let err =
        Check::<Wal>::new(true).scenarios([o_sync.clone()]).seeds(3..3).no_regressions().run();
    let text = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("checked no crash state"), "{text}");
    // A saved case whose crash point the run never reaches is stale: it must not read as fixed.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("wal-o_sync-posix-seed-0.json");
    let case = serde_json::json!({
        "subject": "wal", "scenario": "o_sync-posix", "case": "--seed 0 --crash-at 999999 --state 0",
        "class": "durability", "message": "",
    });
    std::fs::write(&saved, case.to_string()).unwrap();
    let check = Check::<Wal>::new(true).scenarios([o_sync]).seeds(0..2).regressions(dir.path());
    let err = check.run().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("checks no crash state") && err.contains("seed-0.json"), "{err}");
}
