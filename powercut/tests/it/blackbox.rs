//! Black-box mode on programs written in Python: the example key-value store (a correct variant
//! and one per classic mistake) and SQLite with synchronous=FULL. Needs strace and python3
//! (`.ci/run` installs strace when it is missing).

use powercut::blackbox::explore::{self, Options, Promise};
use powercut::blackbox::generations;
use powercut::blackbox::{Recording, Trace, record};
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
    // The program's ACK lines (and the traceback a failed fsync gives) go to a file, not the
    // test log.
    record(&Recording {
        dir: dir.to_path_buf(),
        command,
        ack: "^ACK ".into(),
        fail_sync,
        quiet: Some(dir.with_extension("stderr")),
        cwd: None,
        timeout: None,
    })
    .unwrap_or_else(|e| panic!("{e} (is strace installed?)"))
}

fn options(check: String, scratch: &Path, budget: usize) -> Options {
    Options {
        profile: faultfs::Profile::posix(),
        seed: 7,
        budget,
        per_point: 6,
        sampled: 4,
        check: explore::Check::Command(check),
        timeout: Duration::from_secs(20),
        jobs: 2,
        promise: Promise::Durable,
        power: true,
        kill: true,
        shrink_runs: 32,
        scratch: scratch.to_path_buf(),
    }
}

fn explore_trace(trace: &Trace, o: Options) -> explore::Exploration {
    let replayed = explore::replay(trace, &o.profile, o.seed).unwrap();
    explore::explore(trace, &replayed, &o, &|_, _| {}).unwrap()
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
    let found = explore_trace(&trace, options(check, &tmp.path().join("scratch"), 120));
    (trace, found)
}

