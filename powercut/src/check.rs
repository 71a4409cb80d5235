//! [`Check`]: crash-test your engine from `cargo test`.
//!
//! ```no_run
//! # use powercut::{Check, Subject};
//! # fn demo<MyEngine: Subject>(config: MyEngine::Config) {
//! let summary = Check::<MyEngine>::new(config).seeds(0..50).run().unwrap_or_else(|f| panic!("{f}"));
//! println!("{summary}");
//! # }
//! ```
//!
//! `run` runs every scenario (the default suite unless [`Check::scenarios`] says otherwise) over
//! its seeds, in parallel, and returns a [`Summary`] — or, at the first failing scenario, a
//! [`Failure`] whose `Display` is the replay of the *shrunk* first failure and the one command
//! that replays it.
//!
//! Environment overrides, read by `run` (a bad value is a [`Failure::Setup`] naming it):
//! - `POWERCUT_SEEDS=A..B`: these seeds of every scenario;
//! - `POWERCUT_SEED=S`: that one seed;
//! - `POWERCUT_JOBS=N`: worker threads (results do not depend on it);
//! - `POWERCUT_CASE='SCENARIO --seed S ...'`: only that case, replayed (the failure message
//!   prints this command).
//!
//! Failures persist: the shrunk case of a failure is written to `powercut-regressions/` in the
//! crate under test (`CARGO_MANIFEST_DIR`, which `cargo test` sets) and replayed first by every
//! later run of the same subject, until you delete the file.
//!
//! Nothing checked is never a pass: a run over no crash state (an empty seed range, every
//! scenario skipped), or a saved or `POWERCUT_CASE` case that reaches no crash state (a stale or
//! mistyped one), is a [`Failure::Setup`] saying so.

use crate::case::Case;
use crate::replay::replay;
use crate::run::Focus;
use crate::scenario::Scenario;
use crate::shrink::shrink;
use crate::subject::{Subject, config_for};
use crate::suite::{ScenarioResult, digest, run_seeds};
use serde_json::{Value, json};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where failures persist, under the crate being tested.
pub const REGRESSIONS_DIR: &str = "powercut-regressions";

/// A crash test of subject `S`, built up and then [`run`](Check::run).
#[derive(Debug)]
pub struct Check<S: Subject> {
    config: S::Config,
    scenarios: Vec<Scenario>,
    seeds: Option<Range<u64>>,
    jobs: Option<usize>,
    bugs: Vec<String>,
    regressions: Option<PathBuf>,
    test_command: Option<String>,
}

impl<S: Subject> Check<S> {
    /// Test `S` with `config` (a scenario's `subject.<NAME>` section replaces it for that
    /// scenario) on the default suite, each scenario's own seeds, all cores, failures persisted.
    pub fn new(config: S::Config) -> Self {
        let regressions =
            std::env::var_os("CARGO_MANIFEST_DIR").map(|d| Path::new(&d).join(REGRESSIONS_DIR));
        Check {
            config,
            scenarios: crate::scenarios::default(),
            seeds: None,
            jobs: None,
            bugs: Vec::new(),
            regressions,
            test_command: None,
        }
    }

    /// The command a failure prints to replay its case, before ` -- TEST --exact --nocapture`
    /// (default: `cargo test -p PACKAGE`). Set it when your crash tests need more, such as
    /// `cargo test --features powercut`: the printed command must build the test it names.
    pub fn test_command(mut self, command: impl Into<String>) -> Self {
        self.test_command = Some(command.into());
        self
    }

    /// Run these scenarios instead of the default suite.
    pub fn scenarios(mut self, scenarios: impl IntoIterator<Item = Scenario>) -> Self {
        self.scenarios = scenarios.into_iter().collect();
        self
    }

    /// Run these seeds of every scenario (instead of each scenario's `0..seeds`).
    pub fn seeds(mut self, seeds: Range<u64>) -> Self {
        self.seeds = Some(seeds);
        self
    }

