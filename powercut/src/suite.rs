//! Running scenarios over seed ranges, in parallel, and summarizing them.
//!
//! Seeds run in parallel (rayon); results are collected in seed order, so the summary and its
//! digest are the same whatever the thread count. Wall-clock time is measured here only for the
//! scenarios-per-second figure; it never touches a verdict.

use crate::oracle::{Class, CrashKind};
use crate::run::{Focus, LossTotals, SeedOutcome, Violation, run_seed};
use crate::scenario::Scenario;
use crate::subject::Subject;
use rayon::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;
use xxhash_rust::xxh3::Xxh3;

/// One scenario's results.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// One outcome per seed, in the order the seeds were given (seed order from [`run_scenario`]
    /// and [`merge`]).
    pub seeds: Vec<SeedOutcome>,
    /// Wall-clock seconds the seeds took (summed over the parts, for a merged result).
    pub elapsed_secs: f64,
}

impl ScenarioResult {
    /// Crash states checked, over all seeds.
    pub fn crash_states(&self) -> u64 {
        self.seeds.iter().map(|s| s.crash_states).sum()
    }

    /// Crash states with an image distinct within their seed, summed over all seeds.
    pub fn distinct_states(&self) -> u64 {
        self.seeds.iter().map(|s| s.distinct_states).sum()
    }

    /// Violations found, over all seeds.
    pub fn violations(&self) -> usize {
        self.seeds.iter().map(|s| s.violations.len()).sum()
    }

    /// Violations found per class, over all seeds (classes with none are absent).
    pub fn by_class(&self) -> BTreeMap<Class, usize> {
        let mut m = BTreeMap::new();
        for v in self.seeds.iter().flat_map(|s| &s.violations) {
            *m.entry(v.class).or_insert(0) += 1;
        }
        m
    }

    /// Crash states checked per second of wall time.
    pub fn per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 { self.crash_states() as f64 / self.elapsed_secs } else { 0.0 }
    }

    /// Sampled power-cut states by shape, summed over all seeds, by shape name.
    pub fn shapes(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for (i, shape) in faultfs::Shape::ALL.into_iter().enumerate() {
            out.insert(shape.name(), self.seeds.iter().map(|s| s.shapes[i]).sum());
        }
        out
    }

    /// Loss within the promise summed over all seeds: (power cuts, process crashes).
    pub fn loss(&self) -> (LossTotals, LossTotals) {
        let (mut p, mut k) = (LossTotals::default(), LossTotals::default());
        for s in &self.seeds {
            p.merge(&s.loss_power_cut);
            k.merge(&s.loss_kill);
        }
        (p, k)
    }

    /// Feed every verdict, in order, into a hasher.
    fn hash_into(&self, h: &mut Xxh3) {
        h.update(self.name.as_bytes());
        for s in &self.seeds {
            h.update(&s.seed.to_le_bytes());
            h.update(&s.crash_states.to_le_bytes());
            h.update(&s.distinct_states.to_le_bytes());
            h.update(&s.ops.to_le_bytes());
            for l in [&s.loss_power_cut, &s.loss_kill] {
                for n in [l.states, l.acked_lost, l.acked_lost_max, l.bytes_lost, l.reported_lost] {
                    h.update(&n.to_le_bytes());
                }
                // Hashed only when there is some, so results without any hash as they did.
                if l.unavailable > 0 {
                    h.update(b"unavailable");
                    h.update(&l.unavailable.to_le_bytes());
                }
                h.update(&l.window_max.as_nanos().to_le_bytes());
            }
            for v in &s.violations {
                h.update(v.class.name().as_bytes());
                h.update(&v.crash_op.to_le_bytes());
                h.update(&v.state.to_le_bytes());
                h.update(v.message.as_bytes());
            }
        }
    }
}

/// Run seeds `seeds` of `scenario` on subject `S`, in parallel on the current rayon pool.
pub fn run_scenario<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seeds: Range<u64>,
    on_seed: &(dyn Fn(&SeedOutcome) + Sync),
) -> ScenarioResult {
    let seeds: Vec<u64> = seeds.collect();
    run_seeds::<S>(scenario, config, &seeds, on_seed)
}

