//! Shrinking a failing seed to a minimal case that still fails the same check.
//!
//! Steps, each kept only if the same class still fails, all deterministic:
//! 1. Injected faults become an explicit schedule of those that fired; each is then dropped if the
//!    failure survives without it.
//! 2. Workload operations after the one the crash interrupted are dropped; then operations before
//!    it, in halving chunks down to single operations (delta debugging). The crash point and the
//!    faults are anchored to workload operations (the k-th filesystem operation after operation
//!    j starts), so they move with the workload.
//! 3. The earliest crash point that still fails is taken.
//! 4. The crash state: candidates explore every distinct state at their crash point (up to a
//!    budget, nearest to "nothing unsynced landed" first), so the first failing one is small, and
//!    a failure does not come and go with which state a shifted seed samples.
//!
//! Steps 2 and 3 run twice (an earlier crash point lets more operations go). Every candidate is
//! one focused run: one workload run with one crash point. A seed failing several classes is
//! shrunk for each, and the smallest case is kept.

use crate::oracle::Class;
use crate::run::{Detail, Focus, run_seed_detailed};
use crate::scenario::{Scenario, States};
use crate::subject::Subject;
use faultfs::Fault;
use std::collections::BTreeMap;

/// A minimal failing case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    pub seed: u64,
    pub class: Class,
    pub message: String,
    /// Workload operations kept (plan indexes).
    pub keep: Vec<u32>,
    pub crash_op: u64,
    pub state: u32,
    pub faults: BTreeMap<u64, Fault>,
    /// `Some(budget)` when the state is from exhaustive enumeration.
    pub exhaustive: Option<u64>,
    /// Workload operations in the original seed (its whole plan).
    pub original_ops: usize,
}

/// A position anchored to a workload operation: `offset` filesystem operations after the start of
/// plan operation `plan` (or of the run, when `plan` is `None`).
type Anchor = (Option<u32>, u64);

fn anchor(ranges: &[(u32, u64, u64)], op: u64) -> Anchor {
    match ranges.iter().rev().find(|r| r.1 < op) {
        Some(&(plan, start, _)) => (Some(plan), op - start),
        None => (None, op),
    }
}

fn locate(ranges: &[(u32, u64, u64)], a: Anchor) -> Option<u64> {
    match a {
        (None, offset) => Some(offset),
        (Some(plan), offset) => ranges.iter().find(|r| r.0 == plan).map(|r| r.1 + offset),
    }
}

struct Shrinker<'a, S: Subject> {
    scenario: Scenario,
    config: &'a S::Config,
    seed: u64,
    class: Class,
    runs: u32,
}

/// Most runs a shrink may make.
const MAX_RUNS: u32 = 2_000;

impl<S: Subject> Shrinker<'_, S> {
    /// Run `focus`; the first violation of the class, and the run's detail.
    fn attempt(&mut self, focus: &Focus) -> Option<(u64, u32, String, Detail)> {
        if self.runs >= MAX_RUNS {
            return None;
        }
        self.runs += 1;
        let focus = Focus { detail: true, ..focus.clone() };
        let (outcome, detail) =
            run_seed_detailed::<S>(&self.scenario, self.config, self.seed, &focus);
        let v = outcome.violations.into_iter().find(|v| v.class == self.class)?;
        Some((v.crash_op, v.state, v.message, detail?))
    }

    /// Keep `keep`, re-anchoring the crash point and faults from `ranges`; does it still fail?
    fn try_keep(
        &mut self,
        keep: &[u32],
        crash: Anchor,
        faults: &[(Anchor, Fault)],
    ) -> Option<(Focus, u64, u32, String, Detail)> {
        // A first run without a crash point learns the new ranges.
        let probe = Focus {
            keep: Some(keep.to_vec()),
            crash_op: Some(u64::MAX),
            faults: Some(BTreeMap::new()),
            ..Focus::default()
        };
        let (_, d) = run_seed_detailed::<S>(
            &self.scenario,
            self.config,
            self.seed,
            &Focus { detail: true, ..probe },
        );
        let ranges = d?.ranges;
        let crash_op = locate(&ranges, crash)?;
        let faults: BTreeMap<u64, Fault> =
            faults.iter().filter_map(|(a, f)| locate(&ranges, *a).map(|op| (op, *f))).collect();
        let focus = Focus {
            keep: Some(keep.to_vec()),
            crash_op: Some(crash_op),
            faults: Some(faults),
            ..Focus::default()
        };
        let (op, state, msg, detail) = self.attempt(&focus)?;
        Some((focus, op, state, msg, detail))
    }
}

/// States explored at each candidate's crash point while shrinking: whether *some* state there
/// fails does not hinge on which one a seed happens to sample.
const SHRINK_BUDGET: u64 = 32;