    /// Worker threads (default: all cores). Results do not depend on it.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Turn on the subject's bug switch `name` ([`Subject::BUGS`]) in every scenario.
    pub fn bug(mut self, name: &str) -> Self {
        self.bugs.push(name.to_string());
        self
    }

    /// Persist failures in (and replay them first from) `dir` instead of
    /// `$CARGO_MANIFEST_DIR/powercut-regressions`.
    pub fn regressions(mut self, dir: impl Into<PathBuf>) -> Self {
        self.regressions = Some(dir.into());
        self
    }

    /// Neither persist failures nor replay persisted ones (for a test that expects a failure).
    pub fn no_regressions(mut self) -> Self {
        self.regressions = None;
        self
    }

    /// Run it: the persisted regressions first, then every scenario. The first failing scenario
    /// stops the run; its first failing seed is shrunk and replayed into the [`Failure`].
    pub fn run(self) -> Result<Summary, Failure> {
        let env = Env::read()?;
        let jobs = env.jobs.or(self.jobs);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.unwrap_or(0))
            .build()
            .map_err(|e| Failure::Setup(format!("cannot start {jobs:?} worker threads: {e}")))?;
        crate::keep_freed_memory();
        let mut plan = Vec::new();
        let mut skipped = Vec::new();
        for scenario in &self.scenarios {
            let config = config_for::<S>(scenario, &self.config, &self.bugs)
                .map_err(|e| Failure::Setup(format!("scenario {}: {e}", scenario.name)))?;
            let others = crate::subject::foreign_sections::<S>(scenario);
            if !others.is_empty() {
                eprintln!(
                    "powercut: scenario {} configures {} but not {}: running the check's \
                     configuration",
                    scenario.name,
                    others.join(", "),
                    S::NAME
                );
            }
            if scenario.workload.mix.batch > 0 && !S::WRITE_BATCH {
                let why = format!("subject {} has no write_batch", S::NAME);
                eprintln!("powercut: skipped scenario {}: {why}", scenario.name);
                skipped.push((scenario.name.clone(), why));
                continue;
            }
            plan.push((scenario, config));
        }
        if let Some((name, case)) = &env.case {
            let Some((scenario, config)) = plan.iter().find(|(s, _)| &s.name == name) else {
                let names: Vec<&str> = plan.iter().map(|(s, _)| s.name.as_str()).collect();
                return Err(Failure::Setup(format!(
                    "POWERCUT_CASE names scenario {name:?}, which this check does not run \
                     (it runs {})",
                    names.join(", ")
                )));
            };
            return self.replay_case(scenario, config, case, None);
        }
        let regressions = self.replay_regressions(&plan)?;
        let mut results = Vec::new();
        for (scenario, config) in &plan {
            let seeds: Vec<u64> = env
                .seeds
                .clone()
                .or_else(|| self.seeds.clone())
                .unwrap_or(0..scenario.seeds)
                .collect();
            let result = pool.install(|| run_seeds::<S>(scenario, config, &seeds, &|_| {}));
            if result.violations() > 0 {
                return Err(self.failure(scenario, config, &result));
            }
            results.push(result);
        }
        let digest = digest(&results);
        let summary = Summary { subject: S::NAME, results, skipped, regressions, digest };
        if summary.crash_states() == 0 {
            return Err(Failure::Setup(format!(
                "checked no crash state ({} scenarios, {} seeds run): an empty seed range, or \
                 every scenario skipped",
                summary.results.len(),
                summary.seeds()
            )));
        }
        Ok(summary)
    }

    /// Replay every persisted case of this subject (of a scenario this check runs).
    fn replay_regressions(&self, plan: &[(&Scenario, S::Config)]) -> Result<usize, Failure> {
        let Some(dir) = &self.regressions else { return Ok(0) };
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut replayed = 0;
        for file in files {
            let saved = Saved::load(&file).map_err(Failure::Setup)?;
            if saved.subject != S::NAME {
                continue;
            }
            let Some((scenario, config)) = plan.iter().find(|(s, _)| s.name == saved.scenario)
            else {
                continue;
            };
            replayed += 1;
            self.replay_case(scenario, config, &saved.case, Some(file))?;
        }
        Ok(replayed)
    }

    /// The failure of one case, or `Ok` with an empty summary when it passes.
    fn replay_case(
        &self,
        scenario: &Scenario,
        config: &S::Config,
        case: &Case,
        saved: Option<PathBuf>,
    ) -> Result<Summary, Failure> {
        let replayed = replay::<S>(scenario, config, case);
        let Some(v) = replayed.outcome.violations.first() else {
            if replayed.outcome.crash_states == 0 {
                // A case that reaches no crash state checked nothing: it must not read as fixed.
                let from = saved.map_or_else(
                    || "POWERCUT_CASE".to_string(),
                    |f| format!("{} (delete it if the case no longer applies)", f.display()),
                );
                return Err(Failure::Setup(format!(
                    "{from}: case `{} {case}` checks no crash state: seed {} never reaches that \
                     crash point or state",
                    scenario.name, case.seed
                )));
            }
            eprintln!("powercut: {} {case} passes", scenario.name);
            return Ok(Summary {
                subject: S::NAME,
                results: Vec::new(),
                skipped: Vec::new(),
                regressions: 0,
                digest: digest(&[]),
            });
        };
        Err(Failure::Violation(Box::new(Violated {
            subject: S::NAME,
            scenario: scenario.name.clone(),
            seed: case.seed,
            class: v.class.name().to_string(),
            message: v.message.clone(),
            failing_seeds: 1,
            seeds_run: 1,
            shrunk_from: None,
            case: case.clone(),
            replay: replayed.text,
            command: replay_command(self.test_command.as_deref(), &scenario.name, case),
            saved,
        })))
    }

    /// Shrink the first failing seed of `result`, replay it, persist it.
    fn failure(&self, scenario: &Scenario, config: &S::Config, result: &ScenarioResult) -> Failure {
        let failing: Vec<_> = result.seeds.iter().filter(|s| !s.violations.is_empty()).collect();
        let first = failing[0];
        let v = &first.violations[0];
        let shrunk = shrink::<S>(scenario, config, first.seed, Some(v.class));
        let case = shrunk
            .as_ref()
            .map_or_else(|| Case::state(first.seed, v.crash_op, v.state), Case::from);
        // The shrunk case must fail the way the seed did; else show the seed's own crash state.
        let mut replayed = replay::<S>(scenario, config, &case);
        let mut case = case;
        if !replayed.outcome.violations.iter().any(|w| w.class == v.class) {
            case = Case::state(first.seed, v.crash_op, v.state);
            replayed = replay::<S>(scenario, config, &case);
        }
        let saved = self.regressions.as_ref().and_then(|dir| {
            let saved = Saved {
                subject: S::NAME.to_string(),
                scenario: scenario.name.clone(),
                case: case.clone(),
                class: v.class.name().to_string(),
                message: v.message.clone(),
            };
            saved.write(dir).map_err(|e| eprintln!("powercut: {e}")).ok()
        });
        Failure::Violation(Box::new(Violated {
            subject: S::NAME,
            scenario: scenario.name.clone(),
            seed: first.seed,
            class: v.class.name().to_string(),
            message: v.message.clone(),
            failing_seeds: failing.len(),
            seeds_run: result.seeds.len(),
            shrunk_from: shrunk.as_ref().map(|s| (s.keep.len(), s.original_ops)),
            command: replay_command(self.test_command.as_deref(), &scenario.name, &case),
            case,
            replay: replayed.text,
            saved,
        }))
    }
}

