//! The oracle: the history of a run, what each acknowledgement promised, and the checks a
//! recovered state must pass.
//!
//! How a state is judged against a crash at operation k, time T:
//! - Writes that finished before k are *done*; the one k interrupted is *in flight*. A recovered
//!   state must equal the state after some prefix of the writes (in-flight one included or not):
//!   one log, one order. Failed writes are optional (they may or may not have happened).
//! - Every value carries the tag of the write that made it, so each key's value pins down which
//!   prefixes it allows (an interval of prefix lengths); the state is explained iff the per-key
//!   intervals intersect. This costs O(writes), not a replay per prefix.
//! - The promise decides the shortest prefix allowed. After a kill -9 every acknowledged write
//!   must be there. After a power cut: `Durable` writes, `By(t)` writes with t + slack <= T,
//!   `Writeback` writes old enough for the OS writeback model to have flushed them, and every write
//!   a `durable_through` report covered. Writes the engine itself reported at risk are excused and
//!   counted as reported loss.
//! - Violations, most specific first: `validity` (a key or value never written, or one written
//!   only after the crash), `resurrection` (a key back after a required delete), `durability` (a
//!   required write missing), `ordering` (no prefix of the history explains the state).

use crate::subject::{Ack, Promise};
use crate::workload::{is_value, key_bytes, key_number, value_tag};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// Corruption the harness injected into a crash image (bit flips, latent sector errors), as the
/// oracle weighs it: the keys whose records it touched, whose loss it excuses, and whether the
/// subject's recovery reported dropping data (its other losses then count as reported).
#[derive(Clone, Debug, Default)]
pub struct Damage {
    /// Keys whose records the damage may have touched.
    pub keys: BTreeSet<u32>,
    /// Recovery said it dropped data it could not prove torn.
    pub reported: bool,
}

/// A named class of violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A write promised durable is gone.
    Durability,
    /// Recovery failed, or served a key or value nobody wrote.
    Validity,
    /// No prefix of the history explains the state.
    Ordering,
    /// A deleted key came back.
    Resurrection,
    /// Recovering again gave a different state.
    RecoveryIdempotence,
    /// A crash during recovery lost what recovery promised.
    CrashDuringRecovery,
    /// An atomic batch is partly there.
    Atomicity,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 7] = [
        Class::Durability,
        Class::Validity,
        Class::Ordering,
        Class::Resurrection,
        Class::RecoveryIdempotence,
        Class::CrashDuringRecovery,
        Class::Atomicity,
    ];

    /// The class as output names it (`durability`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Class::Durability => "durability",
            Class::Validity => "validity",
            Class::Ordering => "ordering",
            Class::Resurrection => "resurrection",
            Class::RecoveryIdempotence => "recovery-idempotence",
            Class::CrashDuringRecovery => "crash-during-recovery",
            Class::Atomicity => "atomicity",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Acknowledged, with this promise.
    Acked(Ack),
    /// The call returned an error: the write may or may not have happened.
    Failed,
    /// The call was interrupted by the crash.
    InFlight,
}

/// One write of the history (a put or a delete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The key number.
    pub key: u32,
    /// `None` for a delete; else the value's length (its bytes follow from the write's index).
    pub value_len: Option<u32>,
    /// The filesystem operations the call used: (start, end], op numbers.
    pub start_op: u64,
    /// The last filesystem operation of the call.
    pub end_op: u64,
    /// When the acknowledgement came, on the filesystem clock.
    pub acked_at: Duration,
    /// How the call ended.
    pub status: Status,
}

/// A `durable_through` report (from an acknowledgement or a tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The filesystem operation count when it was reported.
    pub end_op: u64,
    /// Every write with an id up to this is durable.
    pub durable_through: u64,
}

/// Everything that happened in one run, in order.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every put and delete, in order.
    pub writes: Vec<Write>,
    /// Every `durable_through` report, in order.
    pub reports: Vec<Report>,
    /// Writes the subject reported at risk (its own ids), and the op by which it said so.
    pub at_risk: Vec<(u64, u64, u64)>,
    /// Atomic batches: (index of the first write, number of writes).
    pub batches: Vec<(usize, usize)>,
    /// (key, write index) of every write, sorted: each key's writes in order, keys in order
    /// (see [`History::index`]).
    per_key: Vec<(u32, usize)>,
}

/// What kind of crash a state comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// The power went: only what the disk held survives.
    PowerCut,
    /// The process was killed: the page cache survives.
    Kill,
}