/// Shrink a failure of `seed`: of `class` if given, else each class the seed fails, keeping the
/// smallest case. `None` when the seed does not fail.
pub fn shrink<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seed: u64,
    class: Option<Class>,
) -> Option<Shrunk> {
    let (outcome, _) = run_seed_detailed::<S>(scenario, config, seed, &Focus::default());
    let mut classes: Vec<(Class, u64)> = Vec::new();
    for v in &outcome.violations {
        if class.is_none_or(|c| v.class == c) && !classes.iter().any(|(c, _)| *c == v.class) {
            classes.push((v.class, v.crash_op));
        }
    }
    classes
        .into_iter()
        .filter_map(|(c, op)| shrink_class::<S>(scenario, config, seed, c, op))
        .min_by_key(|s| (s.keep.len(), s.crash_op))
}

fn shrink_class<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seed: u64,
    class: Class,
    first_crash: u64,
) -> Option<Shrunk> {
    let mut sh = Shrinker::<S> { scenario: scenario.clone(), config, seed, class, runs: 0 };
    // The failing run, focused on its crash point, with its fired faults made explicit. Explore
    // the states there if some explored state fails too; else keep the scenario's own states.
    let focus = Focus { crash_op: Some(first_crash), ..Focus::default() };
    sh.scenario.faults.states = States::Exhaustive { budget: SHRINK_BUDGET };
    let mut exhaustive = Some(SHRINK_BUDGET);
    if sh.attempt(&focus).is_none() {
        sh.scenario.faults.states = scenario.faults.states;
        exhaustive = match scenario.faults.states {
            States::Exhaustive { budget } => Some(budget),
            States::Sampled { .. } => None,
        };
    }
    let (_, _, _, detail) = sh.attempt(&focus)?;
    let original_ops = scenario.workload.ops as usize;
    let mut faults: BTreeMap<u64, Fault> = detail.fired.iter().copied().collect();
    let mut best = Focus { faults: Some(faults.clone()), ..focus };
    let (mut crash_op, mut state, mut message, mut detail) = sh.attempt(&best)?;
    // 1. Fewer faults.
    for op in faults.clone().keys() {
        let mut fewer = faults.clone();
        fewer.remove(op);
        let candidate = Focus { faults: Some(fewer.clone()), ..best.clone() };
        if let Some(found) = sh.attempt(&candidate) {
            faults = fewer;
            best = candidate;
            (crash_op, state, message, detail) = found;
        }
    }
    let mut keep: Vec<u32> = detail.plan.iter().map(|(i, _)| *i).collect();
    // 2 and 3, twice: an earlier crash point lets more operations go.
    for _round in 0..2 {
        let crash_anchor = anchor(&detail.ranges, crash_op);
        let fault_anchors: Vec<(Anchor, Fault)> =
            best.faults.iter().flatten().map(|(op, f)| (anchor(&detail.ranges, *op), *f)).collect();
        if let (Some(last), _) = crash_anchor {
            let cut: Vec<u32> = keep.iter().copied().filter(|&i| i <= last).collect();
            if cut.len() < keep.len() {
                if let Some(found) = sh.try_keep(&cut, crash_anchor, &fault_anchors) {
                    keep = cut;
                    (best, crash_op, state, message, detail) = found;
                }
            }
        }
        let mut chunk = keep.len().div_ceil(2).max(1);
        // Bounded: chunk halves to 1, and each pass walks the kept list once.
        loop {
            let mut at = 0;
            while at < keep.len() {
                let removed: Vec<u32> = keep.iter().skip(at).take(chunk).copied().collect();
                let protected = removed.iter().any(|i| Some(*i) == crash_anchor.0);
                let candidate: Vec<u32> =
                    keep.iter().copied().filter(|i| !removed.contains(i)).collect();
                let found = if protected {
                    None
                } else {
                    sh.try_keep(&candidate, crash_anchor, &fault_anchors)
                };
                match found {
                    Some(f) => {
                        keep = candidate;
                        (best, crash_op, state, message, detail) = f;
                    }
                    None => at += chunk,
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        // The earliest crash point that still fails.
        let latest = crash_op;
        for k in 1..latest {
            let candidate = Focus { crash_op: Some(k), ..best.clone() };
            if let Some(found) = sh.attempt(&candidate) {
                best = candidate;
                (crash_op, state, message, detail) = found;
                break;
            }
        }
    }
    Some(Shrunk {
        seed,
        class,
        message,
        keep,
        crash_op,
        state,
        faults: best.faults.unwrap_or_default(),
        exhaustive,
        original_ops,
    })
}

impl Shrunk {
    /// The focus that replays this case.
    pub fn focus(&self) -> Focus {
        Focus {
            crash_op: Some(self.crash_op),
            keep: Some(self.keep.clone()),
            state: Some(self.state),
            faults: Some(self.faults.clone()),
            detail: false,
        }
    }
}
