//! Running one seed: the workload once, crash points captured as it goes (prefix reuse), then for
//! each crash point its crash states, a recovery on each, and the oracle's checks.
//!
//! Everything here is deterministic: one ChaCha stream per seed, virtual time only, no threads.
//! The same scenario, seed and binary give the same outcome, byte for byte.

use crate::oracle::{
    Class, Crash, CrashKind, Damage, History, Loss, Report, Rules, State, Status, Write,
};
use crate::scenario::{CrashPoints, Scenario, States};
use crate::subject::{Ack, BatchOp, Promise, Subject, SubjectError};
use crate::workload::{self, Op, key_bytes, value_bytes};
use faultfs::{
    Call, Capture, CrashPoint, Fault, FaultPlan, InFlight, Latency, Shape, SimConfig, SimFs,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

/// One violation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What was violated.
    pub class: Class,
    /// The crash point (operation number) and kind.
    pub crash_op: u64,
    /// Power cut or kill -9.
    pub crash_kind: CrashKind,
    /// Which state at that crash point (0-based), for replay.
    pub state: u32,
    /// What went wrong, for a person.
    pub message: String,
}

/// What one seed found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Crash states checked.
    pub crash_states: u64,
    /// Crash states with distinct images.
    pub distinct_states: u64,
    /// Every violation found, in order.
    pub violations: Vec<Violation>,
    /// Loss within the promise, per crash kind: (power cut, kill).
    pub loss_power_cut: LossTotals,
    /// Loss within the promise after kills.
    pub loss_kill: LossTotals,
    /// Filesystem operations the workload took.
    pub ops: u64,
    /// Sampled power-cut states by the shape they were drawn as, in [`faultfs::Shape::ALL`]
    /// order (enumerated states and process crashes have no shape).
    pub shapes: [u64; 4],
}

/// Loss summed over crash states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossTotals {
    /// Crash states counted.
    pub states: u64,
    /// Acknowledged writes lost, summed.
    pub acked_lost: u64,
    /// Most acknowledged writes one state lost.
    pub acked_lost_max: u64,
    /// Bytes of values lost, summed.
    pub bytes_lost: u64,
    /// The longest loss window.
    pub window_max: Duration,
    /// Lost writes the subject had reported at risk.
    pub reported_lost: u64,
    /// Crash states whose recovery refused to open because the storage failed it.
    pub unavailable: u64,
}

impl LossTotals {
    fn add(&mut self, l: Loss) {
        self.states += 1;
        self.acked_lost += l.acked_lost;
        self.acked_lost_max = self.acked_lost_max.max(l.acked_lost);
        self.bytes_lost += l.bytes_lost;
        self.window_max = self.window_max.max(l.window.unwrap_or_default());
        self.reported_lost += l.reported_lost;
        self.unavailable += l.unavailable;
    }

    /// Add `o`'s totals.
    pub fn merge(&mut self, o: &LossTotals) {
        self.states += o.states;
        self.acked_lost += o.acked_lost;
        self.acked_lost_max = self.acked_lost_max.max(o.acked_lost_max);
        self.bytes_lost += o.bytes_lost;
        self.window_max = self.window_max.max(o.window_max);
        self.reported_lost += o.reported_lost;
        self.unavailable += o.unavailable;
    }
}

/// A position anchored to a workload operation: `offset` filesystem operations after the start of
/// plan operation `plan` (or of the run, when `plan` is `None`). It moves with the workload when
/// earlier operations are dropped, and is resolved as the run reaches it, so it stays right when a
/// fault changes how many filesystem operations later workload operations take.
pub type Anchor = (Option<u32>, u64);

/// A crash point and injected faults placed by [`Anchor`]s (what the shrinker works with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchored {
    /// Where the crash point is.
    pub crash: Anchor,
    /// Exactly these injected faults, instead of the scenario's rates.
    pub faults: Vec<(Anchor, Fault)>,
}

/// Optional narrowing of a seed's run, for replay and shrinking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Focus {
    /// Only this crash point (operation number).
    pub crash_op: Option<u64>,
    /// Only these workload operations (indexes into the seed's plan, ascending).
    pub keep: Option<Vec<u32>>,
    /// Only this crash state (index at the crash point).
    pub state: Option<u32>,
    /// Exactly these injected faults (operation number -> fault) instead of the scenario's rates.
    pub faults: Option<BTreeMap<u64, Fault>>,
    /// Choose crash states this way instead of the scenario's (a shrunk case's exhaustive
    /// budget: its state index counts in that enumeration).
    pub states: Option<States>,
    /// The crash point and faults by anchor (instead of `crash_op` and `faults`).
    pub anchored: Option<Anchored>,
    /// Collect a [`Detail`] for a person to read.
    pub detail: bool,
}

impl Focus {
    /// Is the run narrowed to one crash point?
    fn targeted(&self) -> bool {
        self.crash_op.is_some() || self.anchored.is_some()
    }
}

/// What a replay shows a person.
#[derive(Clone, Debug, Default)]
pub struct Detail {
    /// The workload operations run, with their plan index.
    pub plan: Vec<(u32, Op)>,
    /// Per workload operation run: (plan index, first op before it, last op of it).
    pub ranges: Vec<(u32, u64, u64)>,
    /// The history of writes, acknowledgements and reports.
    pub history: History,
    /// The filesystem calls of the run.
    pub trace: Vec<faultfs::TraceEntry>,
    /// Faults that fired in the run.
    pub fired: Vec<(u64, faultfs::Fault)>,
    /// Per crash state checked: its crash point, kind, index, and what the crash kept and dropped.
    pub states: Vec<(Crash, u32, Vec<String>)>,
}

fn state_of<S: Subject>(fs: SimFs, config: &S::Config) -> Result<(S, State), SubjectError> {
    state_noting::<S>(fs, config, &mut false).map(|(subject, state, _)| (subject, state))
}

