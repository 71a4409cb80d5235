//! Scenario files are strict at every level: an unknown field anywhere — nested ones and the
//! built-in subject's section included — is an error naming the file and the field. And every
//! field a scenario can hold is documented in docs/scenarios.md.

use crate::*;
use powercut::bitcask::{Bitcask, BitcaskSpec};
use powercut::scenario::Scenario;
use powercut::subject::config_for;
use serde_json::Value;

/// The path of every object in `v` (`[]` is the root).
fn objects(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = v {
        out.push(path.clone());
        for (k, child) in map {
            let mut p = path.clone();
            p.push(k.clone());
            objects(child, p, out);
        }
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| &mut v[k.as_str()])
}

/// Each default scenario, with its profile also spelled as an object (to reach its overrides).
fn documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for (stem, text) in powercut::scenarios::FILES.iter().chain(powercut::scenarios::EXTRA) {
        let doc: Value = serde_json::from_str(text).unwrap();
        let mut object = doc.clone();
        let base = object["faults"]["profile"].clone();
        if base.is_string() {
            object["faults"]["profile"] = serde_json::json!({"base": base, "sector_bytes": 512});
        }
        docs.push((stem.to_string(), doc));
        docs.push((format!("{stem}-profile-object"), object));
    }
    docs
}

#[test]
fn an_unknown_field_at_any_level_is_an_error_naming_the_file_and_the_field() {
    let mut checked = 0;
    for (name, doc) in documents() {
        Scenario::parse(&doc.to_string(), &name).unwrap();
        let mut paths = Vec::new();
        objects(&doc, Vec::new(), &mut paths);
        // The keys of `subject` are subject names, not fields: a section for another subject is
        // that subject's (a run says when the one under test has none).
        for path in paths.into_iter().filter(|p| p.len() != 1 || p[0] != "subject") {
            let mut bad = doc.clone();
            at(&mut bad, &path)["zzz_unknown"] = Value::from(1);
            let origin = format!("{name}.json");
            let err = match Scenario::parse(&bad.to_string(), &origin) {
                Err(e) => e,
                // A subject's section is the subject's to read: the built-in one rejects it.
                Ok(s) if path.first().is_some_and(|p| p == "subject") => {
                    let e = config_for::<Bitcask>(&s, &BitcaskSpec::default(), &[]).unwrap_err();
                    format!("{origin}: {e}")
                }
                Ok(_) => panic!("{name}: zzz_unknown accepted at {path:?}"),
            };
            assert!(err.contains("zzz_unknown") && err.contains(&origin), "{path:?}: {err}");
            let inner = path.last().filter(|p| *p != "bitcask");
            assert!(inner.is_none_or(|p| err.contains(p.as_str())), "{path:?}: {err}");
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
}

#[test]
fn a_field_its_strategy_kind_does_not_take_is_an_error() {
    let mut s = scenario("o_sync-posix");
    s.subject
        .insert("bitcask".into(), serde_json::json!({"strategy": {"kind": "o_sync", "ms": 5}}));
    let err = config_for::<Bitcask>(&s, &BitcaskSpec::default(), &[]).unwrap_err();
    assert!(err.contains("`ms`") && err.contains("field subject.bitcask.strategy"), "{err}");
}

#[test]
fn every_scenario_field_is_documented() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md"),
    )
    .unwrap();
    let mut keys = std::collections::BTreeSet::new();
    for (_, value) in documents() {
        // Parsed and written back, a scenario spells every field, defaults included.
        let s = Scenario::parse(&value.to_string(), "x").unwrap();
        let mut full: Value = serde_json::from_str(&s.to_json()).unwrap();
        full["workload"]["batch_ops"] = serde_json::json!({"min": 2, "max": 8});
        full["workload"]["mix"]["batch"] = Value::from(1);
        let spec =
            serde_json::to_value(config_for::<Bitcask>(&s, &BitcaskSpec::default(), &[]).unwrap());
        full["subject"] = serde_json::json!({ "bitcask": spec.unwrap() });
        let mut paths = Vec::new();
        objects(&full, Vec::new(), &mut paths);
        for p in paths {
            if let Value::Object(map) = at(&mut full, &p) {
                keys.extend(map.keys().cloned());
            }
        }
    }
    let missing: Vec<&String> = keys.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/scenarios.md does not document {missing:?}");
    assert!(keys.len() > 30, "{keys:?}");
}

#[test]
fn generations_out_of_range_are_errors_naming_the_field() {
    let text = include_str!("../../scenarios/generations.json");
    for (field, value, says) in [
        ("generations", 0, "1 to 8"),
        ("generations", 9, "1 to 8"),
        ("generation_writes", 10_001, "at most 10000"),
    ] {
        let mut v: Value = serde_json::from_str(text).unwrap();
        v["faults"][field] = value.into();
        let e = Scenario::parse(&v.to_string(), "g.json").unwrap_err();
        assert!(e.contains(&format!("faults.{field}")) && e.contains(says), "{e}");
    }
    assert_eq!(Scenario::parse(text, "g.json").unwrap().faults.generation_writes, 20);
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["faults"]["after_recovery_writes"] = 3.into();
    let e = Scenario::parse(&v.to_string(), "g.json").unwrap_err();
    assert!(e.contains("faults.generations") && e.contains("after_recovery_writes"), "{e}");
    let mut v: Value =
        serde_json::from_str(include_str!("../../scenarios/merge-heavy.json")).unwrap();
    v["faults"]["points_per_seed"] = 4.into();
    let e = Scenario::parse(&v.to_string(), "m.json").unwrap_err();
    assert!(
        e.contains("faults.points_per_seed") && e.contains("only with crash_points random"),
        "{e}"
    );
}