/// Run the listed seeds (a partition, say), in parallel; results in the order listed.
pub fn run_seeds<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seeds: &[u64],
    on_seed: &(dyn Fn(&SeedOutcome) + Sync),
) -> ScenarioResult {
    let start = Instant::now();
    let outcomes: Vec<SeedOutcome> = seeds
        .par_iter()
        .map(|&seed| {
            let o = run_seed::<S>(scenario, config, seed, Focus::default());
            on_seed(&o);
            o
        })
        .collect();
    ScenarioResult {
        name: scenario.name.clone(),
        seeds: outcomes,
        elapsed_secs: start.elapsed().as_secs_f64(),
    }
}

/// The summary table: one row per scenario.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "{:<30} {:>6} {:>9} {:>9} {:>6}  {:<30} {:>10}\n",
        "scenario", "seeds", "states", "distinct", "viol", "by class", "states/s"
    );
    for r in results {
        let classes: Vec<String> = r.by_class().iter().map(|(c, n)| format!("{c}:{n}")).collect();
        out.push_str(&format!(
            "{:<30} {:>6} {:>9} {:>9} {:>6}  {:<30} {:>10.0}\n",
            r.name,
            r.seeds.len(),
            r.crash_states(),
            r.distinct_states(),
            r.violations(),
            if classes.is_empty() { "-".to_string() } else { classes.join(" ") },
            r.per_sec()
        ));
    }
    for r in results {
        let (p, k) = r.loss();
        let unavailable = p.unavailable + k.unavailable;
        if unavailable > 0 {
            out.push_str(&format!(
                "{}: {unavailable} crash states unavailable: recovery refused to open, saying why, \
                 because the storage failed it (reported, not a violation)\n",
                r.name
            ));
        }
    }
    out
}

/// The digest over all verdicts of all scenarios, in order.
pub fn digest(results: &[ScenarioResult]) -> String {
    let mut h = Xxh3::new();
    for r in results {
        r.hash_into(&mut h);
    }
    format!("{:016x}", h.digest())
}

/// The `--json` document.
pub fn to_json(results: &[ScenarioResult]) -> Value {
    let scenarios: Vec<Value> = results
        .iter()
        .map(|r| {
            let by_class: BTreeMap<&str, usize> =
                r.by_class().into_iter().map(|(c, n)| (c.name(), n)).collect();
            // One entry per failing seed, its violations inside.
            let failing: Vec<Value> = r
                .seeds
                .iter()
                .filter(|s| !s.violations.is_empty())
                .map(|s| {
                    let violations: Vec<Value> = s
                        .violations
                        .iter()
                        .map(|v| {
                            json!({
                                "class": v.class.name(),
                                "crash_op": v.crash_op,
                                "crash_kind": v.crash_kind.name(),
                                "state": v.state,
                                "message": v.message,
                            })
                        })
                        .collect();
                    json!({ "seed": s.seed, "violations": violations })
                })
                .collect();
            let (p, k) = r.loss();
            let loss = |l: LossTotals| {
                json!({
                    "states": l.states,
                    "acked_lost_total": l.acked_lost,
                    "acked_lost_max": l.acked_lost_max,
                    "acked_lost_mean": if l.states > 0 { l.acked_lost as f64 / l.states as f64 } else { 0.0 },
                    "bytes_lost_total": l.bytes_lost,
                    "loss_window_max_ms": l.window_max.as_secs_f64() * 1e3,
                    "reported_lost": l.reported_lost,
                    "unavailable": l.unavailable,
                })
            };
            json!({
                "name": r.name,
                "elapsed_secs": r.elapsed_secs,
                "seed_outcomes": r.seeds.iter().map(seed_to_json).collect::<Vec<_>>(),
                "seeds_run": r.seeds.len(),
                "seeds": r.seeds.first().map(|s| json!([s.seed, r.seeds.last().map_or(s.seed, |l| l.seed)])),
                "crash_states_checked": r.crash_states(),
                "distinct_crash_states": r.distinct_states(),
                "sampled_state_shapes": r.shapes(),
                "violations_total": r.violations(),
                "violations_by_class": by_class,
                "failing_seeds": failing,
                "scenarios_per_sec": r.per_sec(),
                "loss": { "power_cut": loss(p), "kill": loss(k) },
            })
        })
        .collect();
    json!({ "digest": digest(results), "scenarios": scenarios })
}

fn loss_to_json(l: &LossTotals) -> Value {
    json!([
        l.states,
        l.acked_lost,
        l.acked_lost_max,
        l.bytes_lost,
        l.window_max.as_nanos() as u64,
        l.reported_lost,
        l.unavailable
    ])
}

