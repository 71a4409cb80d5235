//! Exploring a trace: replay it into SimFs with a crash point at every operation, draw crash
//! states from each with the same persistence profile and knobs as any powercut run, keep the
//! distinct ones, materialize each into a directory, run the user's check on it, and judge.
//!
//! The oracle. Acknowledgement texts that are JSON objects (`{"key": "value", "gone": null}`)
//! are atomic groups of puts and deletes; S_0 is what the check prints for the directory as it
//! was before the program ran, S_i that plus the first i groups. At a crash point after `a`
//! acknowledgements, a state the check prints must be some S_j with j >= a (the acknowledged
//! groups survived, and any later ones in flight may have) — or with `--promise none`, any S_j.
//! A check that exits non-zero, hangs past its timeout or prints what no S_j holds fails.

use super::server::Servers;
use super::trace::{Trace, TraceOp};
use faultfs::{
    CrashPoint, CrashState, Dropped, EioSemantics, Fault, FaultPlan, InFlight, OpenOptions,
    Profile, SimConfig, SimFile, SimFs, Vfs, VfsFile, image_hash,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What an acknowledgement promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// Acknowledged groups survive a power cut.
    Durable,
    /// Nothing: a recovered state need only be some prefix of the history.
    None,
}

/// How to explore.
#[derive(Clone, Debug)]
pub struct Options {
    /// The persistence profile: what a power cut may drop, tear or reorder. The trace is replayed
    /// with it ([`replay`]).
    pub profile: Profile,
    /// Seed of the replay, of the sampled power-cut states and of the random choice of states
    /// when there are more than `budget`.
    pub seed: u64,
    /// Most distinct crash states checked.
    pub budget: usize,
    /// Distinct states enumerated per crash point (nearest "nothing landed" first).
    pub per_point: u64,
    /// Seeded random states drawn per crash point, beside the enumerated ones.
    pub sampled: u32,
    /// How a crash state is checked.
    pub check: Check,
    /// A check running longer than this is killed, with its process group, and judged a hang.
    pub timeout: Duration,
    /// Check processes run at once (0 counts as 1).
    pub jobs: usize,
    /// What an acknowledgement promises after a power cut (a process crash is always judged as
    /// [`Promise::Durable`]).
    pub promise: Promise,
    /// Power cuts: unsynced state dropped, torn, reordered as the profile allows.
    pub power: bool,
    /// Process crashes (kill -9): the page cache survives, the operation in flight is skipped,
    /// applied or (a write) cut at a sector boundary. Every acknowledged group must survive one,
    /// whatever `promise` says.
    pub kill: bool,
    /// Give up shrinking after this many check runs.
    pub shrink_runs: usize,
    /// Where crash states are materialized (each in its own subdirectory, removed after).
    pub scratch: PathBuf,
}

/// How a crash state is checked.
#[derive(Clone, Debug)]
pub enum Check {
    /// A command run once per state, `{dir}` standing for its directory.
    Command(String),
    /// A long-lived command answering for one directory per line ([`super::server`]).
    Server(String),
}

/// Runs the check on a directory, whichever kind it is.
#[derive(Debug)]
pub enum Checker {
    /// A process per state.
    Command(String, Duration),
    /// A check server per job.
    Server(Servers),
}

impl Checker {
    /// The checker for `o`, its servers' files in `o.scratch` (which must exist).
    pub fn new(o: &Options) -> Checker {
        match &o.check {
            Check::Command(c) => Checker::Command(c.clone(), o.timeout),
            Check::Server(c) => Checker::Server(Servers::new(c, o.timeout, &o.scratch)),
        }
    }

    /// Check the state in `dir`.
    pub fn run(&self, dir: &Path) -> Result<CheckRun, String> {
        match self {
            Checker::Command(c, timeout) => run_check(c, dir, *timeout),
            Checker::Server(s) => s.check(dir),
        }
    }
}

/// The trace replayed: a crash point at every file operation.
pub struct Replayed {
    /// (crash point, index of the trace operation in flight (`ops.len()`: after the last), acks
    /// completed before it).
    pub points: Vec<(CrashPoint, usize, usize)>,
}

impl std::fmt::Debug for Replayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replayed({} crash points)", self.points.len())
    }
}