/// [`state_of`], setting `dropped` if recovery reported dropping data, even if reading the state
/// back failed after it (a retried recovery may not see what the first one dropped); and saying
/// whether reading the state back reported records it could not serve (a read fault may pass).
fn state_noting<S: Subject>(
    fs: SimFs,
    config: &S::Config,
    dropped: &mut bool,
) -> Result<(S, State, bool), SubjectError> {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut subject = S::open(fs, config)?;
        let reported = subject.recovery_dropped().len();
        *dropped |= reported > 0;
        let state = subject.state()?;
        let unreadable = subject.recovery_dropped().len() > reported;
        Ok((subject, state, unreadable))
    }));
    opened.unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into());
        Err(SubjectError::new(format!("recovery panicked: {msg}")))
    })
}

/// The independent streams one seed draws from.
struct Streams {
    workload: ChaCha8Rng,
    fs_seed: u64,
    points: ChaCha8Rng,
    states_seed: u64,
}

impl Streams {
    fn new(seed: u64) -> Streams {
        let mut root = ChaCha8Rng::seed_from_u64(seed);
        let mut sub = || ChaCha8Rng::seed_from_u64(root.next_u64());
        let workload = sub();
        let points = sub();
        let states_seed = root.next_u64();
        let fs_seed = root.next_u64();
        Streams { workload, fs_seed, points, states_seed }
    }