impl CrashKind {
    /// The kind as output names it.
    pub fn name(self) -> &'static str {
        match self {
            CrashKind::PowerCut => "power cut",
            CrashKind::Kill => "kill -9",
        }
    }
}

/// The crash a state is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The operation in flight (the end of the run is one past the last).
    pub op: u64,
    /// When, on the filesystem clock.
    pub at: Duration,
    /// Power cut or kill -9.
    pub kind: CrashKind,
}

/// Loss within the promise, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Acknowledged writes not reflected in the recovered state.
    pub acked_lost: u64,
    /// Bytes of the values of those writes.
    pub bytes_lost: u64,
    /// Crash time minus the acknowledgement time of the oldest lost write.
    pub window: Option<Duration>,
    /// Lost writes the engine had reported at risk.
    pub reported_lost: u64,
    /// 1 when recovery refused to open, saying why, because the storage failed it (an error the
    /// filesystem returned during recovery: EIO, EROFS, ENOSPC): the state is unavailable, which
    /// is reported, not a violation.
    pub unavailable: u64,
}

/// How promises are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Allowance past a `By(t)` deadline: tick granularity plus a sync's latency.
    pub slack: Duration,
    /// Time by which the OS writeback model flushes a dirty write (expiry + pass interval), if the
    /// profile has writeback.
    pub writeback: Option<Duration>,
}

pub use crate::state::State;

/// A set of prefix lengths: sorted, disjoint, inclusive intervals.
type Set = Vec<(usize, usize)>;

fn intersect(a: &Set, b: &Set) -> Set {
    let mut out = Vec::new();
    intersect_into(a, b, &mut out);
    out
}

/// `a` ∩ `b` into `out` (cleared first).
fn intersect_into(a: &Set, b: &Set, out: &mut Set) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    // Bounded: each step advances i or j.
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
}

/// The write `key` holds in `observed` (sorted by key).
fn observed_of(observed: &[(u32, usize)], key: u32) -> Option<usize> {
    observed.binary_search_by_key(&key, |&(k, _)| k).ok().map(|i| observed[i].1)
}

fn max_in(set: &Set, lo: usize, hi: usize) -> Option<usize> {
    set.iter().rev().find_map(|&(a, b)| (a <= hi && b >= lo).then(|| b.min(hi)))
}

impl History {
    /// Build the per-key index once the history is complete (before judging).
    pub fn index(&mut self) {
        // A counting sort by key: the writes are already in index order within each key.
        let keys = self.writes.iter().map(|w| w.key as usize + 1).max().unwrap_or(0);
        let mut start = vec![0usize; keys + 1];
        for w in &self.writes {
            start[w.key as usize + 1] += 1;
        }
        for k in 1..=keys {
            start[k] += start[k - 1];
        }
        self.per_key.clear();
        self.per_key.resize(self.writes.len(), (0, 0));
        for (i, w) in self.writes.iter().enumerate() {
            let at = &mut start[w.key as usize];
            self.per_key[*at] = (w.key, i);
            *at += 1;
        }
    }

    /// Writes finished before `op`, and the total including those in flight (one write, or
    /// every write of the batch in flight).
    fn bounds(&self, op: u64) -> (usize, usize) {
        let done = self.writes.iter().take_while(|w| w.end_op < op).count();
        let in_flight = self.writes[done..].iter().take_while(|w| w.start_op < op).count();
        (done, done + in_flight)
    }

    /// `set` without the prefix lengths that end inside a batch.
    fn whole_batches(&self, set: &Set) -> Set {
        let mut out = set.clone();
        for &(first, n) in &self.batches {
            if n < 2 {
                continue;
            }
            let (lo, hi) = (first + 1, first + n - 1);
            out = out
                .into_iter()
                .flat_map(|(a, b)| {
                    let below = (a < lo).then(|| (a, b.min(lo - 1)));
                    let above = (b > hi).then(|| (a.max(hi + 1), b));
                    below.into_iter().chain(above)
                })
                .collect();
        }
        out
    }

    fn excused(&self, seq: u64, op: u64) -> bool {
        self.at_risk.iter().any(|&(a, b, by)| by < op && (a..=b).contains(&seq))
    }

