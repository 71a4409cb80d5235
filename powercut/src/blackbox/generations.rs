//! Generations: life after recovery. Some bugs only show when a program carries on from a
//! recovered state and crashes again: appending after a torn tail, a bad file hiding every later
//! one, a page recovery left stale and a later write reuses. Generation 1 is the traced run.
//! For generation g + 1, states of generation g that passed their check are materialized; the
//! program's workload runs again on each, under trace (the traced command with its directory
//! replaced, or `--then`); and that run is explored like the first: its crash states checked,
//! its own acknowledgements judged on top of the state it started from.
//!
//! Which states a generation starts from: those whose crash left debris recovery had to step
//! over (a torn or garbage write, a write cut short) first, then the others, each kind spread
//! evenly over the run; at most `starts` per generation, each explored with an equal share of
//! the budget.

use super::explore::{self, Exploration, Options, Passed, Replayed};
use super::{Header, Recording, Trace, record};
use std::path::{Path, PathBuf};

/// How a later generation's workload runs on a recovered directory.
#[derive(Clone, Debug)]
pub struct Rerun {
    /// The program and its arguments; an argument `{dir}` (or, with `shell`, each `{dir}` in the
    /// script) stands for the directory.
    argv: Vec<String>,
    /// `argv` is `sh -c SCRIPT`, `{dir}` inside the script (quoted when replaced).
    shell: bool,
    /// Where it runs.
    cwd: PathBuf,
    /// The acknowledgement pattern.
    ack: String,
}

impl Rerun {
    /// The traced command again with its data directory (an argument naming the traced
    /// directory) replaced, run where it ran; or, with `then`, `sh -c THEN` here.
    pub fn of(header: &Header, then: Option<&str>) -> Result<Rerun, String> {
        let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        if let Some(then) = then {
            if !then.contains("{dir}") {
                return Err(format!("--then {then:?}: has no {{dir}} for the recovered directory"));
            }
            return Ok(Rerun {
                argv: vec!["sh".into(), "-c".into(), then.to_string()],
                shell: true,
                cwd: here,
                ack: header.ack.clone(),
            });
        }
        let cwd = header.cwd.as_ref().map_or(here, PathBuf::from);
        let dir = Path::new(&header.dir);
        let names_dir = |arg: &str| {
            let path = cwd.join(arg);
            path.canonicalize().map_or(path == dir, |p| p == dir)
        };
        // An argument naming a path inside the traced directory would make the rerun touch the
        // original data, untraced.
        let inside = |arg: &str| {
            let path = cwd.join(arg);
            let path = path.canonicalize().unwrap_or(path);
            path != dir && path.starts_with(dir)
        };
        if let Some(arg) = header.command.iter().find(|a| inside(a)) {
            return Err(format!(
                "the traced command's argument {arg:?} is inside its directory {}: run again, \
                 it would touch the original data; give the workload with --then 'CMD {{dir}}'",
                header.dir
            ));
        }
        let argv: Vec<String> = header
            .command
            .iter()
            .map(|a| if names_dir(a) { "{dir}".to_string() } else { a.clone() })
            .collect();
        if !argv.iter().any(|a| a == "{dir}") {
            return Err(format!(
                "the traced command ({}) names its directory {} in none of its arguments: give \
                 the workload to run again with --then 'CMD {{dir}}'",
                header.command.join(" "),
                header.dir
            ));
        }
        Ok(Rerun { argv, shell: false, cwd, ack: header.ack.clone() })
    }

    /// The command for `dir`, for a person.
    pub fn describe(&self) -> String {
        if self.shell { self.argv[2].clone() } else { self.argv.join(" ") }
    }

    fn argv_for(&self, dir: &Path) -> Vec<String> {
        let path = dir.display().to_string();
        if self.shell {
            let quoted = format!("'{}'", path.replace('\'', "'\\''"));
            vec!["sh".into(), "-c".into(), self.argv[2].replace("{dir}", &quoted)]
        } else {
            self.argv.iter().map(|a| if a == "{dir}" { path.clone() } else { a.clone() }).collect()
        }
    }
}