/// The command that replays `case` of the scenario named `name`: this same test, narrowed.
fn replay_command(test_command: Option<&str>, name: &str, case: &Case) -> String {
    let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_string);
    let mut cmd = format!("POWERCUT_CASE='{name} {case}' ");
    match test_command {
        Some(c) => cmd.push_str(c),
        None => {
            cmd.push_str("cargo test");
            if let Ok(p) = std::env::var("CARGO_PKG_NAME") {
                cmd.push_str(&format!(" -p {p}"));
            }
        }
    }
    if let Some(t) = test {
        cmd.push_str(&format!(" -- {t} --exact --nocapture"));
    }
    cmd
}

/// The environment overrides.
struct Env {
    seeds: Option<Range<u64>>,
    jobs: Option<usize>,
    case: Option<(String, Case)>,
}

impl Env {
    fn read() -> Result<Env, Failure> {
        Env::parse(|name| std::env::var(name).ok())
    }

    fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Env, Failure> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bad =
            |name: &str, value: &str, why: &str| Failure::Setup(format!("{name}={value:?}: {why}"));
        let mut seeds = None;
        let range = |name: &str, v: &str, want_range: bool| {
            if v.contains("..") != want_range {
                let want = if want_range { "expected A..B" } else { "expected a seed number" };
                return Err(bad(name, v, want));
            }
            crate::case::parse_seed_range(v).map_err(|e| bad(name, v, &e))
        };
        if let Some(v) = var("POWERCUT_SEEDS") {
            seeds = Some(range("POWERCUT_SEEDS", &v, true)?);
        }
        if let Some(v) = var("POWERCUT_SEED") {
            seeds = Some(range("POWERCUT_SEED", &v, false)?);
        }
        let jobs = match var("POWERCUT_JOBS") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(bad("POWERCUT_JOBS", &v, "expected a positive thread count")),
            },
            None => None,
        };
        let case = match var("POWERCUT_CASE") {
            Some(v) => {
                let (name, flags) = v
                    .trim()
                    .split_once(' ')
                    .ok_or_else(|| bad("POWERCUT_CASE", &v, "expected 'SCENARIO --seed S ...'"))?;
                let case = Case::parse(flags).map_err(|e| bad("POWERCUT_CASE", &v, &e))?;
                Some((name.to_string(), case))
            }
            None => None,
        };
        Ok(Env { seeds, jobs, case })
    }
}