    /// Is write `i` (done before the crash) required to survive it?
    fn required(&self, i: usize, crash: Crash, rules: Rules, covered: u64) -> bool {
        let w = &self.writes[i];
        let Status::Acked(ack) = w.status else { return false };
        if self.excused(ack.seq, crash.op) {
            return false;
        }
        if ack.seq <= covered {
            return true;
        }
        match (crash.kind, ack.promise) {
            (_, Promise::Queued) => false,
            (CrashKind::Kill, _) | (_, Promise::Durable) => true,
            (CrashKind::PowerCut, Promise::By(t)) => t + rules.slack <= crash.at,
            (CrashKind::PowerCut, Promise::Writeback) => {
                rules.writeback.is_some_and(|d| w.acked_at + d + rules.slack <= crash.at)
            }
        }
    }

    fn describe(&self, i: usize) -> String {
        let w = &self.writes[i];
        let what = match w.value_len {
            Some(_) => "put",
            None => "delete",
        };
        let key = String::from_utf8_lossy(&key_bytes(w.key)).into_owned();
        let status = match w.status {
            Status::Acked(a) => format!("acked at {:?} promising {:?}", w.acked_at, a.promise),
            Status::Failed => "failed".into(),
            Status::InFlight => "in flight".into(),
        };
        format!("write #{i} ({what} {key}, {status})")
    }

    /// Judge `state` against `crash`. With `damage` (corruption was injected), a key the damage
    /// touched may hold any value its writes wrote, or none; every other key is judged as
    /// always. A loss there is `durability` (or `ordering`, `resurrection`, `atomicity`) —
    /// unless recovery reported dropping data, when it counts as a reported loss. Values are
    /// judged everywhere: corruption may cost data, never serve garbage.
    pub fn judge(
        &self,
        crash: Crash,
        rules: Rules,
        state: &State,
        damage: Option<&Damage>,
    ) -> (Vec<(Class, String)>, Loss) {
        let (violations, mut loss) = self.judge_keys(crash, rules, state, damage);
        let lossy = |c: &Class| {
            matches!(
                c,
                Class::Durability | Class::Ordering | Class::Resurrection | Class::Atomicity
            )
        };
        if damage.is_some_and(|d| d.reported)
            && !violations.is_empty()
            && violations.iter().all(|(c, _)| lossy(c))
        {
            loss.reported_lost += loss.acked_lost.max(1);
            loss.acked_lost = 0;
            return (Vec::new(), loss);
        }
        (violations, loss)
    }

    /// The keys whose records in `bytes` (a file as it was before corruption) the damaged range
    /// `a..b` may have touched: the value it falls in; the next value after it (a record's
    /// header and key come before its value); the value before it (a trailer comes after); and
    /// every key spelled within a record's reach of it (a delete has no value).
    pub fn keys_near(&self, bytes: &[u8], a: u64, b: u64) -> BTreeSet<u32> {
        const REACH: usize = 256;
        let a = usize::try_from(a).unwrap_or(usize::MAX).min(bytes.len());
        let b = usize::try_from(b).unwrap_or(usize::MAX).min(bytes.len()).max(a);
        let mut out = BTreeSet::new();
        let (mut before, mut after) = (None, None);
        // Bounded: `p` advances by at least one byte per step.
        let mut p = 0;
        while let Some(off) = bytes.get(p..).and_then(|rest| rest.iter().position(|&c| c == b'w')) {
            p += off;
            let tag = value_tag(&bytes[p..]).and_then(|t| usize::try_from(t).ok());
            if let Some(w) = tag.and_then(|t| self.writes.get(t)) {
                if let Some(len) = w.value_len {
                    let end = p + len.max(12) as usize;
                    if p < b.max(a + 1) && end > a {
                        out.insert(w.key);
                    } else if end <= a {
                        before = Some(w.key);
                    } else if after.is_none() {
                        after = Some(w.key);
                    }
                }
            }
            p += 1;
        }
        out.extend(before);
        out.extend(after);
        let (lo, hi) = (a.saturating_sub(REACH), (b + REACH).min(bytes.len()));
        for k in lo..hi {
            if let Some(n) = bytes.get(k..k + 9).and_then(key_number) {
                out.insert(n);
            }
        }
        out
    }