    /// The stream of one crash point: replaying that point alone draws the same states.
    fn at_point(&self, op: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.states_seed ^ op.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The stream of the checks of one crash state: replaying that state alone draws the same.
    fn at_state(&self, op: u64, state: usize) -> ChaCha8Rng {
        let salt = (state as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        ChaCha8Rng::seed_from_u64(self.states_seed ^ op.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt)
    }
}

/// The result of running the workload once.
struct Live {
    /// What device faults may have cost during the run.
    device_damage: Vec<faultfs::DeviceDamage>,
    history: History,
    points: Vec<CrashPoint>,
    ops: u64,
    violations: Vec<Violation>,
    /// The workload operations run, with their plan index.
    plan: Vec<(u32, Op)>,
    /// Per workload operation run: (plan index, first op before it, last op of it).
    ranges: Vec<(u32, u64, u64)>,
    trace: Vec<faultfs::TraceEntry>,
    fired: Vec<(u64, faultfs::Fault)>,
}

pub(crate) fn sim_config(scenario: &Scenario, fs_seed: u64) -> SimConfig {
    let f = &scenario.faults;
    let faults = FaultPlan {
        sync_eio_rate: f.sync_eio_rate,
        write_eio_rate: f.write_eio_rate,
        writeback_eio_rate: f.writeback_eio_rate,
        commit_eio_rate: f.commit_eio_rate,
        misdirect_rate: f.misdirect_rate,
        lost_flush_rate: f.lost_flush_rate,
        read_eio_rate: f.read_eio_rate,
        read_corrupt_rate: f.read_corrupt_rate,
        latent_on_read_rate: f.latent_on_read_rate,
        eio_semantics: f.eio_semantics,
        capacity_bytes: f.capacity_bytes,
        ..FaultPlan::none()
    };
    SimConfig::new(f.profile.clone()).latency(Latency::default()).faults(faults).seed(fs_seed)
}

/// The oracle's reading of promises for this scenario.
pub fn rules(scenario: &Scenario) -> Rules {
    let latency = Latency::default();
    let sync =
        Duration::from_nanos(latency.sync_all_ns + latency.sync_dir_ns + latency.metadata_ns);
    let slack = Duration::from_millis(scenario.faults.tick_ms) + sync * 2;
    let writeback = scenario.faults.profile.writeback.map(|w| w.durable_within());
    Rules { slack, writeback }
}

/// The reservoir of a `random` run: armed for each workload operation the seed takes a crash
/// point in (`seen`: its filesystem operations so far).
#[derive(Default)]
struct Reservoir {
    armed: std::cell::Cell<bool>,
    seen: std::cell::Cell<u64>,
}

impl Reservoir {
    /// Start a chosen operation's reservoir.
    fn arm(&self) {
        self.armed.set(true);
        self.seen.set(0);
    }
}

fn capture_policy(
    mode: CrashPoints,
    mut rng: ChaCha8Rng,
    only: Option<Rc<Cell<Option<u64>>>>,
    reservoir: Rc<Reservoir>,
) -> impl FnMut(u64, Call) -> Capture {
    move |op, call| {
        if let Some(k) = &only {
            return if Some(op) == k.get() { Capture::Keep } else { Capture::Skip };
        }
        match mode {
            CrashPoints::EveryOp => Capture::Keep,
            CrashPoints::AtSyncPoints if call.is_sync() => Capture::Keep,
            CrashPoints::AtSyncPoints => Capture::Skip,
            CrashPoints::Random if !reservoir.armed.get() => Capture::Skip,
            CrashPoints::Random => {
                // Reservoir sampling of one point over the operations of the chosen segment: its
                // first operation is kept beside the earlier segments' points, a later one
                // replaces it with probability 1/seen.
                let seen = reservoir.seen.get() + 1;
                reservoir.seen.set(seen);
                match rng.random_range(0..seen) {
                    0 if seen == 1 => Capture::Keep,
                    0 => Capture::Replace,
                    _ => Capture::Skip,
                }
            }
        }
    }
}

/// Run the workload once, recording the history and capturing crash points.
fn live<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    streams: &mut Streams,
    focus: &Focus,
) -> Live {
    let mode = scenario.faults.crash_points;
    // A `random` seed takes a crash point during each of `points_per_seed` workload operations
    // (or the idle tail), chosen uniformly, at one of its filesystem operations (ticks before it
    // included), chosen uniformly; the points share the run up to them, and nothing after the
    // last runs.
    let random = mode == CrashPoints::Random && !focus.targeted();
    // The one crash point of a targeted run; an anchored one is resolved as the run reaches it.
    let target: Rc<Cell<Option<u64>>> = Rc::new(Cell::new(focus.crash_op));
    // The plan is drawn as the run takes it (a random seed stops early), unless operations are
    // picked out of it.
    let picked: Option<Vec<(u32, workload::Planned)>> = focus.keep.as_ref().map(|keep| {
        let full = workload::generate(&scenario.workload, &mut streams.workload);
        keep.iter().filter_map(|&i| full.get(i as usize).map(|p| (i, *p))).collect()
    });
    let planned = picked.as_ref().map_or(scenario.workload.ops as usize, Vec::len);
    // The workload operations (steps; `planned` is the idle tail) the seed takes a point in.
    let mut segments = BTreeSet::new();
    if random {
        let k = (scenario.faults.points_per_seed() as usize).min(planned + 1);
        while segments.len() < k {
            segments.insert(streams.points.random_range(0..=planned));
        }
    }
    let last_segment = segments.last().copied();
    let plan: Box<dyn Iterator<Item = (u32, workload::Planned)>> = match picked {
        Some(picked) => Box::new(picked.into_iter()),
        None => {
            let drawn = workload::plan(&scenario.workload, &mut streams.workload);
            Box::new(drawn.enumerate().map(|(i, p)| (i as u32, p)))
        }
    };
    let mut config_fs = sim_config(scenario, streams.fs_seed);
    let explicit = focus.anchored.as_ref().map(|_| BTreeMap::new()).or(focus.faults.clone());
    if let Some(faults) = explicit {
        config_fs.faults = FaultPlan { at_ops: faults, ..config_fs.faults.without_rates() };
    }
    let fs = SimFs::new(config_fs);
    fs.set_tracing(focus.detail);
    let resolve = |plan: Option<u32>, start: u64| {
        let Some(a) = &focus.anchored else { return };
        if a.crash.0 == plan {
            target.set(Some(start + a.crash.1));
        }
        for &((p, offset), fault) in &a.faults {
            if p == plan {
                fs.schedule_fault(start + offset, fault);
            }
        }
    };
    resolve(None, 0);
    let reservoir = Rc::new(Reservoir::default());
    let only = focus.targeted().then(|| target.clone());
    let policy = capture_policy(mode, streams.points.clone(), only, reservoir.clone());
    fs.capture_with(policy);
    let mut out = Live {
        history: History::default(),
        points: Vec::new(),
        ops: 0,
        violations: Vec::new(),
        plan: Vec::new(),
        ranges: Vec::new(),
        trace: Vec::new(),
        fired: Vec::new(),
        device_damage: Vec::new(),
    };
    let violation = |class, message: String| Violation {
        class,
        crash_op: 0,
        crash_kind: CrashKind::Kill,
        state: 0,
        message,
    };
    // An injected fault may fail the first open: an operator would retry it (a few times).
    let mut subject = None;
    for _ in 0..8 {
        match S::open(fs.clone(), config) {
            Ok(s) => {
                subject = Some(s);
                break;
            }
            Err(e) if e.power_cut => break,
            Err(_) => {}
        }
    }
    let tick = Duration::from_millis(scenario.faults.tick_ms);
    let mut next_tick = fs_now(&fs) + tick;
    // Per key number: the write whose value an acknowledged history leaves there.
    let mut model: Vec<Option<u64>> = vec![None; scenario.workload.keys as usize];
    let mut uncertain: BTreeSet<u32> = BTreeSet::new();
    let history = &mut out.history;
    let ops_iter = plan.map(|(i, p)| (p.gap, Some((i, p.op))));
    let tail = (Duration::from_millis(scenario.workload.tail_ms), None);
    let mut ran_tail = false;
    let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
    for (step, (gap, planned)) in ops_iter.chain(std::iter::once(tail)).enumerate() {
        let Some(s) = subject.as_mut() else { break };
        // A chosen operation with no filesystem operation passes its point on to the next.
        let passed_on = reservoir.armed.get() && reservoir.seen.get() == 0;
        if segments.contains(&step) {
            if !passed_on {
                reservoir.arm();
            }
        } else if !passed_on {
            reservoir.armed.set(false);
        }
        let cut = !reservoir.armed.get() && last_segment.is_some_and(|l| step > l);
        if cut || target.get().is_some_and(|k| k <= fs.op_count()) {
            break; // the power is already cut at the last point: nothing later runs
        }
        ran_tail = planned.is_none();
        let arrival = fs_now(&fs) + gap;
        // Bounded: next_tick advances by `tick` each step, up to `arrival`.
        while next_tick <= arrival {
            fs.advance_to(next_tick);
            match s.tick() {
                Ok(dt) => {
                    history.reports.push(Report { end_op: fs.op_count(), durable_through: dt })
                }
                Err(e) => note_error(history, &e, fs.op_count(), &mut uncertain),
            }
            next_tick = fs_now(&fs).max(next_tick) + tick;
        }
        fs.advance_to(arrival);
        let Some((plan_index, op)) = planned else { break };
        out.plan.push((plan_index, op));
        let start_op = fs.op_count();
        resolve(Some(plan_index), start_op);
        let index = history.writes.len() as u64;
        let result = match op {
            Op::Put { key, value_bytes: n } => {
                workload::write_key(&mut key_buf, key);
                workload::write_value(&mut value_buf, index, n);
                Some((key, Some(n), s.put(&key_buf, &value_buf)))
            }
            Op::Delete { key } => {
                workload::write_key(&mut key_buf, key);
                Some((key, None, s.delete(&key_buf)))
            }
            Op::Get { key } => {
                workload::write_key(&mut key_buf, key);
                let got = s.get(&key_buf);
                if let Err(e) = &got {
                    note_error(history, e, fs.op_count(), &mut uncertain);
                }
                if let (Ok(v), false) = (&got, uncertain.contains(&key)) {
                    let expected = model.get(key as usize).copied().flatten();
                    let want = expected.map(|t| {
                        let n = history.writes[t as usize].value_len.unwrap_or_default();
                        value_bytes(t, n)
                    });
                    if *v != want {
                        let msg = format!(
                            "get {} returned {:?} bytes, expected the value of write #{:?}",
                            String::from_utf8_lossy(&key_bytes(key)),
                            v.as_ref().map(Vec::len),
                            expected
                        );
                        out.violations.push(violation(Class::Validity, msg));
                    }
                }
                None
            }
            Op::Merge => {
                if let Err(e) = s.merge() {
                    note_error(history, &e, fs.op_count(), &mut uncertain);
                }
                None
            }
            Op::Batch { len, seed } => {
                let members = workload::batch_members(&scenario.workload, len, seed);
                batch(s, &fs, history, &members, start_op, &mut model, &mut uncertain);
                None
            }
        };
        out.ranges.push((plan_index, start_op, fs.op_count()));
        let Some((key, value_len, result)) = result else { continue };
        let end_op = fs.op_count();
        let status = match &result {
            Ok(ack) => {
                history.reports.push(Report { end_op, durable_through: ack.durable_through });
                if let Some(slot) = model.get_mut(key as usize) {
                    *slot = value_len.map(|_| index);
                }
                Status::Acked(*ack)
            }
            Err(e) => {
                note_error(history, e, end_op, &mut uncertain);
                uncertain.insert(key);
                Status::Failed
            }
        };
        history.writes.push(Write {
            key,
            value_len,
            start_op,
            end_op,
            acked_at: fs_now(&fs),
            status,
        });
    }
    out.ops = fs.op_count();
    out.history.index();
    out.points = fs.take_crash_points();
    out.fired = fs.fired_faults();
    out.device_damage = fs.device_damage();
    if focus.detail {
        out.trace = fs.trace();
    }
    let seen = reservoir.seen.get();
    let end_chosen = match (focus.targeted(), mode) {
        (true, _) => target.get() == Some(out.ops + 1),
        // The end of the run is one more candidate of the segment that reached the tail (a
        // chosen operation without filesystem operations passes it on to the next).
        (false, CrashPoints::Random) if !reservoir.armed.get() => out.points.is_empty(),
        (false, CrashPoints::Random) if seen > 0 => {
            ran_tail && streams.points.random_range(0..=seen) == 0
        }
        (false, _) => true,
    };
    if end_chosen {
        if mode == CrashPoints::Random && !focus.targeted() && seen > 0 {
            out.points.pop(); // the last segment's point, replaced by the end
        }
        out.points.push(fs.crash_point_now());
    }
    drop(subject);
    out
}

fn fs_now(fs: &SimFs) -> Duration {
    use faultfs::Vfs;
    fs.now()
}

/// Run one atomic batch: its members are consecutive writes of the history, one acknowledgement
/// for all of them.
fn batch<S: Subject>(
    s: &mut S,
    fs: &SimFs,
    history: &mut History,
    members: &[Op],
    start_op: u64,
    model: &mut [Option<u64>],
    uncertain: &mut BTreeSet<u32>,
) {
    let first = history.writes.len() as u64;
    let bytes: Vec<(Vec<u8>, Option<Vec<u8>>)> = members
        .iter()
        .enumerate()
        .map(|(i, op)| match *op {
            Op::Put { key, value_bytes: n } => {
                (key_bytes(key), Some(value_bytes(first + i as u64, n)))
            }
            Op::Delete { key } => (key_bytes(key), None),
            _ => unreachable!("batch members are puts and deletes"),
        })
        .collect();
    let ops: Vec<BatchOp<'_>> = bytes
        .iter()
        .map(|(key, value)| match value {
            Some(value) => BatchOp::Put { key, value },
            None => BatchOp::Delete { key },
        })
        .collect();
    let result = s.write_batch(&ops);
    let end_op = fs.op_count();
    let status = match &result {
        Ok(ack) => {
            history.reports.push(Report { end_op, durable_through: ack.durable_through });
            Status::Acked(*ack)
        }
        Err(e) => {
            note_error(history, e, end_op, uncertain);
            Status::Failed
        }
    };
    history.batches.push((first as usize, members.len()));
    for (i, op) in members.iter().enumerate() {
        let (key, value_len) = match *op {
            Op::Put { key, value_bytes } => (key, Some(value_bytes)),
            Op::Delete { key } => (key, None),
            _ => continue,
        };
        match status {
            Status::Acked(_) => {
                if let Some(slot) = model.get_mut(key as usize) {
                    *slot = value_len.map(|_| first + i as u64);
                }
            }
            _ => {
                uncertain.insert(key);
            }
        }
        let acked_at = fs_now(fs);
        history.writes.push(Write { key, value_len, start_op, end_op, acked_at, status });
    }
}

/// Record what an error says is at risk; the keys of those writes are no longer known to a
/// `get` check.
fn note_error(history: &mut History, e: &SubjectError, end_op: u64, uncertain: &mut BTreeSet<u32>) {
    if let Some((a, b)) = e.at_risk {
        history.at_risk.push((a, b, end_op));
        for w in &history.writes {
            if matches!(w.status, Status::Acked(ack) if (a..=b).contains(&ack.seq)) {
                uncertain.insert(w.key);
            }
        }
    }
}

/// Run one seed of `scenario` on subject `S`.
pub fn run_seed<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seed: u64,
    focus: Focus,
) -> SeedOutcome {
    run_seed_detailed::<S>(scenario, config, seed, &focus).0
}

