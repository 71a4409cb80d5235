//! A user's engine, as a user has it: `examples/walsnap`, a crate outside this workspace with
//! its own engine (a write-ahead log plus snapshots published by rename), built here with cargo
//! against this checkout by path.
//! - Without features it links the seam alone: at most 15 crates in its graph.
//! - Its `cargo test` runs the embedded default suite through `Check`, and its planted bug fails
//!   with the shrunk case and a command that replays it — which is run, and replays it.
//! - Its own command line (`powercut::cli::main::<walsnap::Subject>()`): run, replay, shrink,
//!   `--junit`, and `--partition` + `merge` to the digest of one run.
//!
//! The crate is built in its own target directory (`target/external`): the cargo running this
//! test holds the workspace's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/walsnap")
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/external")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `program args...` in `dir`, with the external target directory and no inherited overrides.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).env("CARGO_TARGET_DIR", target_dir());
    for var in ["POWERCUT_SEEDS", "POWERCUT_SEED", "POWERCUT_JOBS", "POWERCUT_CASE"] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn cargo(args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_in(&crate_dir(), &cargo, args)
}

/// The line after `marker`'s line, trimmed.
fn line_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let mut lines = text.lines().skip_while(|l| !l.contains(marker));
    lines.next();
    lines.next().unwrap_or_else(|| panic!("no line after {marker:?} in:\n{text}")).trim()
}

#[test]
fn an_engine_outside_the_workspace_gets_the_builder_and_its_own_command_line() {
    // The seam alone: the engine's normal dependencies without features.
    let tree = cargo(&["tree", "--locked", "-e", "normal", "--prefix", "none"]);
    assert!(tree.status.success(), "{}", text(&tree));
    let mut crates: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    crates.sort();
    crates.dedup();
    assert!(crates.len() <= 15, "{} crates: {crates:?}", crates.len());
    assert!(crates.contains(&"powercut-vfs".to_string()), "{crates:?}");
    for simulator in ["faultfs", "powercut", "engine", "rand", "serde"] {
        assert!(!crates.contains(&simulator.to_string()), "{simulator} in {crates:?}");
    }

    // Its crash tests: the default suite passes; the planted bug fails, shrunk and replayable.
    let tests = cargo(&[
        "test",
        "--locked",
        "--features",
        "powercut",
        "--",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    let out = text(&tests);
    assert!(tests.status.success(), "{out}");
    assert!(out.contains("PASS walsnap:"), "{out}");
    assert!(
        out.contains("skipped atomic-batch-posix: subject walsnap has no write_batch"),
        "{out}"
    );
    assert!(out.contains("FAIL walsnap on scenario o_sync-posix") && out.contains("shrunk to"));
    let violation = out.lines().find(|l| l.trim_start().starts_with("VIOLATION")).unwrap().trim();
    let command = line_after(&out, "replay it:");
    assert!(
        command.starts_with("POWERCUT_CASE='o_sync-posix --seed ")
            && command.contains("cargo test --features powercut -- the_planted_bug_is_caught"),
        "{command}"
    );
    let replayed = run_in(&crate_dir(), "sh", &["-c", command]);
    let again = text(&replayed);
    assert!(replayed.status.success(), "{again}");
    assert!(again.contains("the replay:") && again.contains(violation), "{violation}\n{again}");

    // Its own command line.
    let build = cargo(&["build", "--locked", "--features", "powercut"]);
    assert!(build.status.success(), "{}", text(&build));
    let bin = target_dir().join("debug/walsnap-powercut");
    let bin = bin.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| run_in(work.path(), bin, args);
    let bug = ["--bug", "publish-without-sync"];
    let clean = cli(&["run", "o_sync-posix", "--seeds", "0..20"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    let failing =
        cli(&[&["run", "o_sync-posix", "--seeds", "0..20", "--junit", "j.xml"][..], &bug].concat());
    let out = text(&failing);
    assert_eq!(failing.status.code(), Some(1), "{out}");
    let repro = out.lines().find_map(|l| l.trim().strip_prefix("reproduce: ")).unwrap();
    assert!(repro.starts_with("walsnap-powercut replay o_sync-posix --seed "), "{repro}");
    assert!(repro.ends_with("--bug publish-without-sync"), "{repro}");
    let args: Vec<&str> = repro.split(' ').skip(1).collect();
    let replay = cli(&args);
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    assert!(text(&replay).contains("VIOLATION") && text(&replay).contains("subject walsnap"));
    let junit = std::fs::read_to_string(work.path().join("j.xml")).unwrap();
    assert!(junit.contains("failures=\"1\"") && junit.contains("powercut.walsnap.o_sync-posix"));
    let seed = args[args.iter().position(|a| *a == "--seed").unwrap() + 1];
    let shrunk = cli(&[&["shrink", "o_sync-posix", "--seed", seed][..], &bug].concat());
    let out = text(&shrunk);
    assert_eq!(shrunk.status.code(), Some(1), "{out}");
    let shrunk_replay = line_after(&out, "replay it:");
    let args: Vec<&str> = shrunk_replay.split(' ').skip(1).collect();
    let again = cli(&args);
    assert_eq!(again.status.code(), Some(1), "{shrunk_replay}: {}", text(&again));

    // Shards merge to the digest of one run.
    let digest = |o: &Output| {
        let t = text(o);
        t.lines().find_map(|l| l.strip_prefix("digest ").map(str::to_string)).unwrap()
    };
    let whole =
        cli(&[&["run", "o_sync-posix", "--seeds", "0..20", "--no-shrink", "--quiet"][..], &bug]
            .concat());
    for k in ["1/2", "2/2"] {
        let json = format!("part-{}.json", &k[..1]);
        let part = cli(&[
            &["run", "o_sync-posix", "--seeds", "0..20", "--no-shrink", "--quiet"][..],
            &bug,
            &["--partition", k, "--json", &json],
        ]
        .concat());
        assert_eq!(part.status.code(), Some(1), "{}", text(&part));
    }
    let merged = cli(&["merge", "part-1.json", "part-2.json"]);
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    assert_eq!(digest(&merged), digest(&whole));
}
