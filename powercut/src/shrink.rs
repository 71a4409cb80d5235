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
use crate::run::{Anchor, Anchored, Detail, Focus, run_seed_detailed};
use crate::scenario::{Scenario, States};
use crate::subject::Subject;
use faultfs::Fault;
use std::collections::BTreeMap;

/// A minimal failing case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    /// The seed.
    pub seed: u64,
    /// The class it still fails.
    pub class: Class,
    /// The violation's message.
    pub message: String,
    /// Workload operations kept (plan indexes).
    pub keep: Vec<u32>,
    /// The crash point (operation number in the shrunk run).
    pub crash_op: u64,
    /// The crash state at that point.
    pub state: u32,
    /// The injected faults that fire in the shrunk run (operation number -> fault).
    pub faults: BTreeMap<u64, Fault>,
    /// `Some(budget)` when the state is from exhaustive enumeration.
    pub exhaustive: Option<u64>,
    /// Workload operations in the original seed (its whole plan).
    pub original_ops: usize,
}

fn anchor(ranges: &[(u32, u64, u64)], op: u64) -> Anchor {
    match ranges.iter().rev().find(|r| r.1 < op) {
        Some(&(plan, start, _)) => (Some(plan), op - start),
        None => (None, op),
    }
}

struct Shrinker<'a, S: Subject> {
    scenario: &'a Scenario,
    config: &'a S::Config,
    seed: u64,
    class: Class,
    states: Option<States>,
    runs: u32,
}

/// What a candidate found: its crash point, state, message and detail.
type Found = (u64, u32, String, Detail);

/// Most runs a shrink may make.
const MAX_RUNS: u32 = 2_000;

impl<S: Subject> Shrinker<'_, S> {
    /// Run `focus`; the first violation of the class, and the run's detail.
    fn attempt(&mut self, focus: Focus) -> Option<Found> {
        if self.runs >= MAX_RUNS {
            return None;
        }
        self.runs += 1;
        let focus = Focus { detail: true, states: self.states, ..focus };
        let (outcome, detail) =
            run_seed_detailed::<S>(self.scenario, self.config, self.seed, &focus);
        let v = outcome.violations.into_iter().find(|v| v.class == self.class)?;
        Some((v.crash_op, v.state, v.message, detail?))
    }

    /// Keep `keep` with the crash point and faults at these anchors: does it still fail?
    fn try_anchored(&mut self, keep: &[u32], anchored: &Anchored) -> Option<Found> {
        let focus = Focus {
            keep: Some(keep.to_vec()),
            anchored: Some(anchored.clone()),
            ..Focus::default()
        };
        self.attempt(focus)
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
    let mut sh = Shrinker::<S> {
        scenario,
        config,
        seed,
        class,
        states: Some(States::Exhaustive { budget: SHRINK_BUDGET }),
        runs: 0,
    };
    // The failing run, focused on its crash point. Explore the states there if some explored
    // state fails too; else keep the scenario's own states.
    let focus = Focus { crash_op: Some(first_crash), ..Focus::default() };
    let mut exhaustive = Some(SHRINK_BUDGET);
    if sh.attempt(focus.clone()).is_none() {
        sh.states = None;
        exhaustive = match scenario.faults.states {
            States::Exhaustive { budget } => Some(budget),
            States::Sampled { .. } => None,
        };
    }
    let (crash_op, _, _, detail) = sh.attempt(focus)?;
    let original_ops = scenario.workload.ops as usize;
    let mut keep: Vec<u32> = detail.plan.iter().map(|(i, _)| *i).collect();
    // From here on every candidate is anchored: the crash point and the faults that fired are
    // placed relative to workload operations, and resolved as the candidate's run reaches them.
    let anchored = |d: &Detail, crash_op: u64, faults: &[(u64, Fault)]| Anchored {
        crash: anchor(&d.ranges, crash_op),
        faults: faults.iter().map(|&(op, f)| (anchor(&d.ranges, op), f)).collect(),
    };
    let mut best = anchored(&detail, crash_op, &detail.fired);
    let mut found = sh.try_anchored(&keep, &best)?;
    // 1. Fewer faults.
    let mut i = 0;
    while i < best.faults.len() {
        let mut fewer = best.clone();
        fewer.faults.remove(i);
        match sh.try_anchored(&keep, &fewer) {
            Some(f) => (best, found) = (fewer, f),
            None => i += 1,
        }
    }
    // 2 and 3, twice: an earlier crash point lets more operations go.
    for _round in 0..2 {
        if let (Some(last), _) = best.crash {
            let cut: Vec<u32> = keep.iter().copied().filter(|&i| i <= last).collect();
            if cut.len() < keep.len() {
                if let Some(f) = sh.try_anchored(&cut, &best) {
                    (keep, found) = (cut, f);
                }
            }
        }
        let mut chunk = keep.len().div_ceil(2).max(1);
        // Bounded: chunk halves to 1, and each pass walks the kept list once.
        loop {
            let mut at = 0;
            while at < keep.len() {
                let removed: Vec<u32> = keep.iter().skip(at).take(chunk).copied().collect();
                let protected = removed.iter().any(|i| Some(*i) == best.crash.0);
                let candidate: Vec<u32> =
                    keep.iter().copied().filter(|i| !removed.contains(i)).collect();
                let tried = if protected { None } else { sh.try_anchored(&candidate, &best) };
                match tried {
                    Some(f) => (keep, found) = (candidate, f),
                    None => at += chunk,
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        // The earliest crash point that still fails, anchored in the current run.
        let ranges = found.3.ranges.clone();
        for k in 1..found.0 {
            let earlier = Anchored { crash: anchor(&ranges, k), ..best.clone() };
            if let Some(f) = sh.try_anchored(&keep, &earlier) {
                (best, found) = (earlier, f);
                break;
            }
        }
    }
    let (crash_op, state, message, detail) = found;
    Some(Shrunk {
        seed,
        class,
        message,
        keep,
        crash_op,
        state,
        faults: detail.fired.iter().copied().collect(),
        exhaustive,
        original_ops,
    })
}

impl Shrunk {
    /// The focus that replays this case exactly: its operations, crash point, faults, and the
    /// state enumeration its state index counts in.
    pub fn focus(&self) -> Focus {
        Focus {
            crash_op: Some(self.crash_op),
            keep: Some(self.keep.clone()),
            state: Some(self.state),
            faults: Some(self.faults.clone()),
            states: self.exhaustive.map(|budget| States::Exhaustive { budget }),
            anchored: None,
            detail: false,
        }
    }
}