    fn judge_keys(
        &self,
        crash: Crash,
        rules: Rules,
        state: &State,
        damage: Option<&Damage>,
    ) -> (Vec<(Class, String)>, Loss) {
        let damaged = |key: u32| damage.is_some_and(|d| d.keys.contains(&key));
        let (done, p_max) = self.bounds(crash.op);
        // Observed version of each key: the write index whose value it holds.
        let mut observed: Vec<(u32, usize)> = Vec::with_capacity(state.len());
        for (k, v) in state {
            let shown = || String::from_utf8_lossy(k);
            let Some(key) = key_number(k) else {
                let shown = shown();
                return (
                    vec![(Class::Validity, format!("key {shown:?} was never written"))],
                    Loss::default(),
                );
            };
            let tag = value_tag(v).and_then(|t| usize::try_from(t).ok());
            let write = tag.and_then(|t| self.writes.get(t).map(|w| (t, w)));
            let genuine = write.is_some_and(|(t, w)| {
                w.key == key && w.value_len.is_some_and(|n| is_value(v, t as u64, n))
            });
            if !genuine {
                let shown = shown();
                let msg = format!("key {shown} holds a value no write wrote ({} bytes)", v.len());
                return (vec![(Class::Validity, msg)], Loss::default());
            }
            let t = tag.unwrap_or(0);
            if t >= p_max {
                let msg = format!(
                    "key {} holds the value of {}, issued after the crash",
                    shown(),
                    self.describe(t)
                );
                return (vec![(Class::Validity, msg)], Loss::default());
            }
            observed.push((key, t));
        }
        // Workload keys have fixed-width digits, so byte order is number order; sort anyway.
        observed.sort_unstable();
        let covered = self
            .reports
            .iter()
            .filter(|r| r.end_op < crash.op)
            .map(|r| r.durable_through)
            .max()
            .unwrap_or(0);
        let required: Vec<usize> = (0..done)
            .filter(|&i| !damaged(self.writes[i].key) && self.required(i, crash, rules, covered))
            .collect();
        let p_min = required.last().map_or(0, |i| i + 1);
        // Per-key allowed prefix lengths, intersected.
        debug_assert_eq!(self.per_key.len(), self.writes.len(), "History::index was not called");
        let mut allowed: Set = vec![(0, p_max)];
        let (mut set, mut next) = (Vec::new(), Vec::new());
        // Both walk the keys in ascending order: a cursor, not a search per key.
        let mut cursor = observed.iter().peekable();
        for (key, idxs) in self.key_writes(p_max) {
            if damaged(key) {
                continue; // any value its writes wrote, or none
            }
            while cursor.next_if(|&&(k, _)| k < key).is_some() {}
            let holds = cursor.peek().filter(|&&&(k, _)| k == key).map(|&&(_, w)| w);
            self.key_set(idxs, holds, (p_max, crash.op), &mut set);
            intersect_into(&allowed, &set, &mut next);
            std::mem::swap(&mut allowed, &mut next);
            if allowed.is_empty() {
                break;
            }
        }
        let atomic =
            if self.batches.is_empty() { None } else { Some(self.whole_batches(&allowed)) };
        if let Some(p) = max_in(atomic.as_ref().unwrap_or(&allowed), p_min, p_max) {
            let mut loss = self.loss(p, done, crash);
            loss.reported_lost = self.reported_lost(&observed, done, crash.op);
            return (Vec::new(), loss);
        }
        if let Some(p) = atomic.and_then(|_| max_in(&allowed, p_min, p_max)) {
            let (first, n) = self
                .batches
                .iter()
                .copied()
                .find(|&(first, n)| first < p && p < first + n)
                .unwrap_or((p, 0));
            let msg = format!(
                "the batch of writes #{first}..#{} is partly there: the state holds the first {} \
                 of its {n} writes",
                first + n.saturating_sub(1),
                p - first
            );
            return (vec![(Class::Atomicity, msg)], self.loss(p, done, crash));
        }
        // Resurrection: a key holds a value older than a required delete of it.
        for &(key, w) in &observed {
            if let Some(&d) = required.iter().find(|&&d| {
                d > w && self.writes[d].key == key && self.writes[d].value_len.is_none()
            }) {
                let msg = format!(
                    "{} must survive the {} at {:?}, but the key is back with the value of {}",
                    self.describe(d),
                    crash.kind.name(),
                    crash.at,
                    self.describe(w)
                );
                return (vec![(Class::Resurrection, msg)], self.loss(0, done, crash));
            }
        }
        if let Some(p) = max_in(&allowed, 0, p_min.saturating_sub(1)) {
            let lost = required.iter().copied().find(|&i| i >= p).unwrap_or(p);
            let msg = format!(
                "{} was promised durable by the {} at {:?} but is lost: the recovered state is \
                 the first {p} of {done} writes",
                self.describe(lost),
                crash.kind.name(),
                crash.at
            );
            return (vec![(Class::Durability, msg)], self.loss(p, done, crash));
        }
        let key_sets = self.key_sets(&observed, (p_max, crash.op));
        (vec![(Class::Ordering, self.explain_ordering(&key_sets, p_max))], Loss::default())
    }