/// A persisted failure.
struct Saved {
    subject: String,
    scenario: String,
    case: Case,
    class: String,
    message: String,
}

impl Saved {
    fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        let file =
            dir.join(format!("{}-{}-seed-{}.json", self.subject, self.scenario, self.case.seed));
        let doc = json!({
            "subject": self.subject,
            "scenario": self.scenario,
            "case": self.case.to_string(),
            "class": self.class,
            "message": self.message,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        std::fs::write(&file, text)
            .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
        Ok(file)
    }

    fn load(file: &Path) -> Result<Saved, String> {
        let at = file.display();
        let text = std::fs::read_to_string(file).map_err(|e| format!("{at}: cannot read: {e}"))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| format!("{at}: line {}: {e}", e.line()))?;
        let field = |name: &str| {
            doc[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{at}: no string field {name}"))
        };
        let case = Case::parse(&field("case")?).map_err(|e| format!("{at}: field case: {e}"))?;
        Ok(Saved {
            subject: field("subject")?,
            scenario: field("scenario")?,
            case,
            class: field("class")?,
            message: field("message")?,
        })
    }
}

/// What a passing run covered.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The subject's name.
    pub subject: &'static str,
    /// Per scenario run: every seed's outcome.
    pub results: Vec<ScenarioResult>,
    /// Scenarios not run, and why (a batch scenario for a subject without `write_batch`).
    pub skipped: Vec<(String, String)>,
    /// Persisted failures replayed first (each passed).
    pub regressions: usize,
    /// The digest of every verdict: equal across thread counts, and for the same seeds.
    pub digest: String,
}

impl Summary {
    /// Seeds run, over all scenarios.
    pub fn seeds(&self) -> usize {
        self.results.iter().map(|r| r.seeds.len()).sum()
    }

    /// Crash states checked, over all scenarios.
    pub fn crash_states(&self) -> u64 {
        self.results.iter().map(|r| r.crash_states()).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::suite::table(&self.results))?;
        for (name, why) in &self.skipped {
            writeln!(f, "skipped {name}: {why}")?;
        }
        writeln!(
            f,
            "PASS {}: {} scenarios, {} seeds, {} crash states, 0 violations{} (digest {})",
            self.subject,
            self.results.len(),
            self.seeds(),
            self.crash_states(),
            match self.regressions {
                0 => String::new(),
                n => format!(", {n} saved regressions replayed"),
            },
            self.digest
        )
    }
}

