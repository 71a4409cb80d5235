//! The `powercut` binary: exit codes, error messages that name the file and field, JSON results,
//! and nothing written on bad input.

use crate::*;
use std::process::{Command, Output};

fn powercut(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_powercut")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Six seeds of o_sync-posix with `no-fsync` on (they fail), unshrunk, failures into `failures`.
fn failing_run(failures: &str) -> Output {
    powercut(&[
        "run",
        "o_sync-posix",
        "--seeds",
        "0..6",
        "--bug",
        "no-fsync",
        "--no-shrink",
        "--failures",
        failures,
    ])
}

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn bad_input_exits_2_naming_the_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json").display().to_string();
    let good = std::fs::read_to_string(scenario_path("o_sync-posix")).unwrap();
    let cases = [
        (write(&dir, "broken.json", "{\"name\": "), vec!["broken.json", "line 1"]),
        (
            write(&dir, "unknown.json", &good.replacen("\"seeds\"", "\"seedz\": 1, \"seeds\"", 1)),
            vec!["unknown.json", "seedz"],
        ),
        (
            write(&dir, "profile.json", &good.replace("\"posix\"", "\"ext5\"")),
            vec!["profile.json", "ext5", "ext4-ordered"],
        ),
        (
            write(&dir, "ops.json", &good.replace("\"ops\": 200", "\"ops\": 0")),
            vec!["ops.json", "workload.ops"],
        ),
    ];
    for (path, needles) in cases {
        let o = powercut(&["run", &path, "--json", &json]);
        assert_eq!(o.status.code(), Some(2), "{path}: {}", text(&o));
        for n in needles {
            assert!(text(&o).contains(n), "{path}: missing {n:?} in {}", text(&o));
        }
    }
    let scenario = scenario_path("o_sync-posix").display().to_string();
    let o = powercut(&["run", &scenario, "--seeds", "5..3", "--json", &json]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--seeds \"5..3\""), "{}", text(&o));
    let o = powercut(&["run", &scenario, "--engine-bug", "no-such-bug", "--json", &json]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no-such-bug") && text(&o).contains("hint-in-place"), "{}", text(&o));
    let o = powercut(&["run", "/no/such/file.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/no/such/file.json"), "{}", text(&o));
    assert!(!std::path::Path::new(&json).exists(), "bad input must write nothing");
}