/// Replay `trace` into a SimFs with `profile`, capturing a crash point as each operation starts
/// and one after the last. An fsync that failed in the trace fails in SimFs too, with `linux`
/// semantics (the dirty pages are marked clean and never reach the disk).
pub fn replay(trace: &Trace, profile: &Profile, seed: u64) -> Result<Replayed, String> {
    let fs = SimFs::new(SimConfig::new(profile.clone()).seed(seed));
    let err = |i: usize, e: std::io::Error| {
        format!("trace operation {} ({:?}): {e}", i + 1, trace.ops[i])
    };
    // The starting tree, all durable: directories (parents first), links, files; then every
    // directory synced, the deepest first.
    let mut dirs = vec![String::new()];
    for (i, op) in trace.ops.iter().enumerate() {
        match op {
            TraceOp::InitialDir { name } => {
                fs.create_dir(name).map_err(|e| err(i, e))?;
                dirs.push(name.clone());
            }
            TraceOp::InitialSymlink { name, target } => {
                fs.symlink(target, name).map_err(|e| err(i, e))?;
            }
            TraceOp::Initial { name, data, len } => {
                let f = fs.open(name, OpenOptions::create()).map_err(|e| err(i, e))?;
                f.write_all_at(&data.0, 0).map_err(|e| err(i, e))?;
                match *len {
                    Some(len) if len < data.0.len() as u64 => {
                        return Err(format!(
                            "trace operation {}: initial {name}: len {len} is shorter than its {} \
                             bytes of data",
                            i + 1,
                            data.0.len()
                        ));
                    }
                    Some(len) => f.set_len(len).map_err(|e| err(i, e))?,
                    None => {}
                }
                f.sync_all().map_err(|e| err(i, e))?;
            }
            _ => {}
        }
    }
    if trace.ops.iter().any(|o| {
        matches!(
            o,
            TraceOp::Initial { .. } | TraceOp::InitialDir { .. } | TraceOp::InitialSymlink { .. }
        )
    }) {
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for d in &dirs {
            fs.sync_dir_at(d).map_err(|e| format!("initial directory {d:?}: {e}"))?;
        }
    }
    let first = fs.op_count() + 1;
    fs.capture_at(first..first + trace.ops.len() as u64 + 1);
    let mut faults = FaultPlan::none().semantics(EioSemantics::Linux);
    let mut files: BTreeMap<u32, SimFile> = BTreeMap::new();
    let mut at_op: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut acks = 0usize;
    for (i, op) in trace.ops.iter().enumerate() {
        // The operation in flight at a crash point is the next one SimFs numbers: an
        // acknowledgement, a close or a listing is not one.
        if !matches!(
            op,
            TraceOp::Ack { .. }
                | TraceOp::Close { .. }
                | TraceOp::Initial { .. }
                | TraceOp::InitialDir { .. }
                | TraceOp::InitialSymlink { .. }
                | TraceOp::List { .. }
        ) {
            at_op.entry(fs.op_count() + 1).or_insert((i, acks));
        }
        let file = |f: &u32| {
            files.get(f).ok_or_else(|| format!("trace operation {}: file {f} is not open", i + 1))
        };
        match op {
            TraceOp::Initial { .. }
            | TraceOp::InitialDir { .. }
            | TraceOp::InitialSymlink { .. }
            | TraceOp::List { .. } => {}
            TraceOp::Mkdir { name } => fs.create_dir(name).map_err(|e| err(i, e))?,
            TraceOp::Rmdir { name } => fs.remove_dir(name).map_err(|e| err(i, e))?,
            TraceOp::Symlink { target, name } => fs.symlink(target, name).map_err(|e| err(i, e))?,
            TraceOp::Ack { .. } => acks += 1,
            TraceOp::Open { file, name, create, excl, truncate, sync } => {
                let options = OpenOptions {
                    create: *create || *excl,
                    create_new: *excl,
                    truncate: *truncate,
                    sync: (*sync).into(),
                };
                files.insert(*file, fs.open(name, options).map_err(|e| err(i, e))?);
            }
            TraceOp::Write { file: f, offset, data } => {
                file(f)?.write_all_at(&data.0, *offset).map_err(|e| err(i, e))?
            }
            TraceOp::SetLen { file: f, len } => file(f)?.set_len(*len).map_err(|e| err(i, e))?,
            TraceOp::Fsync { file: f } => file(f)?.sync_all().map_err(|e| err(i, e))?,
            TraceOp::Fdatasync { file: f } => file(f)?.sync_data().map_err(|e| err(i, e))?,
            TraceOp::SyncDir { dir } => fs.sync_dir_at(dir).map_err(|e| err(i, e))?,
            TraceOp::SyncFailed { file: f, dir } => {
                // The worst case: nothing the failed fsync was writing reached the disk.
                faults = faults.at(fs.op_count() + 1, Fault::SyncEio);
                faults.eio_persists_nothing = true;
                fs.set_faults(faults.clone());
                let result = match f {
                    Some(f) => file(f)?.sync_all(),
                    None => fs.sync_dir_at(dir),
                };
                if result.is_ok() {
                    return Err(format!(
                        "trace operation {}: the injected fsync failure did not fire",
                        i + 1
                    ));
                }
            }
            TraceOp::Rename { from, to } => fs.rename(from, to).map_err(|e| err(i, e))?,
            TraceOp::Remove { name } => fs.remove(name).map_err(|e| err(i, e))?,
            TraceOp::Link { from, to } => fs.link(from, to).map_err(|e| err(i, e))?,
            TraceOp::Close { file } => {
                files.remove(file);
            }
        }
    }
    let mut points: Vec<(CrashPoint, usize, usize)> = fs
        .take_crash_points()
        .into_iter()
        .filter_map(|p| at_op.get(&p.op()).map(|(i, a)| (p, *i, *a)))
        .collect();
    points.push((fs.crash_point_now(), trace.ops.len(), acks));
    Ok(Replayed { points })
}

/// How a crash state came about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Crash {
    /// A power cut, with the fate of every piece of unsynced state.
    Power(CrashState),
    /// A process crash, with what became of the operation in flight.
    Kill(InFlight),
}

/// One crash state to judge: a point (index into `Replayed::points`), the crash there, and a
/// hash of the image it leaves (states with equal images share one check run).
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Index into [`Replayed::points`].
    pub point: usize,
    /// The crash at that point.
    pub crash: Crash,
    /// Hash of the crash image it leaves (`faultfs::image_hash`).
    pub image: u64,
}