    /// Each key written before prefix length `p_max`, with the indexes of those writes.
    /// The writes are (key, index) pairs of [`History::per_key`].
    fn key_writes(&self, p_max: usize) -> impl Iterator<Item = (u32, &[(u32, usize)])> + '_ {
        self.per_key.chunk_by(|a, b| a.0 == b.0).filter_map(move |group| {
            let before = &group[..group.partition_point(|&(_, i)| i < p_max)];
            (!before.is_empty()).then(|| (group[0].0, before))
        })
    }

    /// Each written key's allowed prefix lengths, given what the state holds.
    fn key_sets(&self, observed: &[(u32, usize)], at: (usize, u64)) -> Vec<(u32, Set)> {
        self.key_writes(at.0)
            .map(|(key, idxs)| {
                let mut set = Vec::new();
                self.key_set(idxs, observed_of(observed, key), at, &mut set);
                (key, set)
            })
            .collect()
    }

    /// Did write `i` maybe not happen, as far as a crash at `crash_op` is concerned?
    fn optional(&self, i: usize, crash_op: u64) -> bool {
        match self.writes[i].status {
            Status::Failed => true,
            Status::Acked(ack) => self.excused(ack.seq, crash_op),
            Status::InFlight => false,
        }
    }

    /// Prefix lengths consistent with `key` holding the write `observed` (or nothing), into
    /// `out`.
    fn key_set(
        &self,
        writes: &[(u32, usize)],
        observed: Option<usize>,
        (p_max, crash_op): (usize, u64),
        out: &mut Set,
    ) {
        out.clear();
        let idxs = || writes.iter().map(|&(_, i)| i);
        // A failed write, or one the subject reported at risk before the crash, may or may not
        // have happened: it moves no boundary.
        let ok = |i: &usize| !self.optional(*i, crash_op);
        let next_after = |i: usize| idxs().filter(ok).find(|&j| j > i).unwrap_or(p_max);
        match observed {
            Some(w) => out.push((w + 1, next_after(w))),
            None => {
                let first = idxs().find(ok).unwrap_or(p_max);
                let mut set = vec![(0, first)];
                // After a delete the key is absent; a failed delete may have happened too.
                for d in idxs().filter(|&i| self.writes[i].value_len.is_none()) {
                    set.push((d + 1, next_after(d)));
                }
                // Failed puts are optional: the key may be absent past them too.
                set.sort_unstable();
                for (a, b) in set {
                    match out.last_mut() {
                        Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
                        _ => out.push((a, b)),
                    }
                }
            }
        }
    }

    fn explain_ordering(&self, key_sets: &[(u32, Set)], p_max: usize) -> String {
        let mut acc: Set = vec![(0, p_max)];
        let mut earlier: Vec<(u32, &Set)> = Vec::new();
        for (key, set) in key_sets {
            let next = intersect(&acc, set);
            if next.is_empty() {
                let other = earlier
                    .iter()
                    .find(|(_, s)| intersect(s, set).is_empty())
                    .map(|(k, s)| {
                        format!(
                            "{} needs a prefix in {s:?}",
                            String::from_utf8_lossy(&key_bytes(*k))
                        )
                    })
                    .unwrap_or_else(|| "the keys before it".into());
                return format!(
                    "no prefix of the history explains the recovered state: {} needs a prefix in \
                     {set:?}, but {other}",
                    String::from_utf8_lossy(&key_bytes(*key))
                );
            }
            acc = next;
            earlier.push((*key, set));
        }
        "no prefix of the history explains the recovered state".into()
    }

    /// Writes the subject reported at risk before the crash whose effect the state lacks: a put
    /// whose key holds an older write (or nothing, with no later delete), a delete whose key
    /// holds an older write.
    fn reported_lost(&self, observed: &[(u32, usize)], done: usize, crash_op: u64) -> u64 {
        if self.at_risk.is_empty() {
            return 0; // the common case, on every judged state: nothing was reported
        }
        let lost = |i: usize| {
            let w = &self.writes[i];
            match observed_of(observed, w.key) {
                Some(held) => held < i,
                None => {
                    w.value_len.is_some()
                        && !self.writes[i + 1..done]
                            .iter()
                            .any(|d| d.key == w.key && d.value_len.is_none())
                }
            }
        };
        let excused = |i: &usize| matches!(self.writes[*i].status, Status::Acked(a) if self.excused(a.seq, crash_op));
        (0..done).filter(excused).filter(|&i| lost(i)).count() as u64
    }

    fn loss(&self, p: usize, done: usize, crash: Crash) -> Loss {
        let mut loss = Loss::default();
        for w in &self.writes[p.min(done)..done] {
            if let Status::Acked(ack) = w.status {
                if self.excused(ack.seq, crash.op) {
                    loss.reported_lost += 1;
                    continue;
                }
                loss.acked_lost += 1;
                loss.bytes_lost += u64::from(w.value_len.unwrap_or(0));
                if loss.window.is_none() {
                    loss.window = Some(crash.at.saturating_sub(w.acked_at));
                }
            }
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::value_bytes;

    /// Writes: #0 put k0, #1 put k1, #2 delete k0, #3 put k1 — each one op, acked Durable.
    fn history(promise: Promise) -> History {
        let ops = [(0, Some(20)), (1, Some(20)), (0, None), (1, Some(30))];
        let mut h = History::default();
        for (i, (key, value_len)) in ops.into_iter().enumerate() {
            let seq = i as u64 + 1;
            let ack = Ack { seq, promise, durable_through: 0 };
            let at = Duration::from_millis(seq);
            let op = seq * 2;
            h.writes.push(Write {
                key,
                value_len,
                start_op: op - 1,
                end_op: op,
                acked_at: at,
                status: Status::Acked(ack),
            });
        }
        h.index();
        h
    }

    fn state(pairs: &[(u32, u64, u32)]) -> State {
        pairs.iter().map(|&(k, w, n)| (key_bytes(k), value_bytes(w, n))).collect()
    }

    const RULES: Rules = Rules { slack: Duration::from_millis(1), writeback: None };

    fn judge(h: &History, kind: CrashKind, s: &State) -> Vec<Class> {
        let crash = Crash { op: 100, at: Duration::from_secs(1), kind };
        h.judge(crash, RULES, s, None).0.into_iter().map(|(c, _)| c).collect()
    }

    #[test]
    fn under_corruption_only_the_touched_keys_are_excused() {
        let h = history(Promise::Durable);
        let crash = Crash { op: 100, at: Duration::from_secs(1), kind: CrashKind::PowerCut };
        // A log of write #1 (put k1) then write #3 (put k1): damage inside #3's value.
        let mut log = b"hdr key000001".to_vec();
        log.extend(value_bytes(1, 20));
        log.extend(b"hdr key000001");
        let at = log.len() as u64 + 5;
        log.extend(value_bytes(3, 30));
        let keys = h.keys_near(&log, at, at + 1);
        assert!(keys.contains(&1), "{keys:?}");
        let damage = Damage { keys, reported: false };
        // k1 lost its durable write #3: the damage touched it, so that is excused...
        let judged = |s: &State, d: &Damage| h.judge(crash, RULES, s, Some(d)).0;
        assert!(judged(&state(&[(1, 1, 20)]), &damage).is_empty());
        // ...but k0 coming back after its durable delete #2 is not: the damage never touched k0.
        let classes: Vec<Class> = judged(&state(&[(0, 0, 20), (1, 1, 20)]), &damage)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(classes, [Class::Resurrection]);
        // Unless recovery reported dropping data: then it is a reported loss, not a violation.
        let reported = Damage { reported: true, ..damage.clone() };
        let (v, loss) = h.judge(crash, RULES, &state(&[(0, 0, 20), (1, 1, 20)]), Some(&reported));
        assert!(v.is_empty() && loss.reported_lost > 0);
        // Garbage is never excused.
        let garbage: State =
            [(key_bytes(1), b"not a value anybody wrote".to_vec())].into_iter().collect();
        assert_eq!(judged(&garbage, &reported)[0].0, Class::Validity);
    }

    #[test]
    fn the_full_prefix_passes_and_a_lost_durable_write_fails() {
        let h = history(Promise::Durable);
        assert!(judge(&h, CrashKind::PowerCut, &state(&[(1, 3, 30)])).is_empty());
        // k1 holds an older put: the durable write #3 is lost.
        assert_eq!(judge(&h, CrashKind::PowerCut, &state(&[(1, 1, 20)])), [Class::Durability]);
        assert_eq!(judge(&h, CrashKind::PowerCut, &state(&[])), [Class::Durability]);
        // k0 is back after its durable delete #2.
        let back = state(&[(0, 0, 20), (1, 3, 30)]);
        assert_eq!(judge(&h, CrashKind::PowerCut, &back), [Class::Resurrection]);
    }

    #[test]
    fn promises_decide_what_a_power_cut_may_take() {
        // Writeback promises with no writeback model: any prefix is allowed after a power cut...
        let h = history(Promise::Writeback);
        for s in [state(&[]), state(&[(0, 0, 20)]), state(&[(0, 0, 20), (1, 1, 20)])] {
            assert!(judge(&h, CrashKind::PowerCut, &s).is_empty());
        }
        // ...but not after a kill -9, where the page cache survives.
        assert_eq!(judge(&h, CrashKind::Kill, &state(&[])), [Class::Durability]);
        assert_eq!(judge(&h, CrashKind::Kill, &state(&[(0, 0, 20)])), [Class::Resurrection]);
        let (_, loss) = h.judge(
            Crash { op: 100, at: Duration::from_secs(1), kind: CrashKind::PowerCut },
            RULES,
            &state(&[(0, 0, 20)]),
            None,
        );
        assert_eq!((loss.acked_lost, loss.bytes_lost), (3, 50));
    }

    #[test]
    fn a_state_no_prefix_explains_is_an_ordering_violation_and_garbage_is_invalid() {
        let h = history(Promise::Writeback);
        // k1 from write #3 (prefix >= 4) with k0 still present (prefix <= 2).
        assert_eq!(
            judge(&h, CrashKind::PowerCut, &state(&[(0, 0, 20), (1, 3, 30)])),
            [Class::Ordering]
        );
        let mut garbage = state(&[(1, 1, 20)]);
        garbage.insert(&key_bytes(1), b"w00000000001aaaXaaaaaaaa");
        assert_eq!(judge(&h, CrashKind::PowerCut, &garbage), [Class::Validity]);
        assert_eq!(judge(&h, CrashKind::PowerCut, &state(&[(7, 1, 20)])), [Class::Validity]);
        // A crash at op 3 (during write #1): write #3's value is from the future.
        let crash = Crash { op: 3, at: Duration::from_secs(1), kind: CrashKind::PowerCut };
        let (v, _) = h.judge(crash, RULES, &state(&[(1, 3, 30)]), None);
        assert_eq!(v[0].0, Class::Validity);
    }

    #[test]
    fn a_batch_is_all_there_or_not_at_all() {
        // #0 put k0; then one batch: #1 put k1, #2 put k2, #3 delete k0.
        let ops = [(0, Some(20)), (1, Some(20)), (2, Some(20)), (0, None)];
        let mut h = History::default();
        for (i, (key, value_len)) in ops.into_iter().enumerate() {
            let (start_op, end_op) = if i == 0 { (1, 2) } else { (3, 4) };
            let ack =
                Ack { seq: 1 + u64::from(i > 0), promise: Promise::Writeback, durable_through: 0 };
            let acked_at = Duration::from_millis(end_op);
            let status = Status::Acked(ack);
            h.writes.push(Write { key, value_len, start_op, end_op, acked_at, status });
        }
        h.batches.push((1, 3));
        h.index();
        let pass = |s: &State| assert!(judge(&h, CrashKind::PowerCut, s).is_empty(), "{s:?}");
        pass(&state(&[]));
        pass(&state(&[(0, 0, 20)]));
        pass(&state(&[(1, 1, 20), (2, 2, 20)]));
        // Part of the batch: k1 landed, k2 and the delete did not.
        let part = state(&[(0, 0, 20), (1, 1, 20)]);
        assert_eq!(judge(&h, CrashKind::PowerCut, &part), [Class::Atomicity]);
        // A crash while the batch is in flight: all of it or none, still.
        let crash = Crash { op: 4, at: Duration::from_secs(1), kind: CrashKind::PowerCut };
        assert!(h.judge(crash, RULES, &state(&[(1, 1, 20), (2, 2, 20)]), None).0.is_empty());
        assert_eq!(h.judge(crash, RULES, &part, None).0[0].0, Class::Atomicity);
    }
}