#[test]
fn a_clean_run_exits_0_and_writes_the_json_fields() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let scenario = scenario_path("o_sync-posix").display().to_string();
    let o =
        powercut(&["run", &scenario, "--seeds", "0..10", "--json", &json.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(doc["digest"].as_str().is_some_and(|d| d.len() == 16));
    let s = &doc["scenarios"][0];
    assert_eq!(s["name"], "o_sync-posix");
    assert_eq!(s["seeds_run"], 10);
    assert_eq!(s["violations_total"], 0);
    for field in [
        "crash_states_checked",
        "distinct_crash_states",
        "violations_by_class",
        "failing_seeds",
        "scenarios_per_sec",
    ] {
        assert!(!s[field].is_null(), "missing {field}");
    }
    // Every sampled power-cut state is counted under the shape it was drawn as.
    let shapes = s["sampled_state_shapes"].as_object().unwrap();
    let names: Vec<&str> = shapes.keys().map(String::as_str).collect();
    assert_eq!(names, ["durable", "independent", "prefix", "size_only"]);
    let counted: u64 = shapes.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(Some(counted), s["crash_states_checked"].as_u64(), "o_sync-posix only power cuts");
    assert!(shapes.values().all(|n| n.as_u64().unwrap() > 0), "{shapes:?}");
}

#[test]
fn a_violation_exits_1_with_a_repro_command_that_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().display().to_string();
    let scenario = scenario_path("o_sync-posix").display().to_string();
    let o = powercut(&[
        "run",
        &scenario,
        "--seeds",
        "0..20",
        "--engine-bug",
        "no-fsync",
        "--failures",
        &failures,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let fail = out.lines().find(|l| l.starts_with("FAIL ")).unwrap();
    let class = fail.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    let repro =
        out.lines().find_map(|l| l.trim_start().strip_prefix("reproduce: powercut ")).unwrap();
    assert!(repro.contains("--bug no-fsync") && repro.contains("--crash-at "), "{repro}");
    let args: Vec<&str> = repro.split(' ').collect();
    let replayed = powercut(&args);
    assert_eq!(replayed.status.code(), Some(1), "{}", text(&replayed));
    assert!(text(&replayed).contains(&format!("VIOLATION {class}")), "{}", text(&replayed));
    assert!(out.contains("shrunk ("), "the first failure is shrunk: {out}");
}

#[test]
fn partitions_are_disjoint_cover_the_run_and_merge_to_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_path("o_sync-posix").display().to_string();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let args = [
        "run",
        &scenario,
        "--seeds",
        "0..24",
        "--engine-bug",
        "no-fsync",
        "--no-shrink",
        "--quiet",
    ];
    let full =
        powercut(&[&args[..], &["--json", &out("full.json"), "--failures", &out("f")]].concat());
    assert_eq!(full.status.code(), Some(1), "{}", text(&full));
    let mut seeds: Vec<u64> = Vec::new();
    for k in 1..=3 {
        let part = format!("{k}/3");
        let json = out(&format!("part{k}.json"));
        let o = powercut(
            &[&args[..], &["--partition", &part, "--json", &json, "--failures", &out("f")]]
                .concat(),
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        for s in doc["scenarios"][0]["seed_outcomes"].as_array().unwrap() {
            seeds.push(s["seed"].as_u64().unwrap());
        }
    }
    seeds.sort_unstable();
    assert_eq!(seeds, (0..24).collect::<Vec<u64>>(), "disjoint, and together the whole run");
    let merged = powercut(&[
        "merge",
        &out("part1.json"),
        &out("part2.json"),
        &out("part3.json"),
        "--json",
        &out("merged.json"),
    ]);
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let digest = |p: &str| -> String {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        doc["digest"].as_str().unwrap().to_string()
    };
    assert_eq!(digest(&out("merged.json")), digest(&out("full.json")));
    let twice = powercut(&["merge", &out("part1.json"), &out("part1.json")]);
    assert_eq!(twice.status.code(), Some(2), "a share in two results is bad input");
    assert!(text(&twice).contains("both share 1/3"), "{}", text(&twice));
    let bad = powercut(&["run", &scenario, "--partition", "4/3"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn junit_is_xml_a_ci_system_shows_failures_in() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let failures = dir.path().join("failures");
    let a = scenario_path("o_sync-posix").display().to_string();
    let b = scenario_path("kill-9").display().to_string();
    let o = powercut(&[
        "run",
        &a,
        &b,
        "--seeds",
        "0..10",
        "--engine-bug",
        "no-fsync",
        "--no-shrink",
        "--quiet",
        "--junit",
        &junit.display().to_string(),
        "--failures",
        &failures.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    let failed: Vec<_> =
        cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).collect();
    assert_eq!(failed.len(), 1, "o_sync-posix fails with no-fsync; kill -9 cannot tell");
    let failure = failed[0].children().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(
        ["durability", "ordering", "resurrection"].contains(&failure.attribute("type").unwrap())
    );
    assert!(failure.text().unwrap().contains("reproduce: powercut replay"));
    let suites = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(suites.attribute("failures"), Some("1"));
    assert_eq!(suites.attribute("name"), Some("powercut.bitcask"), "the suite names the subject");
    assert_eq!(failed[0].attribute("classname"), Some("powercut.bitcask.o_sync-posix"));
    // One JSON per failing seed in the failures directory.
    assert!(std::fs::read_dir(&failures).unwrap().count() >= 1);
}

#[test]
fn list_check_determinism_and_help_work() {
    let o = powercut(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    for bug in engine::BUGS.map(|(b, _)| b) {
        assert!(text(&o).contains(bug), "{bug}");
    }
    assert!(text(&o).contains("ext4-ordered") && text(&o).contains("throughput-1k"));
    let scenario = scenario_path("interval-posix").display().to_string();
    let o = powercut(&["run", &scenario, "--seeds", "0..8", "--check-determinism", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("NONDETERMINISTIC"));
    let o = powercut(&["replay", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("--crash-at"));
}

/// Black-box commands on bad input: a missing or malformed trace, a bad profile or promise, a
/// directory that is not there, a state id that does not exist, and --into a directory that is
/// not empty: exit 2, the file/field/value named, nothing written.
#[test]
fn trace_and_explore_refuse_bad_input_naming_it() {
    // (A failed run is refused too; with --allow-failed-run it is explored: see below.)
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"powercut_trace":1,"dir":"/d","command":["x"],"ack":"^ACK ","exit_code":0}"#;
    let good = write(
        &dir,
        "good.trace",
        &format!(
            "{header}\n{}\n",
            r#"{"op":"open","file":0,"name":"f","create":true,"excl":false,"truncate":false,"sync":"none"}"#
        ),
    );
    let bad_op = write(
        &dir,
        "bad.trace",
        &format!("{header}\n{}\n", r#"{"op":"write","file":0,"offset":0,"data":"zz"}"#),
    );
    let failed_header = header.replace(r#""exit_code":0"#, r#""exit_code":3"#);
    let failed = write(&dir, "failed.trace", &format!("{failed_header}\n"));
    let killed_header = header.replace(r#""exit_code":0"#, r#""exit_code":null"#);
    let killed = write(&dir, "killed.trace", &format!("{killed_header}\n"));
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"mine").unwrap();
    let full = full.display().to_string();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["explore", "nope.trace", "--check", "true"], vec!["nope.trace"]),
        (vec!["explore", &bad_op, "--check", "true"], vec!["bad.trace:2", "hex"]),
        (vec!["explore", &good, "--check", "true", "--profile", "ext5"], vec!["--profile", "ext5"]),
        (
            vec!["explore", &good, "--check", "true", "--promise", "maybe"],
            vec!["--promise", "maybe"],
        ),
        (
            vec!["explore", &good, "--materialize", "99:/", "--into", "/tmp/powercut-never"],
            vec!["99:/", "no crash point"],
        ),
        (
            vec!["explore", &good, "--materialize", "1:/", "--into", &full],
            vec!["--into", "not empty"],
        ),
        (vec!["trace", "--dir", "/no/such/dir", "--", "true"], vec!["--dir", "/no/such/dir"]),
        (
            vec!["explore", &failed, "--check", "true"],
            vec!["failed.trace", "exited with code 3", "--allow-failed-run"],
        ),
        (vec!["explore", &killed, "--check", "true"], vec!["killed by a signal"]),
    ];
    for (args, needles) in cases {
        let out = powercut(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        for n in needles {
            assert!(said.contains(n), "{args:?} should name {n:?}: {said}");
        }
    }
    assert_eq!(std::fs::read(dir.path().join("full/keep")).unwrap(), b"mine");
    assert!(!std::path::Path::new("/tmp/powercut-never").exists());
}

/// `powercut trace` then `powercut explore` as a user runs them: exit 0 and "no failures" on the
/// correct example store, exit 1 and a JSON report whose re-create command works on a buggy one.
#[test]
fn trace_then_explore_end_to_end() {
    let python = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let kv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/blackbox/kvstore.py");
    let kv = kv.to_str().unwrap();
    for (variant, code) in [("correct", 0), ("no-fsync", 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let (d, trace) = (data.to_str().unwrap(), tmp.path().join("t.trace"));
        let t = trace.to_str().unwrap();
        let out = powercut(&[
            "trace",
            "--dir",
            d,
            "--out",
            t,
            "--",
            &python,
            kv,
            d,
            "load",
            "5",
            "--variant",
            variant,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("6 acknowledgements"), "{}", text(&out));
        let json = tmp.path().join("found.json");
        let check = format!("{python} {kv} {{dir}} recover --variant {variant}");
        let args =
            ["explore", t, "--check", &check, "--budget", "60", "--json", json.to_str().unwrap()];
        let out = powercut(&args);
        assert_eq!(out.status.code(), Some(code), "{variant}: {}", text(&out));
        let found: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let failures = found["failures"].as_array().unwrap();
        if code == 0 {
            assert!(text(&out).contains("no failures") && failures.is_empty());
            continue;
        }
        let id = found["shrunk"]["failure"]["state"].as_str().unwrap();
        let into = tmp.path().join("state");
        let out = powercut(&["explore", t, "--materialize", id, "--into", into.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let recovered =
            Command::new(&python).args([kv, into.to_str().unwrap(), "recover"]).output().unwrap();
        let shrunk_stdout = found["shrunk"]["failure"]["check_stdout"].as_str().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&recovered.stdout),
            shrunk_stdout,
            "the re-created state is the one judged"
        );
    }
}

#[test]
fn the_binary_needs_no_source_tree_list_and_run_work_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_powercut")).args(args).current_dir(dir.path()).output()
    };
    let o = run(&["list"]).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for s in powercut::scenarios::default() {
        assert!(text(&o).contains(&s.name), "{} not listed: {}", s.name, text(&o));
    }
    assert!(text(&o).contains("batch-not-atomic"), "the bug switches are listed");
    let o = run(&["run", "o_sync-posix", "--seeds", "0..3"]).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["run", "no-such-scenario"]).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-such-scenario") && text(&o).contains("list"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a clean run writes nothing");
}

#[test]
fn a_failed_run_is_explored_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"powercut_trace":1,"dir":"/d","command":["x"],"ack":"^ACK ","exit_code":3}"#;
    let open = r#"{"op":"open","file":0,"name":"f","create":true,"excl":false,"truncate":false,"sync":"none"}"#;
    let trace = write(&dir, "failed.trace", &format!("{header}\n{open}\n"));
    let refused = powercut(&["explore", &trace, "--check", "true"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let allowed = powercut(&["explore", &trace, "--check", "true", "--allow-failed-run"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    assert!(text(&allowed).contains("no failures"), "{}", text(&allowed));
}

/// A mistyped or stale reproduce command is an error naming what exists, not "0 violations".
#[test]
fn replay_refuses_a_crash_point_state_or_operation_that_does_not_exist() {
    for (args, says) in [
        (vec!["--crash-at", "99999"], "has crash points 1..="),
        (vec!["--crash-at", "0"], "has crash points 1..="),
        (vec!["--crash-at", "50", "--state", "9999"], "--state must be < "),
        (vec!["--ops", "5000"], "has workload operations 0..=199"),
    ] {
        let o = powercut(
            &[&["replay", "o_sync-posix", "--seed", "0", "--bug", "no-fsync"][..], &args[..]]
                .concat(),
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    let ok =
        powercut(&["replay", "o_sync-posix", "--seed", "0", "--crash-at", "50", "--state", "3"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("1 crash states checked"), "{}", text(&ok));
}

/// Shares carry what they are; a merge with one missing, or of different runs, fails; every
/// command to reproduce a failure survives the merge.
#[test]
fn merge_refuses_a_missing_share_or_a_mixed_set_and_keeps_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let share = |k: u64, bug: &str| {
        let json = out(&format!("{bug}-{k}.json"));
        let part = format!("{k}/4");
        let o = powercut(&[
            "run",
            "o_sync-posix",
            "--seeds",
            "0..16",
            "--partition",
            &part,
            "--bug",
            bug,
            "--no-shrink",
            "--quiet",
            "--json",
            &json,
            "--failures",
            &out("f"),
        ]);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
        json
    };
    let shares: Vec<String> = (1..=4).map(|k| share(k, "no-fsync")).collect();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shares[1]).unwrap()).unwrap();
    let run = &doc["run"];
    assert_eq!(run["partition"], serde_json::json!([2, 4]));
    assert_eq!(run["bugs"], serde_json::json!(["no-fsync"]));
    assert_eq!(run["subject"], "bitcask");
    assert!(run["powercut_version"].is_string());
    assert_eq!(run["scenarios"][0]["seeds"], serde_json::json!([0, 16]));
    assert_eq!(run["scenarios"][0]["content_hash"].as_str().map(str::len), Some(16));
    let half = powercut(&["merge", &shares[0], &shares[2]]);
    assert_eq!(half.status.code(), Some(2), "{}", text(&half));
    assert!(text(&half).contains("missing shares 2/4, 4/4"), "{}", text(&half));
    let partial = powercut(&["merge", &shares[0], &shares[2], "--allow-partial"]);
    assert!(text(&partial).contains("PARTIAL"), "{}", text(&partial));
    let other = share(2, "hint-in-place");
    let mixed = powercut(&["merge", &shares[0], &other, &shares[2], &shares[3]]);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    assert!(text(&mixed).contains("bugs differ"), "{}", text(&mixed));
    let whole = powercut(
        &[
            &["merge"][..],
            &shares.iter().map(String::as_str).collect::<Vec<_>>()[..],
            &["--json", &out("merged.json")][..],
        ]
        .concat(),
    );
    // A share that failed --check-determinism fails the merge.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shares[3]).unwrap()).unwrap();
    doc["nondeterministic"] = serde_json::json!(["o_sync-posix seed 3"]);
    let flaky = out("flaky.json");
    std::fs::write(&flaky, doc.to_string()).unwrap();
    let o = powercut(&["merge", &shares[0], &shares[1], &shares[2], &flaky]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("NONDETERMINISTIC: o_sync-posix seed 3"), "{}", text(&o));
    assert_eq!(whole.status.code(), Some(1), "{}", text(&whole));
    assert!(text(&whole).contains("(merged from 4 results)"), "{}", text(&whole));
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out("merged.json")).unwrap()).unwrap();
    let failing = merged["scenarios"][0]["failing_seeds"].as_array().unwrap();
    assert!(!failing.is_empty());
    let seeds: Vec<u64> = failing.iter().map(|f| f["seed"].as_u64().unwrap()).collect();
    let mut unique = seeds.clone();
    unique.dedup();
    assert_eq!(seeds, unique, "one entry per failing seed");
    for f in failing {
        assert!(f["violations"].as_array().is_some_and(|v| !v.is_empty()), "{f}");
        assert!(f["reproduce"].as_str().is_some_and(|r| r.contains("replay")), "{f}");
        assert!(f["shrink"].as_str().is_some_and(|r| r.contains("shrink")), "{f}");
    }
}

/// `| head` closes the pipe: the command ends quietly (141, as SIGPIPE would), never a panic.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    for args in [
        vec!["list"],
        vec!["replay", "o_sync-posix", "--seed", "0"],
        vec!["run", "o_sync-posix", "--seeds", "0..4"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_powercut"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked") && !err.contains("internal error"), "{args:?}: {err}");
        assert!(matches!(o.status.code(), Some(0 | 141)), "{args:?}: {:?} {err}", o.status);
    }
}

/// Output paths are checked before the run; a place that cannot be written is exit 2 at once.
#[test]
fn an_unwritable_output_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "plain-file", "x");
    let under = format!("{file}/out.json");
    for flag in ["--json", "--junit", "--failures"] {
        let o = powercut(&["run", "o_sync-posix", "--bug", "no-fsync", flag, &under]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", text(&o));
        assert!(text(&o).contains(flag) && text(&o).contains(&under), "{flag}: {}", text(&o));
        assert!(!text(&o).contains("seeds  "), "{flag}: refused before running: {}", text(&o));
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "nothing overwritten");
}

/// A CI log (no terminal) gets heartbeat lines and a closing verdict with totals and time.
#[test]
fn a_log_gets_heartbeats_and_a_closing_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f").display().to_string();
    let o =
        powercut(&["run", "o_sync-posix", "--seeds", "0..6", "--heartbeat", "0", "--failures", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("powercut: 6/6 seeds, 0 violations"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("PASS bitcask: 1 scenarios, 6 seeds, ") && last.ends_with(" s"),
        "{last}"
    );
    assert!(last.contains("crash states, 0 violations"), "{last}");
    let o = failing_run(&f);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().last().unwrap().starts_with("FAIL bitcask: 1 scenarios, 6 seeds"), "{out}");
}

/// --failures holds this run's failures only: an earlier run's files are removed, others kept.
#[test]
fn the_failures_directory_holds_only_this_runs_failures() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::create_dir(&f).unwrap();
    std::fs::write(f.join("o_sync-posix-seed-999.json"), "{}").unwrap();
    std::fs::write(f.join("notes.txt"), "mine").unwrap();
    std::fs::write(f.join("kill-9-seed-3.json"), "{}").unwrap();
    let fs = f.display().to_string();
    let o = failing_run(&fs);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let names: Vec<String> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&"o_sync-posix-seed-999.json".to_string()), "{names:?}");
    assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
    assert!(names.contains(&"kill-9-seed-3.json".to_string()), "another scenario's: {names:?}");
    assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
    let o = powercut(&["run", "o_sync-posix", "--seeds", "0..6", "--failures", &fs]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let left: Vec<String> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(
        left,
        ["kill-9-seed-3.json", "notes.txt"],
        "a clean run leaves no failure file of its own"
    );
}