/// The distinct crash states of a replayed trace, at most `budget`: first every process crash
/// and the "nothing landed" and "everything landed" power cuts of every point, then the
/// enumerated and sampled power cuts, a seeded random choice when there are more than the
/// budget; in crash-point order. A state is distinct by its image and by what the oracle
/// expects of it there (the acknowledgements before its point, when they promise anything):
/// an image that passes after one acknowledgement can fail after two. Also returns the
/// candidates generated.
pub fn states(replayed: &Replayed, o: &Options) -> (Vec<Candidate>, u64) {
    let mut seen = BTreeSet::new();
    let mut prefix = Vec::new();
    let mut rest = Vec::new();
    let mut generated = 0u64;
    for (pi, (point, _, acked)) in replayed.points.iter().enumerate() {
        let expects = |kill: bool| {
            if kill || o.promise == Promise::Durable { *acked } else { usize::MAX }
        };
        if o.kill {
            for fate in point.process_crash_fates() {
                generated += 1;
                let image = image_hash(&point.process_crash(fate));
                if seen.insert((image, expects(true))) {
                    prefix.push(Candidate { point: pi, crash: Crash::Kill(fate), image });
                }
            }
        }
        if !o.power {
            continue;
        }
        let space = point.power_cut_space();
        let mut add = |state: CrashState, image: Option<SimFs>, generated: &mut u64| {
            *generated += 1;
            let image = image_hash(&image.unwrap_or_else(|| space.materialize(&state)));
            if seen.insert((image, expects(false))) {
                let is_prefix =
                    state == space.nothing_landed() || state == space.everything_landed();
                let c = Candidate { point: pi, crash: Crash::Power(state), image };
                if is_prefix { prefix.push(c) } else { rest.push(c) }
            }
        };
        let mut found = Vec::new();
        space.explore(o.per_point, |s, image| found.push((s.clone(), image)));
        for (s, image) in found {
            add(s, Some(image), &mut generated);
        }
        let mut rng =
            ChaCha8Rng::seed_from_u64(o.seed ^ (pi as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for _ in 0..o.sampled {
            add(space.sample(&mut rng), None, &mut generated);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    for list in [&mut prefix, &mut rest] {
        list.shuffle(&mut rng);
    }
    let mut chosen: Vec<Candidate> = prefix.into_iter().chain(rest).take(o.budget).collect();
    chosen.sort_by_key(|c| c.point);
    (chosen, generated)
}

/// What one check run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    /// The exit code; `None` when a signal ended the check (the kill at the timeout included).
    pub exit: Option<i32>,
    /// The check ran past its timeout and was killed.
    pub timed_out: bool,
    /// What the check printed to stdout, up to its first 1 MiB; empty if that is not UTF-8.
    pub stdout: String,
    /// What the check printed to stderr, up to its first 1 MiB; empty if that is not UTF-8.
    pub stderr: String,
    /// A check server's answer broke the protocol (or it exited without one): the state was not
    /// judged, and that is a `check-output` failure.
    pub protocol_error: Option<String>,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Write `image` into a fresh directory `dir`: its directories, files and symbolic links.
pub fn materialize_into(image: &SimFs, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for sub in image.dir_names() {
        let path = dir.join(&sub);
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for name in image.names() {
        let path = dir.join(&name);
        if let Some(target) = image.link_target(&name) {
            std::os::unix::fs::symlink(&target, &path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            continue;
        }
        let data = image.contents(&name).unwrap_or_default();
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Run the check command on `dir`, killing its process group at the timeout.
pub fn run_check(check: &str, dir: &Path, timeout: Duration) -> Result<CheckRun, String> {
    use std::os::unix::process::CommandExt;
    let command = check.replace("{dir}", &shell_quote(&dir.display().to_string()));
    let out = dir.with_extension("out");
    let err = dir.with_extension("err");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdin(Stdio::null())
        .stdout(file(&out)?)
        .stderr(file(&err)?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("sh -c {command:?}: {e}"))?;
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting for the check: {e}"))? {
            break (Some(status), false);
        }
        if start.elapsed() > timeout {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    };
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = std::fs::File::open(p)
            .and_then(|mut f| f.by_ref().take(1 << 20).read_to_string(&mut s));
        let _ = std::fs::remove_file(p);
        s
    };
    Ok(CheckRun {
        exit: status.and_then(|s| s.code()),
        timed_out,
        stdout: read(&out),
        stderr: read(&err),
        protocol_error: None,
    })
}

/// A key → value state (`None`: absent).
type KvState = BTreeMap<String, String>;

/// The oracle's view of the acknowledgements.
#[derive(Clone, Debug)]
pub struct History {
    /// Each acknowledged group: key → new value (`None`: deleted). Empty when the acks are not
    /// JSON (then only the check's exit status is judged).
    pub groups: Vec<BTreeMap<String, Option<String>>>,
    /// There is at least one acknowledgement and every one is a JSON object, so the state the
    /// check prints is judged; otherwise only its exit status is.
    pub judges_state: bool,
    /// The program changed files after its last acknowledgement (it died mid-operation, say):
    /// that operation is in flight at every later crash point but was never acknowledged, so
    /// its keys are unknown and a key no acknowledgement names is not judged there.
    pub unacknowledged_tail: bool,
}

impl History {
    /// Read the acknowledgements of `trace`: all JSON objects (state is judged), or none.
    pub fn of(trace: &Trace) -> Result<History, String> {
        let texts: Vec<&String> = trace
            .ops
            .iter()
            .filter_map(|o| if let TraceOp::Ack { text } = o { Some(text) } else { None })
            .collect();
        let parsed: Vec<Option<BTreeMap<String, Option<String>>>> =
            texts.iter().map(|t| serde_json::from_str(t).ok()).collect();
        let good = parsed.iter().filter(|p| p.is_some()).count();
        if good > 0 && good < parsed.len() {
            let bad = parsed.iter().position(Option::is_none).unwrap_or(0);
            return Err(format!(
                "acknowledgement {} ({:?}) is not a JSON object of key -> string or null, but others are",
                bad + 1,
                texts[bad]
            ));
        }
        let last_ack = trace.ops.iter().rposition(|o| matches!(o, TraceOp::Ack { .. }));
        let unacknowledged_tail = trace.ops[last_ack.map_or(0, |i| i + 1)..].iter().any(|o| {
            matches!(
                o,
                TraceOp::Write { .. }
                    | TraceOp::SetLen { .. }
                    | TraceOp::Rename { .. }
                    | TraceOp::Remove { .. }
            )
        });
        Ok(History {
            judges_state: good > 0,
            groups: parsed.into_iter().flatten().collect(),
            unacknowledged_tail,
        })
    }

    fn states(&self, base: &KvState) -> Vec<KvState> {
        let mut out = vec![base.clone()];
        for g in &self.groups {
            let mut s = out.last().cloned().unwrap_or_default();
            for (k, v) in g {
                match v {
                    Some(v) => s.insert(k.clone(), v.clone()),
                    None => s.remove(k),
                };
            }
            out.push(s);
        }
        out
    }
}

/// Parse a check's stdout as key/value JSON lines.
pub fn parse_state(stdout: &str) -> Result<KvState, String> {
    let mut state = KvState::new();
    for (i, line) in stdout.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("check output line {}: {e}: {line}", i + 1))?;
        match (v.get("key").and_then(|k| k.as_str()), v.get("value").and_then(|k| k.as_str())) {
            (Some(k), Some(val)) => {
                state.insert(k.to_string(), val.to_string());
            }
            _ => {
                return Err(format!(
                    "check output line {}: expected {{\"key\": string, \"value\": string}}: {line}",
                    i + 1
                ));
            }
        }
    }
    Ok(state)
}

/// The last `n` lines of `text`, joined by ` | ` (what a failure shows of a program's stderr).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// A failed check, classed like powercut's own checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `durability`, `validity`, `ordering`, `recovery-failed`, `hang` or `check-output`.
    pub class: &'static str,
    /// What was wrong, in words (naming the key, for `validity` and `durability`).
    pub why: String,
}

/// Judge one check run at a point after `acked` acknowledgements.
pub fn judge(
    run: &CheckRun,
    history: &History,
    expected: &[KvState],
    acked: usize,
    promise: Promise,
) -> Option<Verdict> {
    if run.timed_out {
        return Some(Verdict {
            class: "hang",
            why: "the check did not finish before its timeout".into(),
        });
    }
    if let Some(e) = &run.protocol_error {
        return Some(Verdict { class: "check-output", why: e.clone() });
    }
    if run.exit != Some(0) {
        let tail = last_lines(&run.stderr, 3);
        return Some(Verdict {
            class: "recovery-failed",
            why: match run.exit {
                Some(code) => format!("the check exited with code {code}: {tail}"),
                None => format!("the check was killed by a signal: {tail}"),
            },
        });
    }
    if !history.judges_state {
        return None;
    }
    let mut observed = match parse_state(&run.stdout) {
        Ok(s) => s,
        Err(e) => return Some(Verdict { class: "check-output", why: e }),
    };
    if history.unacknowledged_tail && acked >= history.groups.len() {
        observed.retain(|k, _| {
            expected.iter().any(|s| s.contains_key(k))
                || history.groups.iter().any(|g| g.contains_key(k))
        });
    }
    let from = if promise == Promise::Durable { acked.min(expected.len() - 1) } else { 0 };
    if expected[from..].contains(&observed) {
        return None;
    }
    let keys: BTreeSet<&String> =
        expected.iter().flat_map(|s| s.keys()).chain(observed.keys()).collect();
    for k in &keys {
        let got = observed.get(*k);
        if !expected.iter().any(|s| s.get(*k) == got) {
            let got = got.map_or("absent".to_string(), |v| format!("{v:?}"));
            return Some(Verdict {
                class: "validity",
                why: format!("key {k:?} is {got}, which no acknowledged history gives"),
            });
        }
    }
    if promise == Promise::Durable {
        for k in &keys {
            let got = observed.get(*k);
            if !expected[from..].iter().any(|s| s.get(*k) == got) {
                let want =
                    expected[from].get(*k).map_or("absent".to_string(), |v| format!("{v:?}"));
                let got = got.map_or("absent".to_string(), |v| format!("{v:?}"));
                return Some(Verdict {
                    class: "durability",
                    why: format!(
                        "key {k:?} is {got}; after {acked} acknowledgements it must be {want} (or a later value)"
                    ),
                });
            }
        }
        // Every key's value is one it may hold, but only because a later write gives it again:
        // the state is an earlier point of the history, an acknowledged write lost.
        if let Some(p) = expected[..from].iter().rposition(|s| *s == observed) {
            return Some(Verdict {
                class: "durability",
                why: format!(
                    "the state is the history after {p} acknowledgements, but {acked} were \
                     acknowledged (a later write gives the lost values again)"
                ),
            });
        }
    }
    Some(Verdict {
        class: "ordering",
        why: "every value was written, but the state is no prefix of the acknowledged history"
            .into(),
    })
}

/// A failing crash state.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Index into [`Replayed::points`] of the crash point.
    pub point: usize,
    /// The crash state, as `<crash point op>:<encoded state>`.
    pub id: String,
    /// How it failed.
    pub verdict: Verdict,
    /// The check run that failed.
    pub run: CheckRun,
    /// What the crash dropped (pieces and directory operations not landed).
    pub dropped: Vec<String>,
}

/// Everything an exploration found.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Crash points in the replayed trace.
    pub points: usize,
    /// Crash states generated, before duplicates were dropped and the budget applied.
    pub candidates: u64,
    /// States judged.
    pub checked: usize,
    /// Check processes run (states with equal images share one).
    pub check_runs: usize,
    /// Every failing state judged, in crash-point order.
    pub failures: Vec<Failure>,
    /// The earliest power-cut failure shrunk to the fewest dropped units (else the first failure
    /// as it is); and the check runs it took. (It is also its group's representative.)
    pub shrunk: Option<(Failure, usize)>,
    /// Every distinct failure: the failures grouped by [`Signature`], in order of first
    /// occurrence.
    pub groups: Vec<Group>,
    /// The states that passed, one per distinct image, in crash-point order: where a later
    /// generation may start.
    pub passed: Vec<Passed>,
    /// Wall-clock seconds the exploration took (the replay not included).
    pub seconds: f64,
    /// Time inside check processes, summed over runs (can exceed `seconds` with several jobs).
    pub check_seconds: f64,
}

/// A crash state that passed its check.
#[derive(Clone, Debug)]
pub struct Passed {
    /// Index into [`Replayed::points`].
    pub point: usize,
    /// The crash.
    pub crash: Crash,
    /// Its id ([`state_id`]).
    pub id: String,
    /// The crash left something recovery had to step over: a torn or garbage write, or a write
    /// cut short by a process crash.
    pub left_debris: bool,
}

/// What tells one failure from another: how the check failed and what kind of thing the crash
/// dropped. Two states that fail with the same signature are taken for one bug.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature {
    /// The verdict's class.
    pub class: &'static str,
    /// The check's exit code (`None`: killed, the timeout's kill included).
    pub exit: Option<i32>,
    /// The check's last non-empty stderr line, with the state's directory written `{dir}`,
    /// hex runs of 7 or more as `<hex>` and other numbers as `N`.
    pub stderr: String,
    /// What was dropped, by kind: `nothing` (everything landed, or a process crash: the page
    /// cache survived), `data cut short` (a process crash in the middle of a write), or the
    /// sorted kinds of dropped units (`data lost`, `size lost`, `set_len lost`, `data torn`, `data garbage`, and a directory
    /// operation by its verb: `mkdir lost`, `rename lost`, ...).
    pub dropped: String,
}