/// Run one seed, and with `focus.detail` collect what a replay shows.
pub fn run_seed_detailed<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    seed: u64,
    focus: &Focus,
) -> (SeedOutcome, Option<Detail>) {
    assert!(
        scenario.workload.mix.batch == 0 || S::WRITE_BATCH,
        "scenario {} needs write_batch, which subject {} does not implement (Check and the \
         command line skip such scenarios, saying so)",
        scenario.name,
        S::NAME
    );
    let mut streams = Streams::new(seed);
    let live = live::<S>(scenario, config, &mut streams, focus);
    let mut out = SeedOutcome {
        seed,
        ops: live.ops,
        violations: live.violations.clone(),
        ..SeedOutcome::default()
    };
    let mut detail = focus.detail.then(|| Detail {
        plan: live.plan.clone(),
        ranges: live.ranges.clone(),
        history: live.history.clone(),
        trace: live.trace.clone(),
        fired: live.fired.clone(),
        states: Vec::new(),
    });
    let rules = rules(scenario);
    let mut seen = BTreeSet::new();
    let f = &scenario.faults;
    // One crash state in the whole seed is distinct without hashing its image.
    let states = focus.states.unwrap_or(f.states);
    let single = live.points.len() == 1 && states == States::Sampled { per_point: 1 };
    for point in &live.points {
        let mut rng = streams.at_point(point.op());
        let kind = if rng.random_range(0..f.crash.power_cut + f.crash.kill) < f.crash.power_cut {
            CrashKind::PowerCut
        } else {
            CrashKind::Kill
        };
        let crash = Crash { op: point.op(), at: point.at(), kind };
        let images = crash_images(point, kind, states, &mut rng, focus.detail);
        for (i, Image { fs: image, described, shape, hash }) in images.into_iter().enumerate() {
            if focus.state.is_some_and(|s| s as usize != i) {
                continue;
            }
            out.crash_states += 1;
            if let Some(shape) = shape {
                out.shapes[Shape::ALL.iter().position(|s| *s == shape).unwrap_or(0)] += 1;
            }
            if single || seen.insert(hash.unwrap_or_else(|| faultfs::image_hash(&image))) {
                out.distinct_states += 1;
            }
            let mut check_rng = streams.at_state(point.op(), i);
            let found = check_image::<S>(
                scenario,
                config,
                (&live.history, &live.device_damage),
                crash,
                rules,
                image,
                &mut check_rng,
            );
            if let Some(d) = detail.as_mut() {
                d.states.push((crash, i as u32, described));
            }
            match kind {
                CrashKind::PowerCut => out.loss_power_cut.add(found.1),
                CrashKind::Kill => out.loss_kill.add(found.1),
            }
            for (class, message) in found.0 {
                out.violations.push(Violation {
                    class,
                    crash_op: crash.op,
                    crash_kind: kind,
                    state: i as u32,
                    message,
                });
            }
        }
    }
    (out, detail)
}