/// One later generation, run again from one state of the generation before.
#[derive(Debug)]
pub struct Run {
    /// Its generation (2 or more).
    pub generation: u32,
    /// The ids of the states it descends from, generation 1's first.
    pub from: Vec<String>,
    /// The workload's trace on the recovered state.
    pub trace: Trace,
    /// The trace replayed.
    pub replayed: Replayed,
    /// Its exploration; `None` when the program failed to run (`failed_run`).
    pub exploration: Option<Exploration>,
    /// The program exited non-zero (or was killed) run again on a state its check had passed:
    /// how, with the last lines of its stderr.
    pub failed_run: Option<String>,
}

/// Explore generations 2..=`generations` after generation 1 (the trace replayed as `replayed`,
/// explored as `explored`), at most `starts` states per generation.
pub fn explore_later(
    (replayed, explored): (&Replayed, &Exploration),
    o: &Options,
    rerun: &Rerun,
    generations: u32,
    starts: usize,
) -> Result<Vec<Run>, String> {
    let mut runs: Vec<Run> = Vec::new();
    // The parents of the next generation: (replayed, exploration, ancestry).
    let mut parents: Vec<(usize, Vec<String>)> = vec![(usize::MAX, Vec::new())];
    let starts = starts.max(1);
    for generation in 2..=generations {
        let parent = |p: usize| -> (&Replayed, &Exploration) {
            if p == usize::MAX {
                (replayed, explored)
            } else {
                let r = &runs[p];
                (&r.replayed, r.exploration.as_ref().expect("a parent was explored"))
            }
        };
        let mut candidates: Vec<(usize, Vec<String>, &Passed)> = Vec::new();
        for (p, from) in &parents {
            for passed in &parent(*p).1.passed {
                candidates.push((*p, from.clone(), passed));
            }
        }
        let chosen = choose(&candidates, starts, |c| c.2.left_debris);
        let mut made = Vec::new();
        for (k, (p, from, passed)) in chosen.into_iter().enumerate() {
            let (parent_replayed, _) = parent(p);
            let image = explore::image_of(parent_replayed, passed.point, &passed.crash);
            let from: Vec<String> = from.iter().cloned().chain([passed.id.clone()]).collect();
            let run = run_from(&image, o, rerun, generation, k, from, starts)?;
            made.push(run);
        }
        let first = runs.len();
        runs.extend(made);
        parents = (first..runs.len())
            .filter(|&i| runs[i].exploration.is_some())
            .map(|i| (i, runs[i].from.clone()))
            .collect();
        if parents.is_empty() {
            break;
        }
    }
    Ok(runs)
}

/// Up to `n` of `items`: those `first` holds for, then the rest, each kind spread evenly.
fn choose<T: Clone>(items: &[T], n: usize, first: impl Fn(&T) -> bool) -> Vec<T> {
    let spread = |of: Vec<&T>, n: usize| -> Vec<T> {
        let n = n.min(of.len());
        (0..n).map(|i| of[i * of.len() / n].clone()).collect()
    };
    let (a, b): (Vec<&T>, Vec<&T>) = items.iter().partition(|t| first(t));
    let mut out = spread(a, n);
    let left = n - out.len();
    out.extend(spread(b, left));
    out
}

/// Materialize `image`, run the workload on it under trace, and explore that run; its scratch
/// directory is removed whatever happens.
fn run_from(
    image: &faultfs::SimFs,
    o: &Options,
    rerun: &Rerun,
    generation: u32,
    k: usize,
    from: Vec<String>,
    starts: usize,
) -> Result<Run, String> {
    let root = o.scratch.join(format!("gen{generation}-{k}"));
    let _ = std::fs::remove_dir_all(&root);
    let run = run_in(&root, image, o, rerun, starts);
    let _ = std::fs::remove_dir_all(&root);
    let (trace, replayed, outcome) = run.map_err(|e| format!("generation {generation}: {e}"))?;
    let (exploration, failed_run) = match outcome {
        Ok(x) => (Some(x), None),
        Err(how) => {
            (None, Some(format!("the workload, run again on a state its check passed, {how}")))
        }
    };
    Ok(Run { generation, from, trace, replayed, exploration, failed_run })
}