impl Signature {
    /// How the check failed, without what was dropped: what shrinking keeps.
    pub fn behaviour(&self) -> (&'static str, Option<i32>, &str) {
        (self.class, self.exit, &self.stderr)
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exit = match self.exit {
            Some(code) => format!("check exit code {code}"),
            None => "check killed".into(),
        };
        write!(f, "{}, {exit}", self.class)?;
        if !self.stderr.is_empty() {
            write!(f, ", stderr {:?}", self.stderr)?;
        }
        write!(f, "; dropped: {}", self.dropped)
    }
}

/// The last non-empty line of `stderr`, normalized so that the same failure in another state
/// reads the same (see [`Signature::stderr`]).
fn normalize_stderr(stderr: &str, scratch: &Path) -> String {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let scratch = scratch.display().to_string();
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    // The state's directory: `<scratch>/state-<n>`.
    while let Some(at) = rest.find(&scratch) {
        out.push_str(&rest[..at]);
        let after = &rest[at + scratch.len()..];
        let digits = after
            .strip_prefix("/state-")
            .map_or(0, |d| "/state-".len() + d.chars().take_while(char::is_ascii_digit).count());
        out.push_str("{dir}");
        rest = &after[digits..];
    }
    out.push_str(rest);
    let mut normalized = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        let word_start = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let word_end = chars.get(i + run).is_none_or(|c| !c.is_ascii_alphanumeric());
        if run >= 7 && word_start && word_end {
            normalized.push_str("<hex>");
            i += run;
        } else if chars[i].is_ascii_digit() && word_start {
            let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            normalized.push('N');
            i += digits;
        } else {
            normalized.push(chars[i]);
            i += 1;
        }
    }
    normalized
}