/// One crash image of a crash point.
struct Image {
    fs: SimFs,
    /// What the crash kept and dropped (if asked for).
    described: Vec<String>,
    /// The shape a sampled power-cut state was drawn as.
    shape: Option<Shape>,
    /// Its [`faultfs::image_hash`], if exploring computed it.
    hash: Option<u64>,
}

/// The crash images of one crash point.
fn crash_images(
    point: &CrashPoint,
    kind: CrashKind,
    states: States,
    rng: &mut ChaCha8Rng,
    describe: bool,
) -> Vec<Image> {
    let kill = |fate: InFlight| {
        let what = if describe {
            vec![format!(
                "kill -9: the page cache survives; the operation in flight ({}) was {fate:?}",
                point.describe_in_flight()
            )]
        } else {
            Vec::new()
        };
        Image { fs: point.process_crash(fate), described: what, shape: None, hash: None }
    };
    match (kind, states) {
        (CrashKind::Kill, States::Sampled { per_point }) => {
            (0..per_point).map(|_| kill(point.sample_process_crash(rng))).collect()
        }
        (CrashKind::Kill, States::Exhaustive { budget }) => {
            point.process_crash_fates().into_iter().take(budget as usize).map(kill).collect()
        }
        (CrashKind::PowerCut, States::Sampled { per_point }) => {
            let space = point.power_cut_space();
            (0..per_point)
                .map(|_| {
                    let (state, shape) = space.sample_shaped(rng);
                    let what = if describe { space.describe(&state) } else { Vec::new() };
                    let fs = space.materialize(&state);
                    Image { fs, described: what, shape: Some(shape), hash: None }
                })
                .collect()
        }
        (CrashKind::PowerCut, States::Exhaustive { budget }) => {
            let space = point.power_cut_space();
            let mut images = Vec::new();
            space.explore_hashed(budget, |state, image, hash| {
                let what = if describe { space.describe(state) } else { Vec::new() };
                images.push(Image { fs: image, described: what, shape: None, hash: Some(hash) });
            });
            images
        }
    }
}

/// Inject the scenario's bit flips and latent sector errors into `image`: the keys the damage
/// touched (from the files as they were before it) and the damaged ranges, (file, start, end).
/// A latent error makes its whole page unreadable.
fn rot_image(
    image: &SimFs,
    history: &History,
    rng: &mut ChaCha8Rng,
    f: &crate::scenario::Faults,
) -> (Damage, Vec<(String, u64, u64)>) {
    let before = image.crash_point_now().process_crash(InFlight::Skipped);
    let page = u64::from(image.config().profile.page_bytes);
    let mut damage = Damage::default();
    let mut ranges = Vec::new();
    for (name, offset, latent) in image.rot(rng, f.bit_flips, f.latent_errors) {
        let (a, b) = if latent {
            (offset / page * page, offset / page * page + page)
        } else {
            (offset, offset + 1)
        };
        let bytes = before.contents(&name).unwrap_or_default();
        damage.keys.extend(history.keys_near(&bytes, a, b));
        ranges.push((name, a, b));
    }
    (damage, ranges)
}