/// The run of [`run_from`] in `root`: the trace, its replay, and its exploration or how the
/// workload failed (it hung, or exited non-zero).
fn run_in(
    root: &Path,
    image: &faultfs::SimFs,
    o: &Options,
    rerun: &Rerun,
    starts: usize,
) -> Result<(Trace, Replayed, Result<Exploration, String>), String> {
    let data = root.join("data");
    explore::materialize_into(image, &data)?;
    let stderr = root.join("stderr");
    let recorded = record(&Recording {
        dir: data.clone(),
        command: rerun.argv_for(&data),
        ack: rerun.ack.clone(),
        fail_sync: None,
        quiet: Some(stderr.clone()),
        cwd: Some(rerun.cwd.clone()),
        timeout: Some(o.timeout * 10),
    });
    let (trace, failed) = match recorded {
        Ok(trace) => {
            let failed = match trace.header.exit_code {
                Some(0) => None,
                Some(code) => Some(format!("exited with code {code}")),
                None => Some("was killed by a signal".to_string()),
            }
            .map(|how| {
                let tail = std::fs::read_to_string(&stderr).unwrap_or_default();
                format!("{how}: {}", explore::last_lines(&tail, 3))
            });
            (trace, failed)
        }
        // A workload that hangs on a recovered state is a failure of that state.
        Err(e) if e.contains("was killed") => {
            let header = super::Header {
                powercut_trace: 1,
                dir: data.display().to_string(),
                command: rerun.argv_for(&data),
                cwd: Some(rerun.cwd.display().to_string()),
                ack: rerun.ack.clone(),
                exit_code: None,
                fail_sync: None,
                warnings: Vec::new(),
            };
            (Trace { header, ops: Vec::new() }, Some(format!("hung: {e}")))
        }
        Err(e) => return Err(e),
    };
    let replayed = explore::replay(&trace, &o.profile, o.seed)?;
    if let Some(how) = failed {
        return Ok((trace, replayed, Err(how)));
    }
    let child =
        Options { budget: (o.budget / starts).max(16), scratch: root.join("states"), ..o.clone() };
    let exploration = explore::explore(&trace, &replayed, &child, &|_, _| {})?;
    Ok((trace, replayed, Ok(exploration)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_debris_first_and_spread() {
        let items: Vec<u32> = (0..20).collect();
        assert_eq!(choose(&items, 4, |i| i % 5 == 0), vec![0, 5, 10, 15]);
        assert_eq!(choose(&items, 6, |i| i % 5 == 0), vec![0, 5, 10, 15, 1, 11]);
        assert_eq!(choose(&items[..3], 8, |_| false), vec![0, 1, 2]);
    }

    #[test]
    fn the_rerun_replaces_the_traced_directory_or_asks_for_then() {
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let header = Header {
            powercut_trace: 1,
            dir: dir.join("data").display().to_string(),
            command: vec!["prog".into(), "data".into(), "load".into()],
            cwd: Some(dir.display().to_string()),
            ack: "^ACK ".into(),
            exit_code: Some(0),
            fail_sync: None,
            warnings: Vec::new(),
        };
        let r = Rerun::of(&header, None).unwrap();
        assert_eq!(r.argv_for(Path::new("/s/d")), ["prog", "/s/d", "load"]);
        let t = Rerun::of(&header, Some("prog {dir} more")).unwrap();
        assert_eq!(t.argv_for(Path::new("/s/it's")), ["sh", "-c", "prog '/s/it'\\''s' more"]);
        assert!(Rerun::of(&header, Some("prog")).unwrap_err().contains("{dir}"));
        let inside =
            Header { command: vec!["prog".into(), "data/wal.log".into()], ..header.clone() };
        assert!(Rerun::of(&inside, None).unwrap_err().contains("inside its directory"));
        let elsewhere = Header { command: vec!["prog".into(), "other".into()], ..header };
        assert!(Rerun::of(&elsewhere, None).unwrap_err().contains("--then"));
    }
}