/// The kinds of units a crash dropped, from [`Failure::dropped`]'s lines.
fn dropped_kinds(f: &Failure, kill: bool) -> String {
    if kill {
        // The page cache survived: nothing was lost, unless the write in flight was cut short.
        return if f.id.contains("kill-partial") { "data cut short" } else { "nothing" }.into();
    }
    let mut kinds = std::collections::BTreeSet::new();
    for line in &f.dropped {
        let (what, fate) = line.rsplit_once(": ").unwrap_or((line, ""));
        let fate = fate.split([' ', '(']).next().unwrap_or("");
        // "<file>: op #N <what>" or "directory: op #N <verb> <names>".
        let what = what.split_once(" op #").map_or(what, |(_, w)| w);
        let verb = what.split_whitespace().nth(1).unwrap_or("");
        let kind = if line.starts_with("directory:") {
            verb.to_string()
        } else {
            match verb {
                "bytes" => "data".into(),
                other => other.to_string(),
            }
        };
        kinds.insert(format!("{kind} {fate}"));
    }
    if kinds.is_empty() {
        "nothing".into()
    } else {
        kinds.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// One distinct failure: its signature, the failures that have it, and its representative,
/// shrunk keeping the signature's behaviour.
#[derive(Clone, Debug)]
pub struct Group {
    /// What the failures have in common.
    pub signature: Signature,
    /// Indexes into [`Exploration::failures`].
    pub failures: Vec<usize>,
    /// The representative (its first power-cut failure, shrunk, else its first failure) and the
    /// check runs shrinking took; `None` when the group was past the shrinking limit.
    pub shrunk: Option<(Failure, usize)>,
}

/// Shrinking all groups may take this many times `shrink_runs` check runs in all; past that,
/// failures are grouped unshrunk.
pub const SHRUNK_GROUPS: usize = 8;

/// A state's id: the crash point's operation number, then the encoded power-cut state
/// (`CrashSpace::encode`) or `kill-skipped`, `kill-applied`, `kill-partial-<bytes>`.
pub fn state_id(replayed: &Replayed, point: usize, crash: &Crash) -> String {
    let p = &replayed.points[point].0;
    let what = match crash {
        Crash::Power(state) => p.power_cut_space().encode(state),
        Crash::Kill(InFlight::Skipped) => "kill-skipped".into(),
        Crash::Kill(InFlight::Applied) => "kill-applied".into(),
        Crash::Kill(InFlight::Partial { bytes }) => format!("kill-partial-{bytes}"),
    };
    format!("{}:{what}", p.op())
}

/// Find the crash point and crash an id names.
pub fn find_state(replayed: &Replayed, id: &str) -> Result<(usize, Crash), String> {
    let (op, encoded) =
        id.split_once(':').ok_or_else(|| format!("state {id:?}: expected <op>:<state>"))?;
    let op: u64 =
        op.parse().map_err(|_| format!("state {id:?}: {op:?} is not an operation number"))?;
    let point = replayed
        .points
        .iter()
        .position(|(p, _, _)| p.op() == op)
        .ok_or_else(|| format!("state {id:?}: no crash point at operation {op}"))?;
    let p = &replayed.points[point].0;
    let crash = match encoded {
        "kill-skipped" => Crash::Kill(InFlight::Skipped),
        "kill-applied" => Crash::Kill(InFlight::Applied),
        _ if encoded.starts_with("kill-partial-") => {
            let bytes = encoded["kill-partial-".len()..]
                .parse()
                .map_err(|_| format!("state {id:?}: bad byte count"))?;
            let fate = InFlight::Partial { bytes };
            if !p.process_crash_fates().contains(&fate) {
                return Err(format!("state {id:?}: not a sector boundary of the write in flight"));
            }
            Crash::Kill(fate)
        }
        _ => Crash::Power(
            p.power_cut_space().decode(encoded).map_err(|e| format!("state {id:?}: {e}"))?,
        ),
    };
    Ok((point, crash))
}

/// The crash image a crash at a point leaves.
pub fn image_of(replayed: &Replayed, point: usize, crash: &Crash) -> SimFs {
    let p = &replayed.points[point].0;
    match crash {
        Crash::Power(state) => p.power_cut_space().materialize(state),
        Crash::Kill(fate) => p.process_crash(*fate),
    }
}

/// Names each shrinking step's state directory apart from every other (a check server that
/// remembers a path must never meet the same path for another state).
static SHRINK_DIRS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Ctx<'a> {
    replayed: &'a Replayed,
    history: History,
    expected: Vec<KvState>,
    o: &'a Options,
    checker: &'a Checker,
}

/// What a check run needs, shareable across the threads that run checks.
struct Judge<'a> {
    history: &'a History,
    expected: &'a [KvState],
    o: &'a Options,
    checker: &'a Checker,
}

impl Judge<'_> {
    /// Run the check on `dir` (then remove it): the run and its seconds.
    fn run(&self, dir: &Path) -> Result<(CheckRun, f64), String> {
        let start = Instant::now();
        let run = self.checker.run(dir);
        let took = start.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(dir);
        Ok((run?, took))
    }

    /// Judge a run for a crash at a point after `acked` acknowledgements.
    fn verdict(&self, run: &CheckRun, acked: usize, crash: &Crash) -> Option<Verdict> {
        // The page cache survives a process crash: every acknowledged group must too.
        let promise =
            if matches!(crash, Crash::Kill(_)) { Promise::Durable } else { self.o.promise };
        judge(run, self.history, self.expected, acked, promise)
    }
}