/// Count what a device fault cost toward `damage`: the keys of the records in its bytes.
fn add_device_damage(
    damage: &mut Damage,
    ranges: &mut Vec<(String, u64, u64)>,
    history: &History,
    d: &faultfs::DeviceDamage,
) {
    let len = d.bytes.len() as u64;
    damage.keys.extend(history.keys_near(&d.bytes, 0, len));
    ranges.push((d.file.clone(), d.offset, d.offset + len.max(1)));
}

/// Did the storage fail a recovery on `image`: did the filesystem return an I/O error, a
/// read-only filesystem or a full disk to any call? SimFs returns those only for injected faults
/// (a sticky fsync error, a failed journal commit, a capacity), never for an engine's mistake.
fn storage_refused(image: &SimFs) -> bool {
    image.trace().iter().any(|e| {
        matches!(e.outcome, faultfs::Outcome::Err { errno: "EIO" | "EROFS" | "ENOSPC", .. })
    })
}

/// Did anything read a damaged range of `image` (per its trace)?
fn read_damage(image: &SimFs, ranges: &[(String, u64, u64)]) -> bool {
    image.trace().iter().any(|e| {
        e.call == Call::Read
            && e.file.as_deref().is_some_and(|name| {
                ranges
                    .iter()
                    .any(|(n, a, b)| n == name && e.offset < *b && *a < e.offset + e.len.max(1))
            })
    })
}

/// Recover from one crash image and run every check on it.
fn check_image<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    (history, device): (&History, &[faultfs::DeviceDamage]),
    crash: Crash,
    rules: Rules,
    image: SimFs,
    rng: &mut ChaCha8Rng,
) -> (Vec<(Class, String)>, Loss) {
    let f = &scenario.faults;
    let rot = f.bit_flips + f.latent_errors > 0;
    let (mut damage, mut ranges) =
        if rot { rot_image(&image, history, rng, f) } else { (Damage::default(), Vec::new()) };
    // What device faults cost before the crash.
    let before = device.iter().filter(|d| d.op < crash.op);
    let mut corrupted = rot;
    for d in before {
        add_device_damage(&mut damage, &mut ranges, history, d);
        corrupted = true;
    }
    // A pristine copy of the image, for the crashes during recovery.
    let pristine = (f.crashes_during_recovery > 0).then(|| image.crash_point_now());
    // Device read faults meet recovery too; an operator restarts a program a transient one
    // stopped, so recovery is tried up to 8 times.
    let read_faults = f.read_eio_rate + f.read_corrupt_rate + f.latent_on_read_rate > 0.0;
    if read_faults {
        image.set_faults(FaultPlan {
            read_eio_rate: f.read_eio_rate,
            read_corrupt_rate: f.read_corrupt_rate,
            latent_on_read_rate: f.latent_on_read_rate,
            ..FaultPlan::none()
        });
    }
    let mut dropped = false;
    let mut recovered = state_noting::<S>(image.clone(), config, &mut dropped);
    for _ in 1..if read_faults { 8 } else { 1 } {
        match &recovered {
            // Recovery failed, or the state it served left out records it could not read: both
            // may be a transient read fault.
            Err(e) if !e.message.contains("panicked") => {}
            Ok((_, _, true)) => {}
            _ => break,
        }
        recovered = state_noting::<S>(image.clone(), config, &mut dropped);
    }
    for d in image.device_damage() {
        add_device_damage(&mut damage, &mut ranges, history, &d);
        corrupted = true;
    }
    let rot = corrupted;
    let (mut subject, state) = match recovered {
        Ok((subject, state, unreadable)) => {
            dropped |= unreadable;
            (subject, state)
        }
        // A recovery that fails after reading damaged bytes reports the damage: every loss is
        // reported. One that fails without touching them has no such excuse.
        Err(e) if rot && !e.message.contains("panicked") && read_damage(&image, &ranges) => {
            return (Vec::new(), Loss { reported_lost: 1, ..Loss::default() });
        }
        // A recovery that refuses, saying why, because the storage failed it, has reported the
        // state unavailable. One that opens and serves what it could not make durable is judged
        // (crash-during-recovery catches it).
        Err(e) if !e.message.contains("panicked") && storage_refused(&image) => {
            return (Vec::new(), Loss { unavailable: 1, ..Loss::default() });
        }
        Err(e) => {
            return (vec![(Class::Validity, format!("recovery failed: {e}"))], Loss::default());
        }
    };
    damage.reported = dropped;
    let damage = rot.then_some(&damage);
    let (mut violations, loss) = history.judge(crash, rules, &state, damage);
    if !violations.is_empty() {
        let notes = subject.recovery_notes();
        if !notes.is_empty() {
            violations[0].1.push_str(&format!(" [recovery: {}]", notes.join("; ")));
        }
        return (violations, loss);
    }
    // Writes after recovery must survive a reopen (as after a kill -9: the page cache survives)
    // as far as they were promised; so must the recovered state itself.
    let mut after = AfterRecovery::new(state);
    let mut key = Vec::new();
    for w in 0..f.after_recovery_writes {
        workload::write_key(&mut key, rng.random_range(0..scenario.workload.keys));
        let value = value_bytes((1 << 40) + u64::from(w), 16);
        let result = subject.put(&key, &value);
        after.record(&key, &value, &result);
    }
    drop(subject);
    let reopened = image.crash_point_now().process_crash(InFlight::Skipped);
    let generation_start = match state_of::<S>(reopened.clone(), config) {
        Ok((_, again)) => {
            if let Err((_, what)) = after.explains(&again, false) {
                let (class, whose) = if after.writes.is_empty() {
                    (Class::RecoveryIdempotence, "a second recovery")
                } else {
                    (Class::Durability, "writes acknowledged after recovery")
                };
                let msg = format!(
                    "{whose}: reopening gives {} keys, the first recovery {} ({what})",
                    again.len(),
                    after.base.len()
                );
                return (vec![(class, msg)], loss);
            }
            (reopened, again)
        }
        Err(e) => {
            return (
                vec![(Class::RecoveryIdempotence, format!("a second recovery failed: {e}"))],
                loss,
            );
        }
    };
    if let Some(p) = pristine {
        let levels = f.crashes_during_recovery;
        if let Some(v) =
            crashes_during_recovery::<S>(config, history, crash, rules, p, levels, damage, rng)
        {
            return (vec![(Class::CrashDuringRecovery, v)], loss);
        }
    }
    if f.generations > 1 {
        if let Some(v) = later_generations::<S>(scenario, config, generation_start, crash.kind, rng)
        {
            return (vec![v], loss);
        }
    }
    (Vec::new(), loss)
}