/// --jobs far above the machine's parallelism is capped, with a warning, and the run finishes.
#[test]
fn too_many_jobs_are_capped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f").display().to_string();
    let o =
        powercut(&["run", "o_sync-posix", "--seeds", "0..4", "--jobs", "100000", "--failures", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("--jobs 100000: this machine runs"), "{}", text(&o));
}

/// Shell completions and the manual page come from the same clap definitions; `--help` lists the
/// exit codes.
#[test]
fn completions_man_page_and_exit_codes_in_help() {
    let bash = powercut(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0), "{}", text(&bash));
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(script.contains("_powercut()") && script.contains("explore"), "{script}");
    let zsh = powercut(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef powercut"));
    let man = powercut(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{}", text(&man));
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH powercut 1") && page.contains("replay"), "{page}");
    let bad = powercut(&["completions", "nosh"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let help = powercut(&["--help"]);
    assert!(
        text(&help).contains("Exit codes: 0 clean, 1 a check failed, 2 bad input"),
        "{}",
        text(&help)
    );
}

/// A share that runs no seed says so, rather than passing as if it had checked something.
#[test]
fn a_share_with_no_seed_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f").display().to_string();
    let o = powercut(&[
        "run",
        "o_sync-posix",
        "--seeds",
        "0..2",
        "--partition",
        "4/4",
        "--failures",
        &f,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o)
            .contains("scenario o_sync-posix: no seed to run in this share (0..2, partition 4/4)"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("PASS bitcask: 1 scenarios, 0 seeds"), "{}", text(&o));
}