/// Why a [`Check`] failed.
#[derive(Clone, Debug)]
pub enum Failure {
    /// A crash state failed a check: the shrunk first failure, replayed.
    Violation(Box<Violated>),
    /// The check could not run as asked (a bad environment override, a bad `subject` section).
    Setup(String),
}

/// A failed check, shrunk and replayed.
#[derive(Clone, Debug)]
pub struct Violated {
    /// The subject's name.
    pub subject: &'static str,
    /// The scenario that failed.
    pub scenario: String,
    /// Its first failing seed.
    pub seed: u64,
    /// The violation's class (`durability`, ...).
    pub class: String,
    /// The violation as the run found it.
    pub message: String,
    /// Seeds of the scenario that failed, of those run.
    pub failing_seeds: usize,
    /// Seeds of the scenario run.
    pub seeds_run: usize,
    /// (operations kept, operations in the seed), when it shrank.
    pub shrunk_from: Option<(usize, usize)>,
    /// The case replayed: shrunk when it shrank.
    pub case: Case,
    /// The replay of the case.
    pub replay: String,
    /// The command that replays the case exactly.
    pub command: String,
    /// Where the case was saved, to run first next time.
    pub saved: Option<PathBuf>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Setup(why) => write!(f, "powercut: cannot run: {why}"),
            Failure::Violation(v) => {
                writeln!(
                    f,
                    "FAIL {} on scenario {}: {} on seed {} ({} of {} seeds failed)",
                    v.subject, v.scenario, v.class, v.seed, v.failing_seeds, v.seeds_run
                )?;
                writeln!(f, "  {}", v.message)?;
                if let Some((kept, of)) = v.shrunk_from {
                    writeln!(f, "\nshrunk to {kept} of {of} workload operations; the replay:\n")?;
                } else {
                    writeln!(f, "\nthe replay:\n")?;
                }
                f.write_str(&v.replay)?;
                writeln!(f, "\nreplay it:\n  {}", v.command)?;
                if let Some(path) = &v.saved {
                    writeln!(f, "saved as {}: it runs first until you delete it", path.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Failure {}

/// Also usable as a `Focus` (the case's narrowing).
impl From<&Violated> for Focus {
    fn from(v: &Violated) -> Focus {
        v.case.focus()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env, String> {
        let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        Env::parse(lookup).map_err(|e| e.to_string())
    }

    #[test]
    fn environment_overrides_parse_and_bad_ones_name_the_variable() {
        let e = env(&[("POWERCUT_SEEDS", "3..9"), ("POWERCUT_JOBS", "2")]).unwrap();
        assert_eq!((e.seeds, e.jobs), (Some(3..9), Some(2)));
        assert_eq!(env(&[("POWERCUT_SEED", "7")]).unwrap().seeds, Some(7..8));
        let (name, case) = env(&[("POWERCUT_CASE", "kill-9 --seed 4 --crash-at 9 --state 1")])
            .unwrap()
            .case
            .unwrap();
        assert_eq!(
            (name.as_str(), case.seed, case.crash_op, case.state),
            ("kill-9", 4, Some(9), Some(1))
        );
        assert!(env(&[]).unwrap().case.is_none());
        for (var, value) in [
            ("POWERCUT_SEEDS", "9..3"),
            ("POWERCUT_SEEDS", "x"),
            ("POWERCUT_SEED", "-1"),
            ("POWERCUT_JOBS", "0"),
            ("POWERCUT_CASE", "kill-9"),
            ("POWERCUT_CASE", "kill-9 --crash-at 3"),
        ] {
            let err = env(&[(var, value)]).err().unwrap_or_default();
            assert!(err.contains(var) && err.contains(value), "{var}={value}: {err}");
        }
    }
}