impl Ctx<'_> {
    /// Materialize a crash into the scratch directory `n` (SimFs images stay on this thread).
    fn prepare(&self, point: usize, crash: &Crash, n: usize) -> Result<PathBuf, String> {
        let dir = self.o.scratch.join(format!("state-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        materialize_into(&image_of(self.replayed, point, crash), &dir)?;
        Ok(dir)
    }

    fn judge(&self) -> Judge<'_> {
        Judge { history: &self.history, expected: &self.expected, o: self.o, checker: self.checker }
    }

    fn check(
        &self,
        point: usize,
        crash: &Crash,
        n: usize,
    ) -> Result<(CheckRun, Option<Verdict>), String> {
        let dir = self.prepare(point, crash, n)?;
        let judge = self.judge();
        let (run, _) = judge.run(&dir)?;
        let verdict = judge.verdict(&run, self.replayed.points[point].2, crash);
        Ok((run, verdict))
    }

    fn failure(&self, point: usize, crash: &Crash, run: CheckRun, verdict: Verdict) -> Failure {
        let p = &self.replayed.points[point].0;
        let dropped = match crash {
            Crash::Power(state) => p
                .power_cut_space()
                .describe(state)
                .into_iter()
                .filter(|l| !l.rsplit(": ").next().unwrap_or("").starts_with("landed"))
                .collect(),
            Crash::Kill(fate) => vec![format!(
                "nothing (a process crash: the page cache survived; the operation in flight, {}, was {})",
                p.describe_in_flight(),
                match fate {
                    InFlight::Skipped => "skipped".to_string(),
                    InFlight::Applied => "applied".to_string(),
                    InFlight::Partial { bytes } => format!("cut after {bytes} bytes"),
                }
            )],
        };
        Failure { point, id: state_id(self.replayed, point, crash), verdict, run, dropped }
    }

    /// Every distinct failure, in order of first occurrence. A power-cut failure is shrunk to
    /// its cause; it starts a group, or joins the group whose shrunk signature (behaviour —
    /// class, exit code, last stderr line — and the kinds of what the cause drops) is its own.
    /// A later failure with a group's behaviour that dropped every unit of one of its causes
    /// joins it without shrinking. Process crashes (nothing to give back) group by their whole
    /// signature; power cuts once the shrinking budget is spent, by behaviour alone, unshrunk.
    fn group(&self, failures: &[Failure], crashes: &[Crash]) -> Result<Vec<Group>, String> {
        // Each group with the shrunk causes it has met (empty: not shrunk).
        let mut groups: Vec<(Group, Vec<Vec<String>>)> = Vec::new();
        let (mut spent, budget) = (0, SHRUNK_GROUPS * self.o.shrink_runs);
        for (i, f) in failures.iter().enumerate() {
            let signature = self.signature(f, matches!(crashes[i], Crash::Kill(_)));
            let same = |g: &Group| g.signature.behaviour() == signature.behaviour();
            let joins = |(g, causes): &(Group, Vec<Vec<String>>)| {
                if !causes.is_empty() {
                    return same(g)
                        && causes.iter().any(|c| c.iter().all(|u| f.dropped.contains(u)));
                }
                match g.shrunk {
                    // Past the shrinking limit a power cut joins the unshrunk group of its
                    // behaviour.
                    None => same(g) && matches!(crashes[i], Crash::Power(_)),
                    Some(_) => g.signature == signature,
                }
            };
            if let Some((g, _)) = groups.iter_mut().find(|g| joins(g)) {
                g.failures.push(i);
                continue;
            }
            match &crashes[i] {
                Crash::Power(state) if spent < budget => {
                    let (rep, runs) = self.shrink(f, state)?;
                    spent += runs.max(1);
                    let signature = self.signature(&rep, false);
                    let cause = rep.dropped.clone();
                    // A new cause of a kind a group already has (another segment's lost
                    // create, say) is that group's.
                    let kind = groups.iter_mut().find(|(g, _)| g.signature == signature);
                    match kind {
                        Some((g, causes)) => {
                            g.failures.push(i);
                            causes.push(cause);
                        }
                        None => {
                            let shrunk = Some((rep, runs));
                            groups.push((
                                Group { signature, failures: vec![i], shrunk },
                                vec![cause],
                            ));
                        }
                    }
                }
                Crash::Kill(_) => {
                    let shrunk = Some((f.clone(), 0));
                    groups.push((Group { signature, failures: vec![i], shrunk }, Vec::new()));
                }
                Crash::Power(_) => {
                    groups.push((Group { signature, failures: vec![i], shrunk: None }, Vec::new()));
                }
            }
        }
        Ok(groups.into_iter().map(|(g, _)| g).collect())
    }

    /// How a check run failed: what shrinking keeps ([`Signature::behaviour`]).
    fn behaviour(
        &self,
        class: &'static str,
        run: &CheckRun,
    ) -> (&'static str, Option<i32>, String) {
        (class, run.exit, normalize_stderr(&run.stderr, &self.o.scratch))
    }

    fn signature(&self, f: &Failure, kill: bool) -> Signature {
        let (class, exit, stderr) = self.behaviour(f.verdict.class, &f.run);
        Signature { class, exit, stderr, dropped: dropped_kinds(f, kill) }
    }

    /// Give dropped units back, half the remaining ones at a time then one by one, keeping each
    /// step that still fails the same way.
    fn shrink(&self, first: &Failure, state: &CrashState) -> Result<(Failure, usize), String> {
        let keep = self.behaviour(first.verdict.class, &first.run);
        let space = self.replayed.points[first.point].0.power_cut_space();
        let mut best = (state.clone(), first.run.clone(), first.verdict.clone());
        let mut runs = 0;
        let mut chunk = space.dropped(state).len().max(1);
        while runs < self.o.shrink_runs {
            let units = space.dropped(&best.0);
            if units.is_empty() {
                break;
            }
            let mut progressed = false;
            for part in units.chunks(chunk.min(units.len())) {
                if runs >= self.o.shrink_runs {
                    break;
                }
                let candidate = space.give_back(&best.0, part as &[Dropped]);
                runs += 1;
                let crash = Crash::Power(candidate.clone());
                let n = SHRINK_DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (run, verdict) = self.check(first.point, &crash, usize::MAX - n)?;
                // The same failure: class, exit code and last stderr line, not just the class.
                let same = |v: &Verdict| self.behaviour(v.class, &run) == keep;
                if let Some(v) = verdict.filter(same) {
                    best = (candidate, run, v);
                    progressed = true;
                    break;
                }
            }
            if !progressed {
                if chunk == 1 {
                    break;
                }
                chunk = chunk.div_ceil(2);
            }
        }
        Ok((self.failure(first.point, &Crash::Power(best.0), best.1, best.2), runs))
    }
}