/// Cut the power during (or right after) a recovery of the image, recover again, and judge;
/// `levels` times, each cut during the recovery of the image the previous cut left.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the check's inputs"
)]
fn crashes_during_recovery<S: Subject>(
    config: &S::Config,
    history: &History,
    crash: Crash,
    rules: Rules,
    mut point: CrashPoint,
    levels: u32,
    damage: Option<&Damage>,
    rng: &mut ChaCha8Rng,
) -> Option<String> {
    // The engine died at the first crash: promises bind that matured by then, and every later
    // crash is a power cut, whatever the first was.
    let as_power_cut = Crash { kind: CrashKind::PowerCut, ..crash };
    for level in 1..=levels {
        // What a clean recovery of this image returns, and how many operations it takes.
        let dry = point.process_crash(InFlight::Skipped);
        let first = match state_of::<S>(dry.clone(), config) {
            Ok((_, s)) => s,
            // Unavailable, said so: nothing served, nothing to lose.
            Err(e) if !e.message.contains("panicked") && storage_refused(&dry) => return None,
            Err(e) => return Some(format!("level {level}: recovery failed: {e}")),
        };
        let cut = rng.random_range(1..=dry.op_count() + 1);
        let copy = point.process_crash(InFlight::Skipped);
        copy.arm_power_cut(cut);
        let completed = S::open(copy.clone(), config).is_ok();
        let cut_point = if completed {
            copy.crash_point_now() // recovery finished before the cut: cut right after it
        } else {
            copy.take_crash_points().pop()?
        };
        let space = cut_point.power_cut_space();
        let image = space.materialize(&space.sample(rng));
        point = image.crash_point_now();
        let state = match state_of::<S>(image.clone(), config) {
            Ok((_, s)) => s,
            Err(e) if !e.message.contains("panicked") && storage_refused(&image) => return None,
            Err(e) => {
                return Some(format!(
                    "level {level}: recovery after a power cut at recovery op {cut} failed: {e}"
                ));
            }
        };
        if completed && state != first {
            return Some(format!(
                "level {level}: recovery returned {} keys, and a power cut right after it left {} \
                 ({}): what recovery returns must be durable",
                first.len(),
                state.len(),
                first_difference(&first, &state)
            ));
        }
        let (violations, _) = history.judge(as_power_cut, rules, &state, damage);
        if let Some((class, m)) = violations.first() {
            return Some(format!(
                "level {level}: after a power cut at recovery op {cut}: {class}: {m}"
            ));
        }
    }
    None
}

/// What a write made after recovery needs of a reopen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Acknowledged `Durable`: it survives anything.
    Durable,
    /// Acknowledged, promising less (`By`, `Writeback`) with this id: it survives a kill -9, and
    /// a power cut once a `durable_through` covered it.
    Acked(u64),
    /// Acknowledged `Queued` with this id: it lived in the process until a `durable_through`
    /// covered it.
    Queued(u64),
    /// It failed (or a crash cut it short): it may or may not have happened.
    Maybe,
}

/// A write made after recovery: key, value, and what it needs.
type AfterWrite = (Vec<u8>, Vec<u8>, Need);

/// The writes made after a recovery, and what a reopen may show for them.
struct AfterRecovery {
    /// The recovered state they were made on.
    base: State,
    /// The writes in order.
    writes: Vec<AfterWrite>,
    /// The highest `durable_through` reported.
    covered: u64,
}

impl AfterRecovery {
    fn new(base: State) -> AfterRecovery {
        AfterRecovery { base, writes: Vec::new(), covered: 0 }
    }

    fn record(&mut self, key: &[u8], value: &[u8], result: &Result<Ack, SubjectError>) {
        let need = match result {
            Ok(ack) => {
                self.covered = self.covered.max(ack.durable_through);
                match ack.promise {
                    Promise::Durable => Need::Durable,
                    Promise::Queued => Need::Queued(ack.seq),
                    Promise::By(_) | Promise::Writeback => Need::Acked(ack.seq),
                }
            }
            Err(_) => Need::Maybe,
        };
        self.writes.push((key.to_vec(), value.to_vec(), need));
    }

    /// Must this write survive a kill -9 (`power`: a power cut)? Promises bind as written; a
    /// write promised only by a time or by writeback is held to a power cut only once a
    /// `durable_through` covered it (a lenient reading: never a false alarm).
    fn required(&self, need: Need, power: bool) -> bool {
        match need {
            Need::Durable => true,
            Need::Acked(seq) => !power || seq <= self.covered,
            Need::Queued(seq) => seq <= self.covered,
            Need::Maybe => false,
        }
    }

