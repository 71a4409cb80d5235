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
}

#[test]
fn a_violation_exits_1_with_a_repro_command() {
    let scenario = scenario_path("o_sync-posix").display().to_string();
    let o = powercut(&["run", &scenario, "--seeds", "0..20", "--engine-bug", "no-fsync"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("durability"), "{out}");
    let repro =
        out.lines().find(|l| l.trim_start().starts_with("reproduce: powercut run")).unwrap();
    assert!(repro.contains("--engine-bug no-fsync") && repro.contains("--seeds "), "{repro}");
}