/// Trace `kvstore.py DIR load 9 --variant V` into `tmp/data-V`, and explore the trace with the
/// store's recovery run as a process per state.
fn kv_per_process(tmp: &Path, variant: &str) -> (Trace, explore::Exploration) {
    let kv = examples().join("kvstore.py");
    let kv = kv.to_str().unwrap();
    let data = tmp.join(format!("data-{variant}"));
    std::fs::create_dir(&data).unwrap();
    let trace = trace_of(&data, &[kv, data.to_str().unwrap(), "load", "9", "--variant", variant]);
    let check = format!("{} {kv} {{dir}} recover --variant {variant}", python());
    let found = explore_trace(&trace, options(check, &tmp.join("scratch"), 120));
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
        trace.ops.iter().filter(|o| matches!(o, powercut::blackbox::TraceOp::Ack { .. })).count();
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
    assert!(trace.ops.iter().any(|o| matches!(o, powercut::blackbox::TraceOp::SyncFailed { .. })));
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
        let ids: Vec<String> =
            states.iter().map(|c| explore::state_id(&replayed, c.point, &c.crash)).collect();
        for (c, id) in states.iter().zip(&ids) {
            let (point, crash) = explore::find_state(&replayed, id).unwrap();
            assert_eq!((point, &crash), (c.point, &c.crash), "{id} reads back as itself");
        }
        assert!(ids.iter().any(|id| id.contains(":kill-")), "process crashes are among them");
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

/// SQLite in WAL mode with synchronous=FULL, and in rollback mode with EXTRA, promises a commit
/// durable once it returns: any failure there is powercut's bug. Rollback mode with FULL commits
/// by unlinking the journal without syncing the directory, which SQLite documents (EXTRA exists
/// to add that sync): the only failures there must be a lost unlink rolling a commit back.
#[test]
fn sqlite_durable_settings_survive_every_crash_state_and_full_rollback_loses_the_unlink() {
    let script = examples().join("sqlite_kv.py");
    let script = script.to_str().unwrap();
    for (journal, sync, budget) in
        [("wal", "full", 60), ("delete", "extra", 60), ("delete", "full", 400)]
    {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let trace = trace_of(&data, &[script, data.to_str().unwrap(), "load", "3", journal, sync]);
        let check = format!("{} {script} {{dir}} check", python());
        let found = explore_trace(&trace, options(check, &tmp.path().join("scratch"), budget));
        assert!(found.checked >= 40, "{journal}/{sync}: only {} states", found.checked);
        if sync != "full" || journal == "wal" {
            assert!(found.failures.is_empty(), "{journal}/{sync}: {:?}", found.failures.first());
            continue;
        }
        assert!(!found.failures.is_empty(), "rollback/FULL: the lost journal unlink was not found");
        for f in &found.failures {
            assert_eq!(f.verdict.class, "durability", "{f:?}");
            assert!(f.dropped.iter().any(|d| d.contains("remove kv.db-journal: lost")), "{f:?}");
        }
    }
}

/// A traced program rewrites a durable file in place (`open(..., 'w')`: O_TRUNC) and closes it
/// without an fsync: what the file can hold after a power cut once the program is done.
fn truncate_rewrite_states(profile: faultfs::Profile) -> std::collections::BTreeSet<usize> {
    let tmp = tempfile::tempdir().unwrap();
    let code = "import os, sys\n\
                p = os.path.join(sys.argv[1], 'cfg')\n\
                with open(p, 'w') as f:\n    f.write('o' * 8192); f.flush(); os.fsync(f.fileno())\n\
                d = os.open(sys.argv[1], os.O_RDONLY); os.fsync(d); os.close(d)\n\
                print('ACK 1', flush=True)\n\
                with open(p, 'w') as f:\n    f.write('n' * 100)\n";
    let trace = trace_of(tmp.path(), &["-c", code, tmp.path().to_str().unwrap()]);
    let replayed = explore::replay(&trace, &profile, 7).unwrap();
    let (last, _, _) = replayed.points.last().unwrap();
    let mut lengths = std::collections::BTreeSet::new();
    last.power_cut_space().explore(4096, |_, image| {
        lengths.insert(image.contents("cfg").map_or(usize::MAX, |c| c.len()));
    });
    lengths
}

#[test]
fn a_traced_close_after_a_truncating_rewrite_flushes_it_under_ext4_ordered() {
    // ext4 data=ordered (auto_da_alloc): the close flushes the new data, so the old contents or
    // the new, never an empty file. The paranoid profile can find it empty.
    assert_eq!(
        truncate_rewrite_states(faultfs::Profile::ext4_ordered()),
        [100, 8192].into(),
        "old or new"
    );
    assert!(truncate_rewrite_states(faultfs::Profile::posix()).contains(&0));
}

/// The store keeps its segments in a subdirectory it creates. Syncing the segments and their
/// directory is not enough: the new directory's own entry is in its parent.
#[test]
fn a_new_subdirectory_is_lost_unless_its_parent_is_synced() {
    let (trace, correct) = explore_kv("subdir");
    assert!(
        trace.ops.iter().any(|o| matches!(o, powercut::blackbox::TraceOp::Mkdir { .. })),
        "the mkdir is traced"
    );
    assert!(correct.checked >= 60, "only {} states checked", correct.checked);
    assert!(correct.failures.is_empty(), "false positives: {:?}", correct.failures.first());
    let (_, found) = explore_kv("subdir-no-parent-fsync");
    assert!(classes(&found).contains(&"durability"), "found {:?}", classes(&found));
    let (shrunk, _) = found.shrunk.as_ref().expect("the first failure is shrunk");
    assert!(
        shrunk.dropped.iter().any(|d| d.contains("mkdir segs")),
        "the failure is the lost mkdir: {:?}",
        shrunk.dropped
    );
}

/// git through `examples/blackbox/git/`: `git init`, then `commits` commits, each acknowledged
/// with its hash, under `core.fsync=<mode>`; explored under `profile`.
fn explore_git(
    mode: &str,
    profile: faultfs::Profile,
    commits: u32,
    budget: usize,
) -> explore::Exploration {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = examples().join("git");
    let driver = git.join("driver.sh").display().to_string();
    let command = vec![
        "sh".to_string(),
        driver,
        repo.display().to_string(),
        commits.to_string(),
        mode.to_string(),
    ];
    let recording = Recording {
        dir: repo.clone(),
        command,
        ack: "^ACK ".into(),
        fail_sync: None,
        quiet: Some(repo.with_extension("stderr")),
        cwd: None,
        timeout: None,
    };
    let trace =
        record(&recording).unwrap_or_else(|e| panic!("{e} (are strace and git installed?)"));
    assert_eq!(trace.header.exit_code, Some(0));
    let acks = trace.ops.iter().filter(|o| matches!(o, powercut::blackbox::TraceOp::Ack { .. }));
    assert_eq!(acks.count(), commits as usize);
    let check = format!("sh {} {{dir}}", git.join("check.sh").display());
    let mut o = options(check, &tmp.path().join("scratch"), budget);
    o.profile = profile;
    explore_trace(&trace, o)
}

fn stderr_has(x: &explore::Exploration, text: &str) -> bool {
    x.failures.iter().any(|f| f.run.stderr.contains(text))
}

/// git never fsyncs a directory. With `core.fsync=all` it fsyncs a new ref's lock file, then
/// renames it into place and returns: under `posix` the rename can be lost, and with it the
/// acknowledged commit. With `core.fsync=none` even the objects can come back empty, which
/// `core.fsync=all` prevents. A process crash (the page cache survives) loses nothing either way.
#[test]
fn git_keeps_acknowledged_commits_only_as_far_as_its_fsyncs_reach() {
    let all = explore_git("all", faultfs::Profile::posix(), 2, 200);
    assert!(all.checked >= 100, "only {} states checked", all.checked);
    // Every lost commit lost an entry on the way to it: the ref's rename, or a directory that
    // `git init` made and never synced the parent of.
    let on_the_way = [
        "rename .git/refs/heads/main.lock -> .git/refs/heads/main: lost",
        "mkdir .git: lost",
        "mkdir .git/refs: lost",
        "mkdir .git/refs/heads: lost",
    ];
    let lost: Vec<_> = all.failures.iter().filter(|f| f.verdict.class == "durability").collect();
    assert!(!lost.is_empty(), "git with core.fsync=all loses commits under posix");
    for f in &lost {
        assert!(
            f.dropped.iter().any(|d| on_the_way.iter().any(|w| d.ends_with(w))),
            "{}: {:?}",
            f.id,
            f.dropped
        );
    }
    assert!(lost.iter().any(|f| f.dropped.iter().any(|d| d.ends_with(on_the_way[0]))));
    let none = explore_git("none", faultfs::Profile::ext4_ordered(), 2, 400);
    let all_ext4 = explore_git("all", faultfs::Profile::ext4_ordered(), 2, 400);
    let broken_object = |x: &explore::Exploration| {
        stderr_has(x, "is empty") || stderr_has(x, "inflate: data stream error")
    };
    assert!(broken_object(&none), "unsynced objects come back empty or garbage");
    assert!(!broken_object(&all_ext4), "fsynced objects never do");
    for x in [&all, &none, &all_ext4] {
        assert!(
            x.failures.iter().all(|f| !f.id.contains("kill")),
            "a process crash loses nothing: {:?}",
            x.failures.iter().find(|f| f.id.contains("kill"))
        );
    }
}

/// Every distinct failure is reported: a program with two bugs shows both, each shrunk to its
/// cause; a program with one shows one, however many segments it lost the same way.
#[test]
fn every_distinct_failure_is_a_group_with_its_shrunk_cause() {
    let (_, one) = explore_kv("no-dir-fsync");
    assert_eq!(
        one.groups.len(),
        1,
        "{:?}",
        one.groups.iter().map(|g| &g.signature).collect::<Vec<_>>()
    );
    assert_eq!(one.groups[0].failures.len(), one.failures.len());
    let (_, two) = explore_kv("two-bugs");
    let classes: std::collections::BTreeSet<&str> =
        two.groups.iter().map(|g| g.signature.class).collect();
    assert_eq!(classes, ["durability", "validity"].into(), "both bugs are reported");
    let grouped: usize = two.groups.iter().map(|g| g.failures.len()).sum();
    assert_eq!(grouped, two.failures.len(), "every failure is in one group");
    for g in &two.groups {
        let (rep, _) = g.shrunk.as_ref().expect("each group is shrunk");
        assert_eq!(rep.verdict.class, g.signature.class, "shrinking kept the class");
        let cause = match g.signature.class {
            "durability" => "create seg-",
            _ => "seg-",
        };
        assert!(rep.dropped.iter().any(|d| d.contains(cause)), "{:?}", rep.dropped);
    }
    let durability = two.groups.iter().find(|g| g.signature.class == "durability").unwrap();
    let (rep, _) = durability.shrunk.as_ref().unwrap();
    assert!(
        rep.dropped.iter().all(|d| d.starts_with("directory:")),
        "the lost segment's create alone: {:?}",
        rep.dropped
    );
}

/// A check server judges the same states the same way as a process per state: the correct store
/// passes, a mistake is found with the same failures; and a server that breaks the protocol
/// fails every state it answered wrong instead of passing it.
#[test]
fn a_check_server_judges_like_a_process_per_state() {
    let tmp = tempfile::tempdir().unwrap();
    let kv = examples().join("kvstore.py");
    let kv = kv.to_str().unwrap();
    for variant in ["correct", "two-bugs"] {
        let (trace, per_process) = kv_per_process(tmp.path(), variant);
        let mut o = options(String::new(), &tmp.path().join("scratch"), 120);
        o.check = explore::Check::Server(format!("{} {kv} --serve --variant {variant}", python()));
        let served = explore_trace(&trace, o);
        assert_eq!(served.checked, per_process.checked);
        let ids = |x: &explore::Exploration| {
            x.failures.iter().map(|f| (f.id.clone(), f.verdict.class)).collect::<Vec<_>>()
        };
        assert_eq!(ids(&served), ids(&per_process), "{variant}");
        assert_eq!(served.failures.is_empty(), variant == "correct", "{variant}");
    }
    // A server answering with nothing judged is not a pass.
    let data = tmp.path().join("data-liar");
    std::fs::create_dir(&data).unwrap();
    let trace = trace_of(&data, &[kv, data.to_str().unwrap(), "load", "3"]);
    let mut o = options(String::new(), &tmp.path().join("scratch"), 40);
    o.check = explore::Check::Server("while read d; do echo '{}'; done".into());
    let replayed = explore::replay(&trace, &o.profile, o.seed).unwrap();
    let e = explore::explore(&trace, &replayed, &o, &|_, _| {}).unwrap_err();
    assert!(e.contains("the check server's answer"), "{e}");
}

/// Bugs that need the program to carry on after recovery: appending after a torn tail, and a bad
/// segment hiding every later one. Generation 1 alone passes both (recovery alone is right);
/// generation 2, the workload run again on recovered states and explored, finds both. The
/// correct store passes two generations.
#[test]
fn a_second_generation_finds_what_one_recovery_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let kv = examples().join("kvstore.py");
    let kv = kv.to_str().unwrap();
    for variant in ["correct", "append-after-torn-tail", "bad-segment-hides-later"] {
        let data = tmp.path().join(format!("data-{variant}"));
        std::fs::create_dir(&data).unwrap();
        let trace =
            trace_of(&data, &[kv, data.to_str().unwrap(), "load", "9", "--variant", variant]);
        let mut o = options(String::new(), &tmp.path().join("scratch"), 160);
        o.check = explore::Check::Server(format!("{} {kv} --serve --variant {variant}", python()));
        let replayed = explore::replay(&trace, &o.profile, o.seed).unwrap();
        let first = explore::explore(&trace, &replayed, &o, &|_, _| {}).unwrap();
        assert!(first.failures.is_empty(), "{variant}: generation 1 passes: {:?}", first.failures);
        let rerun = generations::Rerun::of(&trace.header, None).unwrap();
        let later = generations::explore_later((&replayed, &first), &o, &rerun, 2, 4).unwrap();
        assert_eq!(later.len(), 4, "{variant}: four states started generation 2");
        assert!(later.iter().all(|r| r.generation == 2 && r.from.len() == 1));
        assert!(later.iter().all(|r| r.failed_run.is_none()), "{variant}: the workload ran");
        let failures: Vec<&explore::Failure> =
            later.iter().flat_map(|r| r.exploration.as_ref().unwrap().failures.iter()).collect();
        let judged: usize = later.iter().map(|r| r.exploration.as_ref().unwrap().checked).sum();
        assert!(judged >= 100, "{variant}: only {judged} generation-2 states judged");
        if variant == "correct" {
            assert!(failures.is_empty(), "false positives: {:?}", failures.first());
        } else {
            assert!(
                failures.iter().any(|f| f.verdict.class == "durability"),
                "{variant}: generation 2 loses acknowledged writes: {:?}",
                failures.iter().map(|f| f.verdict.class).collect::<Vec<_>>()
            );
        }
    }
}

/// The Rust check-server example (`powercut/examples/kvstore_check.rs`, built by `cargo test`)
/// reads the Python store's format: served from Rust, the correct store passes and
/// `no-dir-fsync` fails on the same states as with the Python check run per state.
#[test]
fn the_rust_check_server_example_judges_like_the_python_check() {
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/kvstore_check");
    assert!(example.exists(), "{} not built (cargo test builds examples)", example.display());
    let tmp = tempfile::tempdir().unwrap();
    for variant in ["correct", "no-dir-fsync"] {
        let (trace, python) = kv_per_process(tmp.path(), variant);
        let mut o = options(String::new(), &tmp.path().join("scratch"), 120);
        o.check = explore::Check::Server(format!("{} --serve", example.display()));
        let rust = explore_trace(&trace, o);
        let ids =
            |x: &explore::Exploration| x.failures.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&rust), ids(&python), "{variant}");
        assert_eq!(rust.failures.is_empty(), variant == "correct", "{variant}");
    }
}