    /// Does `again` hold, for each key, the value of its last write that had to survive, or of a
    /// later one that may have (or, with none that had to, the recovered value or any written)?
    /// The class and what is wrong if not: a value nothing wrote is `validity`, a write or
    /// recovered value missing `durability`.
    fn explains(&self, again: &State, power: bool) -> Result<(), (Class, String)> {
        if self.writes.is_empty() {
            return if *again == self.base {
                Ok(())
            } else {
                Err((Class::Durability, first_difference(&self.base, again)))
            };
        }
        let mut keys: BTreeSet<&[u8]> = self.base.keys().collect();
        keys.extend(self.writes.iter().map(|(k, _, _)| k.as_slice()));
        for key in keys {
            let mine: Vec<_> = self.writes.iter().filter(|(k, _, _)| k == key).collect();
            let last_required = mine.iter().rposition(|(_, _, n)| self.required(*n, power));
            let got = again.get(key);
            let ok = match last_required {
                Some(i) => mine[i..].iter().any(|(_, v, _)| got == Some(v.as_slice())),
                None => got == self.base.get(key) || mine.iter().any(|(_, v, _)| got == Some(v)),
            };
            if !ok {
                let shown = String::from_utf8_lossy(key);
                let known =
                    got == self.base.get(key) || mine.iter().any(|(_, v, _)| got == Some(v));
                return Err(match got {
                    None => (Class::Durability, format!("{shown} missing")),
                    Some(_) if known => (Class::Durability, format!("{shown} differs")),
                    Some(_) => (Class::Validity, format!("{shown} has a value nothing wrote")),
                });
            }
        }
        match again
            .keys()
            .find(|k| !self.base.contains_key(k) && !self.writes.iter().any(|w| w.0 == *k))
        {
            Some(k) => Err((Class::Validity, format!("{} appeared", String::from_utf8_lossy(k)))),
            None => Ok(()),
        }
    }
}

/// Generations 2..=`faults.generations`: open `image` again (its recovery gave `base`), make
/// `generation_writes` writes, and crash at a random filesystem operation of that run — the
/// recovery included — with the first crash's kind; recover and judge the writes acknowledged
/// before the cut, as promised, on top of `base`. The image left starts the next generation.
fn later_generations<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    (mut image, mut base): (SimFs, State),
    kind: CrashKind,
    rng: &mut ChaCha8Rng,
) -> Option<(Class, String)> {
    let f = &scenario.faults;
    let power = kind == CrashKind::PowerCut;
    let kind = kind.name();
    for generation in 2..=f.generations {
        let fs = image.crash_point_now().process_crash(InFlight::Skipped);
        // One crash point, uniform over the run's operations (reservoir sampling as it goes).
        let mut pick = ChaCha8Rng::seed_from_u64(rng.random());
        let mut seen = 0u64;
        fs.capture_with(move |_, _| {
            seen += 1;
            match pick.random_range(0..seen) {
                0 if seen == 1 => Capture::Keep,
                0 => Capture::Replace,
                _ => Capture::Skip,
            }
        });
        let refused =
            |e: &SubjectError, fs: &SimFs| !e.message.contains("panicked") && storage_refused(fs);
        let mut subject = match S::open(fs.clone(), config) {
            Ok(s) => s,
            Err(e) if refused(&e, &fs) => return None,
            Err(e) => {
                let m = format!("generation {generation}: opening the recovered state failed: {e}");
                return Some((Class::Validity, m));
            }
        };
        // (key, value, result, filesystem operations before it, after it)
        let mut made = Vec::new();
        let mut key = Vec::new();
        for w in 0..f.generation_writes {
            workload::write_key(&mut key, rng.random_range(0..scenario.workload.keys));
            let value = value_bytes((u64::from(generation) << 40) + u64::from(w), 16);
            let before = fs.op_count();
            let result = subject.put(&key, &value);
            let cut = matches!(&result, Err(e) if e.power_cut);
            made.push((key.clone(), value, result, before, fs.op_count()));
            if cut {
                break;
            }
        }
        drop(subject);
        fs.clear_capture_policy();
        // Or right after the run: one more choice among its operations.
        let ops = fs.op_count();
        let point = match fs.take_crash_points().pop() {
            Some(p) if rng.random_range(0..=ops) < ops => p,
            _ => fs.crash_point_now(),
        };
        // Operations before `cut` ran and `cut` was in flight: a write whose operations all ran
        // stands as acknowledged, one that had not started never happened, one across the cut
        // may have.
        let cut = point.op();
        let mut judged = AfterRecovery::new(base.clone());
        for (key, value, result, before, after) in &made {
            if *after < cut {
                judged.record(key, value, result);
            } else if *before < cut {
                judged.writes.push((key.clone(), value.clone(), Need::Maybe));
            }
        }
        let next = if power {
            let space = point.power_cut_space();
            space.materialize(&space.sample(rng))
        } else {
            let fates = point.process_crash_fates();
            point.process_crash(fates[rng.random_range(0..fates.len())])
        };
        let state = match state_of::<S>(next.clone(), config) {
            Ok((_, state)) => state,
            Err(e) if refused(&e, &next) => return None,
            Err(e) => {
                let m = format!(
                    "generation {generation}: recovery after a {kind} at operation {cut} failed: {e}"
                );
                return Some((Class::Validity, m));
            }
        };
        if let Err((class, what)) = judged.explains(&state, power) {
            let acked = judged.writes.iter().filter(|w| w.2 != Need::Maybe).count();
            return Some((
                class,
                format!(
                    "generation {generation}: a {kind} at operation {cut} of its run, after {acked} \
                     of its {} writes were acknowledged, left {} keys ({what})",
                    made.len(),
                    state.len()
                ),
            ));
        }
        (image, base) = (next, state);
    }
    None
}

fn first_difference(a: &State, b: &State) -> String {
    for (k, v) in a {
        match b.get(k) {
            None => return format!("{} missing", String::from_utf8_lossy(k)),
            Some(w) if w != v => return format!("{} differs", String::from_utf8_lossy(k)),
            _ => {}
        }
    }
    match b.keys().find(|k| !a.contains_key(k)) {
        Some(k) => format!("{} appeared", String::from_utf8_lossy(k)),
        None => "same".into(),
    }
}