/// Explore `trace`, replayed as `replayed` (by [`replay`] with `o.profile` and `o.seed`):
/// generate, check and judge its crash states; shrink the first failure. `progress` hears
/// (check runs done, check runs in all) as checks finish.
pub fn explore(
    trace: &Trace,
    replayed: &Replayed,
    o: &Options,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Exploration, String> {
    let start = Instant::now();
    let history = History::of(trace)?;
    let (chosen, candidates) = states(replayed, o);
    std::fs::create_dir_all(&o.scratch).map_err(|e| format!("{}: {e}", o.scratch.display()))?;
    let checker = Checker::new(o);
    // S_0: what the check sees in the directory as it was before the program ran.
    let base = {
        let (p, _, _) = &replayed.points[0];
        let dir = o.scratch.join("before");
        let _ = std::fs::remove_dir_all(&dir);
        let space = p.power_cut_space();
        materialize_into(&space.materialize(&space.nothing_landed()), &dir)?;
        let run = checker.run(&dir)?;
        let _ = std::fs::remove_dir_all(&dir);
        if run.timed_out || run.exit != Some(0) || run.protocol_error.is_some() {
            return Err(format!(
                "the check fails on the directory as it was before the program ran ({}): {}",
                match (run.timed_out, run.exit, &run.protocol_error) {
                    (true, _, _) => "timed out".to_string(),
                    (false, _, Some(e)) => e.clone(),
                    (false, Some(code), None) => format!("exit code {code}"),
                    (false, None, None) => "killed by a signal".to_string(),
                },
                run.stderr.trim()
            ));
        }
        if history.judges_state { parse_state(&run.stdout)? } else { KvState::new() }
    };
    let expected = history.states(&base);
    let ctx = Ctx { replayed, history, expected, o, checker: &checker };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.jobs.max(1))
        .build()
        .map_err(|e| format!("thread pool: {e}"))?;
    // One check run per distinct image, in state order: materialize a batch on this thread,
    // check it on the pool, and so on, a few states on disk at a time.
    let judge = ctx.judge();
    let mut first_of: BTreeMap<u64, usize> = BTreeMap::new();
    let mut unique = Vec::new();
    for (i, c) in chosen.iter().enumerate() {
        first_of.entry(c.image).or_insert_with(|| {
            unique.push(i);
            unique.len() - 1
        });
    }
    let mut runs: Vec<(CheckRun, f64)> = Vec::with_capacity(unique.len());
    let batch = o.jobs.max(1) * 8;
    for (b, group) in unique.chunks(batch).enumerate() {
        let dirs = group
            .iter()
            .enumerate()
            .map(|(i, c)| ctx.prepare(chosen[*c].point, &chosen[*c].crash, b * batch + i))
            .collect::<Result<Vec<_>, String>>()?;
        let done = std::sync::atomic::AtomicUsize::new(runs.len());
        let results = pool.install(|| {
            dirs.par_iter()
                .map(|dir| {
                    let r = judge.run(dir);
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(n, unique.len());
                    r
                })
                .collect::<Vec<_>>()
        });
        for r in results {
            runs.push(r?);
        }
    }
    let check_seconds = runs.iter().map(|(_, took)| took).sum();
    let mut failures = Vec::new();
    let mut crashes = Vec::new();
    let mut first_power = None;
    let mut passed = Vec::new();
    let mut passed_images = BTreeSet::new();
    for c in &chosen {
        let (run, _) = &runs[first_of[&c.image]];
        match judge.verdict(run, replayed.points[c.point].2, &c.crash) {
            Some(v) => {
                if let (None, Crash::Power(_)) = (&first_power, &c.crash) {
                    first_power = Some(failures.len());
                }
                failures.push(ctx.failure(c.point, &c.crash, run.clone(), v));
                crashes.push(c.crash.clone());
            }
            None if passed_images.insert(c.image) => passed.push(Passed {
                point: c.point,
                crash: c.crash.clone(),
                id: state_id(replayed, c.point, &c.crash),
                left_debris: match &c.crash {
                    Crash::Power(state) => state.has_debris(),
                    Crash::Kill(fate) => matches!(fate, InFlight::Partial { .. }),
                },
            }),
            None => {}
        }
    }
    let groups = ctx.group(&failures, &crashes)?;
    // The earliest power-cut failure's group's representative (else the first failure).
    let shrunk = match first_power {
        Some(i) => groups.iter().find(|g| g.failures.contains(&i)).and_then(|g| g.shrunk.clone()),
        None => failures.first().map(|f| (f.clone(), 0)),
    };
    drop(ctx);
    drop(checker); // its servers' stderr files are in the scratch directory
    let _ = std::fs::remove_dir(&o.scratch);
    Ok(Exploration {
        points: replayed.points.len(),
        candidates,
        checked: chosen.len(),
        check_runs: runs.len(),
        failures,
        shrunk,
        groups,
        passed,
        seconds: start.elapsed().as_secs_f64(),
        check_seconds,
    })
}

/// Describe the trace operation in flight at a point, for a person.
pub fn in_flight(trace: &Trace, replayed: &Replayed, point: usize) -> String {
    let (p, i, acked) = &replayed.points[point];
    let at = match trace.ops.get(*i) {
        Some(op) => {
            format!("trace op {} of {}: {}", i + 1, trace.ops.len(), describe_op(trace, op))
        }
        None => format!("after the last of {} trace ops", trace.ops.len()),
    };
    format!("crash point at operation {} ({at}), {acked} acknowledged", p.op())
}

