//! The replay of one case, for a person: the workload with each acknowledgement and promise, the
//! syscall trace around the crash, what the crash kept and dropped, and the verdict. The
//! command line's `replay` prints it, and a [`Failure`](crate::Failure) shows it for the shrunk
//! case.

use crate::case::{Case, format_faults};
use crate::oracle::Status;
use crate::run::{Focus, SeedOutcome, run_seed, run_seed_detailed};
use crate::scenario::Scenario;
use crate::subject::Subject;
use crate::workload::{Op, key_bytes};
use std::fmt::Write as _;

/// A replayed case: what it found, and the text that shows it.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The seed's outcome, narrowed to the case.
    pub outcome: SeedOutcome,
    /// The crash point shown (the case's, or the seed's first failing one).
    pub crash_op: Option<u64>,
    /// The replay, for a person.
    pub text: String,
}

/// Replay `case` of `scenario` on subject `S`. Without a crash point, the seed's first failing
/// crash point is shown (or every crash point, when none fails).
pub fn replay<S: Subject>(scenario: &Scenario, config: &S::Config, case: &Case) -> Replayed {
    let base = case.focus();
    let crash_op = case.crash_op.or_else(|| {
        let probe = Focus { state: None, ..base.clone() };
        run_seed::<S>(scenario, config, case.seed, probe)
            .violations
            .first()
            .map(|v| v.crash_op)
            .filter(|k| *k > 0)
    });
    let focus = Focus { crash_op, detail: true, ..base };
    let (outcome, detail) = run_seed_detailed::<S>(scenario, config, case.seed, &focus);
    let mut out = String::new();
    let Some(d) = detail else { return Replayed { outcome, crash_op, text: out } };
    let w = &mut out;
    let _ = writeln!(w, "scenario {}, seed {}", scenario.name, case.seed);
    let _ = writeln!(w, "subject {}: {config:?}", S::NAME);
    let _ = writeln!(w, "profile {}", scenario.faults.profile);
    let _ = writeln!(w, "\n== the workload ({} operations) ==", d.plan.len());
    let mut writes = d.history.writes.iter();
    for ((index, op), (_, start, end)) in d.plan.iter().zip(&d.ranges) {
        let mut line =
            format!("  [{index:>4}] fs ops {:>5}..={:<5} {}", start + 1, end, describe_op(op));
        let members = match op {
            Op::Put { .. } | Op::Delete { .. } => 1,
            Op::Batch { len, .. } => *len as usize,
            _ => 0,
        };
        let mut these = writes.by_ref().take(members).peekable();
        if members > 0 {
            if let Some(w) = these.next() {
                line.push_str(&match w.status {
                    Status::Acked(a) => format!(
                        "  -> acked at {:?}, seq {}, promise {:?}, durable through {}",
                        w.acked_at, a.seq, a.promise, a.durable_through
                    ),
                    Status::Failed => "  -> FAILED (not acknowledged)".into(),
                    Status::InFlight => "  -> in flight".into(),
                });
            }
            these.for_each(drop);
        }
        if crash_op.is_some_and(|k| *start < k && k <= *end) {
            line.push_str("   <== the crash");
        }
        let _ = writeln!(w, "{line}");
    }
    if !d.fired.is_empty() {
        let fired = format_faults(&d.fired.iter().copied().collect());
        let _ = writeln!(w, "\ninjected faults that fired: {fired}");
    }
    if let Some(k) = crash_op {
        let _ = writeln!(w, "\n== syscall trace around the crash at op {k} ==");
        for e in d.trace.iter().filter(|e| e.op + 12 >= k && e.op <= k + 1) {
            let _ = writeln!(w, "  {e}{}", if e.op == k { "   <== in flight" } else { "" });
        }
    }
    for (crash, index, kept) in &d.states {
        let (op, kind) = (crash.op, crash.kind.name());
        let _ = writeln!(w, "\n== crash state {index} at op {op} ({kind} at {:?}) ==", crash.at);
        if kept.is_empty() {
            let _ = writeln!(w, "  nothing was unsynced: the crash image is the durable image");
        }
        for line in kept.iter().take(60) {
            let _ = writeln!(w, "  {line}");
        }
        if kept.len() > 60 {
            let _ = writeln!(w, "  ... {} more pieces", kept.len() - 60);
        }
        let found: Vec<_> =
            outcome.violations.iter().filter(|v| v.crash_op == op && v.state == *index).collect();
        if found.is_empty() {
            let _ = writeln!(w, "  verdict: every check passed");
        }
        for v in found {
            let _ = writeln!(w, "  VIOLATION {}: {}", v.class, v.message);
        }
    }
    for v in outcome.violations.iter().filter(|v| v.crash_op == 0) {
        let _ = writeln!(w, "\nVIOLATION during the run {}: {}", v.class, v.message);
    }
    let _ = writeln!(
        w,
        "\n{} crash states checked, {} violations",
        outcome.crash_states,
        outcome.violations.len()
    );
    Replayed { outcome, crash_op, text: out }
}

/// One workload operation, for a person: `put key000003 (120 bytes)`.
pub fn describe_op(op: &Op) -> String {
    let key = |k: &u32| String::from_utf8_lossy(&key_bytes(*k)).into_owned();
    match op {
        Op::Put { key: k, value_bytes } => format!("put {} ({value_bytes} bytes)", key(k)),
        Op::Delete { key: k } => format!("delete {}", key(k)),
        Op::Get { key: k } => format!("get {}", key(k)),
        Op::Merge => "merge".into(),
        Op::Batch { len, .. } => format!("batch of {len} writes (atomic)"),
    }
}