fn loss_from_json(v: &Value) -> Option<LossTotals> {
    let n = |i: usize| v.get(i).and_then(Value::as_u64);
    Some(LossTotals {
        states: n(0)?,
        acked_lost: n(1)?,
        acked_lost_max: n(2)?,
        bytes_lost: n(3)?,
        window_max: std::time::Duration::from_nanos(n(4)?),
        reported_lost: n(5)?,
        // Results written before unavailability was counted have none.
        unavailable: n(6).unwrap_or(0),
    })
}

/// One seed's outcome as JSON (everything the digest and the summaries need).
pub fn seed_to_json(s: &SeedOutcome) -> Value {
    json!({
        "seed": s.seed,
        "crash_states": s.crash_states,
        "distinct_states": s.distinct_states,
        "ops": s.ops,
        "shapes": s.shapes,
        "loss_power_cut": loss_to_json(&s.loss_power_cut),
        "loss_kill": loss_to_json(&s.loss_kill),
        "violations": s.violations.iter().map(|v| json!({
            "class": v.class.name(),
            "crash_op": v.crash_op,
            "crash_kind": v.crash_kind.name(),
            "state": v.state,
            "message": v.message,
        })).collect::<Vec<_>>(),
    })
}

/// The inverse of [`seed_to_json`].
pub fn seed_from_json(v: &Value) -> Option<SeedOutcome> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut violations = Vec::new();
    for x in v.get("violations")?.as_array()? {
        let class = Class::ALL.into_iter().find(|c| Some(c.name()) == x["class"].as_str())?;
        let crash_kind = match x["crash_kind"].as_str()? {
            "kill -9" => CrashKind::Kill,
            _ => CrashKind::PowerCut,
        };
        violations.push(Violation {
            class,
            crash_op: x["crash_op"].as_u64()?,
            crash_kind,
            state: u32::try_from(x["state"].as_u64()?).ok()?,
            message: x["message"].as_str()?.to_string(),
        });
    }
    Some(SeedOutcome {
        seed: n("seed")?,
        crash_states: n("crash_states")?,
        distinct_states: n("distinct_states")?,
        ops: n("ops")?,
        shapes: {
            let a = v.get("shapes")?.as_array()?;
            let mut shapes = [0u64; 4];
            for (slot, x) in shapes.iter_mut().zip(a) {
                *slot = x.as_u64()?;
            }
            (a.len() == 4).then_some(shapes)?
        },
        loss_power_cut: loss_from_json(v.get("loss_power_cut")?)?,
        loss_kill: loss_from_json(v.get("loss_kill")?)?,
        violations,
    })
}

/// Combine the JSON results of several partitions into the results of one run: per scenario, the
/// seed outcomes of all parts in seed order. Fails on a seed present twice or a malformed file.
pub fn merge(docs: &[(String, Value)]) -> Result<Vec<ScenarioResult>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, (Vec<SeedOutcome>, f64)> = BTreeMap::new();
    for (origin, doc) in docs {
        let scenarios = doc["scenarios"]
            .as_array()
            .ok_or_else(|| format!("{origin}: no \"scenarios\" array (not a powercut result)"))?;
        for s in scenarios {
            let name =
                s["name"].as_str().ok_or_else(|| format!("{origin}: a scenario has no name"))?;
            let outcomes = s["seed_outcomes"]
                .as_array()
                .ok_or_else(|| format!("{origin}: scenario {name} has no seed_outcomes"))?;
            if !by_name.contains_key(name) {
                order.push(name.to_string());
            }
            let entry = by_name.entry(name.to_string()).or_default();
            entry.1 += s["elapsed_secs"].as_f64().unwrap_or(0.0);
            for o in outcomes {
                let o = seed_from_json(o).ok_or_else(|| {
                    format!("{origin}: scenario {name}: a malformed seed outcome")
                })?;
                entry.0.push(o);
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let (mut seeds, elapsed_secs) = by_name.remove(&name).unwrap_or_default();
            seeds.sort_by_key(|s| s.seed);
            if let Some(w) = seeds.windows(2).find(|w| w[0].seed == w[1].seed) {
                return Err(format!(
                    "scenario {name}: seed {} is in more than one result",
                    w[0].seed
                ));
            }
            Ok(ScenarioResult { name, seeds, elapsed_secs })
        })
        .collect()
}