fn describe_op(trace: &Trace, op: &TraceOp) -> String {
    let name = |f: &u32| {
        trace
            .ops
            .iter()
            .find_map(|o| match o {
                TraceOp::Open { file, name, .. } if file == f => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("file {f}"))
    };
    match op {
        TraceOp::Write { file, offset, data } => {
            format!("write {} @{offset}+{}", name(file), data.0.len())
        }
        TraceOp::Fsync { file } => format!("fsync {}", name(file)),
        TraceOp::Fdatasync { file } => format!("fdatasync {}", name(file)),
        TraceOp::SetLen { file, len } => format!("truncate {} to {len}", name(file)),
        TraceOp::Open { name, create, .. } => {
            format!("open {name}{}", if *create { " (create)" } else { "" })
        }
        TraceOp::SyncDir { dir } if dir.is_empty() => "fsync of the directory".into(),
        TraceOp::SyncDir { dir } => format!("fsync of directory {dir}"),
        TraceOp::Rename { from, to } => format!("rename {from} -> {to}"),
        TraceOp::Remove { name } => format!("unlink {name}"),
        TraceOp::Mkdir { name } => format!("mkdir {name}"),
        TraceOp::Rmdir { name } => format!("rmdir {name}"),
        TraceOp::Link { from, to } => format!("link {from} -> {to}"),
        TraceOp::Symlink { target, name } => format!("symlink {name} -> {target}"),
        TraceOp::SyncFailed { file: Some(f), .. } => format!("failed fsync of {}", name(f)),
        TraceOp::SyncFailed { file: None, dir } if dir.is_empty() => {
            "failed fsync of the directory".into()
        }
        TraceOp::SyncFailed { file: None, dir } => format!("failed fsync of directory {dir}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(groups: &[&[(&str, Option<&str>)]]) -> History {
        let groups = groups
            .iter()
            .map(|g| g.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect())
            .collect();
        History { groups, judges_state: true, unacknowledged_tail: false }
    }

    fn ran(stdout: &str) -> CheckRun {
        CheckRun {
            exit: Some(0),
            timed_out: false,
            stdout: stdout.into(),
            stderr: String::new(),
            protocol_error: None,
        }
    }

    fn class(v: Option<Verdict>) -> Option<&'static str> {
        v.map(|v| v.class)
    }

    /// Each class both ways: the state the history allows passes, the one it does not fails.
    /// The same failure in two states reads the same: the state's directory, hashes and numbers
    /// are normalized out of the last stderr line.
    #[test]
    fn stderr_is_normalized_for_signatures() {
        let scratch = Path::new("/tmp/powercut-explore-9");
        let a =
            "warning\nfatal: bad config line 5 in /tmp/powercut-explore-9/state-12/.git/config\n";
        let b = "fatal: bad config line 7 in /tmp/powercut-explore-9/state-3/.git/config";
        assert_eq!(normalize_stderr(a, scratch), normalize_stderr(b, scratch));
        assert_eq!(normalize_stderr(b, scratch), "fatal: bad config line N in {dir}/.git/config");
        let h = "error: object a6b78d1149016ed25195594af6d215310ca47f42 is empty";
        assert_eq!(normalize_stderr(h, scratch), "error: object <hex> is empty");
        assert_ne!(
            normalize_stderr("missing blob", scratch),
            normalize_stderr("missing tree", scratch)
        );
    }

    /// The header of a trace of a program that ran `x` on `/d` and exited 0.
    fn test_header() -> super::super::trace::Header {
        super::super::trace::Header {
            powercut_trace: 1,
            dir: "/d".into(),
            command: vec!["x".into()],
            cwd: None,
            ack: "^ACK ".into(),
            exit_code: Some(0),
            fail_sync: None,
            warnings: Vec::new(),
        }
    }

    /// The last crash point is after the last trace op, and says so (not "op N+1 of N").
    #[test]
    fn the_point_after_the_last_op_is_named_as_such() {
        let header = test_header();
        let open = TraceOp::Open {
            file: 0,
            name: "f".into(),
            create: true,
            excl: false,
            truncate: false,
            sync: super::super::trace::Sync::None,
        };
        let trace = Trace { header, ops: vec![open] };
        let replayed = replay(&trace, &Profile::posix(), 0).unwrap();
        let last = replayed.points.len() - 1;
        assert_eq!(
            in_flight(&trace, &replayed, last),
            "crash point at operation 2 (after the last of 1 trace ops), 0 acknowledged"
        );
        assert!(in_flight(&trace, &replayed, 0).contains("trace op 1 of 1: open f (create)"));
    }

    /// A preallocated file keeps its length and zeros without writing them into the trace; a
    /// `len` shorter than the data is an error naming the operation.
    #[test]
    fn an_initial_file_s_zero_tail_is_a_length() {
        use super::super::trace::Hex;
        let header = test_header();
        let initial = |len| TraceOp::Initial { name: "log".into(), data: Hex(b"ab".to_vec()), len };
        let line = serde_json::to_string(&initial(Some(8192))).unwrap();
        assert_eq!(line, r#"{"op":"initial","name":"log","data":"6162","len":8192}"#);
        assert!(!serde_json::to_string(&initial(None)).unwrap().contains("len"));
        let trace = Trace { header: header.clone(), ops: vec![initial(Some(8192))] };
        let replayed = replay(&trace, &Profile::posix(), 0).unwrap();
        let image = replayed.points[0].0.process_crash(faultfs::InFlight::Skipped);
        let f = image.open("log", faultfs::OpenOptions::existing()).unwrap();
        assert_eq!(f.len().unwrap(), 8192);
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        assert_eq!(&bytes[..3], b"ab\0");
        assert!(bytes[2..].iter().all(|&b| b == 0));
        let short = Trace { header, ops: vec![initial(Some(1))] };
        let e = replay(&short, &Profile::posix(), 0).err().unwrap();
        assert!(e.contains("trace operation 1: initial log: len 1 is shorter"), "{e}");
    }

    #[test]
    fn the_oracle_passes_allowed_states_and_names_each_failure() {
        let h = history(&[&[("a", Some("1"))], &[("b", Some("2"))], &[("a", None)]]);
        let s = h.states(&KvState::new());
        let line = |k: &str, v: &str| format!("{{\"key\": \"{k}\", \"value\": \"{v}\"}}\n");
        let (a1, b2) = (line("a", "1"), line("b", "2"));
        let both = format!("{a1}{b2}");
        // After 2 acknowledgements: S_2 and the in-flight S_3 pass; S_1 lost an acknowledged put.
        assert_eq!(class(judge(&ran(&both), &h, &s, 2, Promise::Durable)), None);
        assert_eq!(class(judge(&ran(&b2), &h, &s, 2, Promise::Durable)), None);
        assert_eq!(class(judge(&ran(&a1), &h, &s, 2, Promise::Durable)), Some("durability"));
        assert_eq!(class(judge(&ran(&a1), &h, &s, 2, Promise::None)), None);
        // A value nothing wrote is validity; b without a, when a was never deleted, is ordering.
        assert_eq!(class(judge(&ran(&line("a", "9")), &h, &s, 0, Promise::None)), Some("validity"));
        let h2 = history(&[&[("a", Some("1"))], &[("b", Some("2"))]]);
        let s2 = h2.states(&KvState::new());
        assert_eq!(class(judge(&ran(&b2), &h2, &s2, 0, Promise::None)), Some("ordering"));
        // a=1, b=1, a=2, b deleted: after 2 acknowledgements, {a=1} gives each key a value it
        // holds later (a=1 in S_2, b absent in S_4), but as a whole it is S_1: the second
        // acknowledged write is lost (durability, not ordering).
        let h3 = history(&[
            &[("a", Some("1"))],
            &[("b", Some("1"))],
            &[("a", Some("2"))],
            &[("b", None)],
        ]);
        let s3 = h3.states(&KvState::new());
        let lost = judge(&ran(&a1), &h3, &s3, 2, Promise::Durable);
        assert_eq!(class(lost.clone()), Some("durability"));
        assert!(lost.unwrap().why.contains("after 1 acknowledgements, but 2"));
        assert_eq!(class(judge(&ran(&a1), &h3, &s3, 1, Promise::Durable)), None);
        assert_eq!(class(judge(&ran(&a1), &h3, &s3, 2, Promise::None)), None);
        assert_eq!(
            class(judge(&ran("not json"), &h2, &s2, 0, Promise::None)),
            Some("check-output")
        );
        let failed = CheckRun { exit: Some(1), ..ran("") };
        assert_eq!(class(judge(&failed, &h2, &s2, 0, Promise::None)), Some("recovery-failed"));
    }

    #[test]
    fn a_check_past_its_timeout_is_killed_and_is_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let start = Instant::now();
        let run = run_check("sleep 30; echo {dir}", &state, Duration::from_millis(200)).unwrap();
        assert!(run.timed_out && start.elapsed() < Duration::from_secs(20));
        let h = history(&[]);
        assert_eq!(class(judge(&run, &h, &[KvState::new()], 0, Promise::Durable)), Some("hang"));
        let run = run_check("printf '%s' {dir}", &state, Duration::from_secs(20)).unwrap();
        assert_eq!(
            (run.exit, run.stdout.as_str()),
            (Some(0), state.to_str().unwrap()),
            "{{dir}} is substituted, quoted"
        );
    }
}
