//! [`Case`]: one replayable case of a scenario — a seed, and optionally the crash point, the
//! crash state, the workload operations kept, the injected faults and the state enumeration —
//! as the flags a reproduce command carries (`--seed 0 --ops 58,65,178 --crash-at 7 --state 4
//! --exhaustive 32`), and back.

use crate::run::Focus;
use crate::scenario::States;
use crate::shrink::Shrunk;
use faultfs::Fault;
use std::collections::BTreeMap;
use std::fmt;

/// One replayable case: a seed, narrowed as far as the fields say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Case {
    /// The seed.
    pub seed: u64,
    /// Only these workload operations (plan indexes, ascending).
    pub keep: Option<Vec<u32>>,
    /// Only this crash point (operation number).
    pub crash_op: Option<u64>,
    /// Only this crash state at the crash point.
    pub state: Option<u32>,
    /// Exactly these injected faults (operation number -> fault).
    pub faults: Option<BTreeMap<u64, Fault>>,
    /// Enumerate crash states exhaustively up to this budget.
    pub exhaustive: Option<u64>,
}

impl Case {
    /// The whole seed.
    pub fn seed(seed: u64) -> Case {
        Case { seed, ..Case::default() }
    }

    /// One crash state of a seed's run, as a run reports it.
    pub fn state(seed: u64, crash_op: u64, state: u32) -> Case {
        // Crash point 0 stands for a violation during the run itself (a wrong `get`).
        let at = (crash_op > 0).then_some(crash_op);
        Case { seed, crash_op: at, state: at.map(|_| state), ..Case::default() }
    }

    /// The run narrowed to this case.
    pub fn focus(&self) -> Focus {
        Focus {
            crash_op: self.crash_op,
            keep: self.keep.clone(),
            state: self.state,
            faults: self.faults.clone(),
            states: self.exhaustive.map(|budget| States::Exhaustive { budget }),
            anchored: None,
            detail: false,
        }
    }

    /// Parse the flags [`Case`]'s `Display` writes (any order; `--seed` required).
    pub fn parse(text: &str) -> Result<Case, String> {
        let mut case = Case::default();
        let mut seed = None;
        let mut words = text.split_whitespace();
        // Bounded: each iteration consumes a flag and its value.
        while let Some(flag) = words.next() {
            let value = words.next().ok_or_else(|| format!("{flag}: a value is missing"))?;
            let number = |what: &str| -> Result<u64, String> {
                value.parse().map_err(|_| format!("{what} {value:?}: expected a whole number"))
            };
            match flag {
                "--seed" => seed = Some(number("--seed")?),
                "--ops" => case.keep = Some(parse_ops(value)?),
                "--crash-at" => case.crash_op = Some(number("--crash-at")?),
                "--state" => {
                    let n = number("--state")?;
                    case.state =
                        Some(u32::try_from(n).map_err(|_| format!("--state {n}: too large"))?);
                }
                "--faults" => case.faults = Some(parse_faults(value)?),
                "--exhaustive" => match number("--exhaustive")? {
                    0 => return Err("--exhaustive 0: the budget must be positive".into()),
                    b => case.exhaustive = Some(b),
                },
                other => return Err(format!("unknown flag {other:?} in case {text:?}")),
            }
        }
        case.seed = seed.ok_or_else(|| format!("case {text:?}: no --seed"))?;
        Ok(case)
    }
}

impl From<&Shrunk> for Case {
    fn from(s: &Shrunk) -> Case {
        Case {
            seed: s.seed,
            keep: Some(s.keep.clone()),
            crash_op: Some(s.crash_op),
            state: Some(s.state),
            faults: (!s.faults.is_empty()).then(|| s.faults.clone()),
            exhaustive: s.exhaustive,
        }
    }
}

impl fmt::Display for Case {
    /// The flags that select this case: `--seed S [--ops ..] [--crash-at K --state N] ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--seed {}", self.seed)?;
        if let Some(keep) = &self.keep {
            write!(f, " --ops {}", format_ops(keep))?;
        }
        if let Some(k) = self.crash_op {
            write!(f, " --crash-at {k}")?;
        }
        if let Some(s) = self.state {
            write!(f, " --state {s}")?;
        }
        if let Some(faults) = self.faults.as_ref().filter(|f| !f.is_empty()) {
            write!(f, " --faults {}", format_faults(faults))?;
        }
        if let Some(b) = self.exhaustive {
            write!(f, " --exhaustive {b}")?;
        }
        Ok(())
    }
}

/// Parse a seed range, `A..B` (B excluded, A < B) or a single seed `S`; the error says what was
/// expected (the caller names the flag or variable).
pub fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let bad = || "expected A..B (A < B, B excluded) or a single seed S".to_string();
    match text.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            if a >= b {
                return Err(bad());
            }
            Ok(a..b)
        }
        None => {
            let s: u64 = text.trim().parse().map_err(|_| bad())?;
            Ok(s..s.checked_add(1).ok_or_else(bad)?)
        }
    }
}

/// Parse `0-3,7` into sorted indexes.
pub fn parse_ops(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("--ops {text:?}: expected indexes and ranges like 0-3,7");
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b - a > 10_000_000 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `0,1,2,3,7` as `0-3,7`.
pub fn format_ops(ops: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        let mut j = i;
        while j + 1 < ops.len() && ops[j + 1] == ops[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { ops[i].to_string() } else { format!("{}-{}", ops[i], ops[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// Parse `12:sync-eio,40:write-eio`.
pub fn parse_faults(text: &str) -> Result<BTreeMap<u64, Fault>, String> {
    let bad = || {
        let kinds: Vec<&str> = Fault::NAMES.iter().map(|(_, n)| *n).collect();
        format!(
            "--faults {text:?}: expected OP:KIND pairs like 12:sync-eio,40:write-eio (kinds: {})",
            kinds.join(", ")
        )
    };
    let mut out = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (op, kind) = part.split_once(':').ok_or_else(bad)?;
        let fault = Fault::named(kind).ok_or_else(bad)?;
        out.insert(op.parse().map_err(|_| bad())?, fault);
    }
    Ok(out)
}

/// `12:sync-eio,40:write-eio`.
pub fn format_faults(faults: &BTreeMap<u64, Fault>) -> String {
    faults.iter().map(|(op, f)| format!("{op}:{}", f.name())).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_reads_back_from_its_flags() {
        let case = Case {
            seed: 9,
            keep: Some(vec![1, 2, 3, 7]),
            crash_op: Some(40),
            state: Some(2),
            faults: Some(BTreeMap::from([(12, Fault::SyncEio), (30, Fault::WriteEio)])),
            exhaustive: Some(32),
        };
        let text = case.to_string();
        assert_eq!(
            text,
            "--seed 9 --ops 1-3,7 --crash-at 40 --state 2 --faults 12:sync-eio,30:write-eio \
             --exhaustive 32"
        );
        assert_eq!(Case::parse(&text), Ok(case));
        assert_eq!(Case::parse("--seed 4"), Ok(Case::seed(4)));
        assert!(Case::parse("--crash-at 4").unwrap_err().contains("no --seed"));
        assert!(Case::parse("--seed x").unwrap_err().contains("\"x\""));
        assert!(Case::parse("--seed 1 --bogus 2").unwrap_err().contains("--bogus"));
        assert!(Case::parse("--seed 1 --exhaustive 0").is_err());
    }
}
