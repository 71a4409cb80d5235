//! The `powercut` command line.
//!
//! Exit codes: 0 clean, 1 a violation was found (or a run was not deterministic), 2 bad input
//! (nothing is run or written), 3 an internal error.

use crate::oracle::Class;
use crate::run::{Focus, run_seed, run_seed_detailed};
use crate::scenario::{Scenario, States};
use crate::shrink::{Shrunk, shrink};
use crate::subject::Bitcask;
use crate::suite::{ScenarioResult, merge, run_seeds, to_json};
use crate::workload::{Op, key_bytes};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Parser, Debug)]
#[command(
    name = "powercut",
    version,
    about = "Crash-consistency torture tests: cut the power at every syscall, check what survives",
    after_help = "A failing seed prints the command that replays it. Start with `powercut run`, \
                  then `powercut replay` and `powercut shrink` on what it finds."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios (default: every scenarios/*.json) and check every crash state.
    Run(RunArgs),
    /// Re-run one seed and show, step by step, what happened and which check failed.
    Replay(ReplayArgs),
    /// Reduce a failing seed to a minimal case that still fails the same check.
    Shrink(ShrinkArgs),
    /// Combine the --json results of partitions into one summary (same digest as one run).
    Merge(MergeArgs),
    /// List the scenarios, persistence profiles, engine bug switches and sync strategies.
    List,
    /// Write the durability report (durability.{json,md,html}): each strategy's speed on this
    /// disk beside its crash-tested loss, the known-bug table, the harness's speed.
    Report(ReportArgs),
    /// Run an unmodified program under strace and record what it does to one directory, with
    /// its acknowledgements, as a trace of logical file operations.
    Trace(crate::blackbox::cmd::TraceArgs),
    /// Crash-test a traced program: every distinct crash state of its trace, materialized into
    /// a directory, checked by the program's own recovery, judged against its acknowledgements.
    Explore(crate::blackbox::cmd::ExploreArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario files; none runs every scenarios/*.json.
    scenarios: Vec<PathBuf>,
    /// Seed range A..B (B excluded), or one seed S; default: each scenario's 0..seeds.
    #[arg(long)]
    seeds: Option<String>,
    /// Run only share K of N of the seeds (1 <= K <= N): seeds s with s % N == K - 1. The N
    /// shares are disjoint and together are the whole run.
    #[arg(long)]
    partition: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Turn on a known engine bug in every scenario (repeatable); see `powercut list`.
    #[arg(long = "engine-bug")]
    engine_bugs: Vec<String>,
    /// Write machine-readable results (merge them with `powercut merge`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML: one testcase per scenario.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Directory for one JSON file per failing seed: the violation, the command that replays it,
    /// the command that shrinks it, and (for the first failing seed of each scenario) the shrunk
    /// case itself.
    #[arg(long, default_value = "target/powercut-failures")]
    failures: PathBuf,
    /// Do not shrink failures (faster when many seeds fail).
    #[arg(long)]
    no_shrink: bool,
    /// Run every seed twice and fail on any difference.
    #[arg(long)]
    check_determinism: bool,
    /// No progress bar and no per-failure lines: the summary only.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct CaseArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The seed.
    #[arg(long)]
    seed: u64,
    /// Turn on a known engine bug (repeatable).
    #[arg(long = "engine-bug")]
    engine_bugs: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    case: CaseArgs,
    /// Only this crash point (operation number); default: the first failing one, else all.
    #[arg(long)]
    crash_at: Option<u64>,
    /// Only this crash state at the crash point.
    #[arg(long)]
    state: Option<u32>,
    /// Only these workload operations, e.g. 0-3,7 (as `shrink` prints).
    #[arg(long)]
    ops: Option<String>,
    /// Exactly these injected faults, e.g. 12:sync-eio,40:write-eio (as `shrink` prints).
    #[arg(long)]
    faults: Option<String>,
    /// Enumerate crash states exhaustively up to this budget (as `shrink` prints).
    #[arg(long)]
    exhaustive: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct ShrinkArgs {
    #[command(flatten)]
    case: CaseArgs,
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// The --json results of the partitions.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Write the merged results here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Where to write the report.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Fewer seeds and operations: under two minutes on 2 cores.
    #[arg(long)]
    quick: bool,
}

/// A bad-input error: exit 2.
struct BadInput(String);

/// The default suite directory: `scenarios/` here, else the one in the source tree.
fn default_suite() -> PathBuf {
    let here = Path::new("scenarios");
    if here.is_dir() {
        here.to_path_buf()
    } else {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")).to_path_buf()
    }
}

fn suite_files(dir: &Path) -> Result<Vec<PathBuf>, BadInput> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BadInput(format!("{}: cannot list the scenario suite: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BadInput(format!("{}: no scenario files (*.json)", dir.display())));
    }
    Ok(files)
}

/// Parse `A..B` or `S`.
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let bad = || format!("--seeds {text:?}: expected A..B (A < B, B excluded) or a single seed S");
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

/// Parse `K/N` (1 <= K <= N).
pub fn parse_partition(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--partition {text:?}: expected K/N with 1 <= K <= N, e.g. 2/3");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Parse `0-3,7` into sorted indexes.
fn parse_ops(text: &str) -> Result<Vec<u32>, BadInput> {
    let bad = || BadInput(format!("--ops {text:?}: expected indexes and ranges like 0-3,7"));
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

fn format_ops(ops: &[u32]) -> String {
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

fn parse_faults(text: &str) -> Result<BTreeMap<u64, faultfs::Fault>, BadInput> {
    let bad = || {
        BadInput(format!("--faults {text:?}: expected OP:KIND pairs like 12:sync-eio,40:write-eio"))
    };
    let mut out = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (op, kind) = part.split_once(':').ok_or_else(bad)?;
        let fault = match kind {
            "sync-eio" => faultfs::Fault::SyncEio,
            "write-eio" => faultfs::Fault::WriteEio,
            _ => return Err(bad()),
        };
        out.insert(op.parse().map_err(|_| bad())?, fault);
    }
    Ok(out)
}

fn format_faults(faults: &BTreeMap<u64, faultfs::Fault>) -> String {
    let kind = |f: &faultfs::Fault| match f {
        faultfs::Fault::SyncEio => "sync-eio",
        faultfs::Fault::WriteEio => "write-eio",
    };
    faults.iter().map(|(op, f)| format!("{op}:{}", kind(f))).collect::<Vec<_>>().join(",")
}

/// Load a scenario and apply `--engine-bug`s.
fn load(path: &Path, bugs: &[String]) -> Result<(Scenario, engine::Config), BadInput> {
    let mut scenario = Scenario::load(path).map_err(BadInput)?;
    for bug in bugs {
        if !scenario.engine.bugs.contains(bug) {
            scenario.engine.bugs.push(bug.clone());
        }
    }
    let config = scenario.engine_config().map_err(|e| BadInput(format!("--engine-bug: {e}")))?;
    Ok((scenario, config))
}

fn bug_flags(bugs: &[String]) -> String {
    bugs.iter().map(|b| format!(" --engine-bug {b}")).collect()
}

struct Job {
    path: PathBuf,
    scenario: Scenario,
    config: engine::Config,
    seeds: Vec<u64>,
}

fn check_output_path(flag: &str, path: &Option<PathBuf>) -> Result<(), BadInput> {
    if let Some(p) = path {
        if p.is_dir() {
            return Err(BadInput(format!("{flag} {}: is a directory", p.display())));
        }
    }
    Ok(())
}

fn prepare(args: &RunArgs) -> Result<Vec<Job>, BadInput> {
    let files = if args.scenarios.is_empty() {
        suite_files(&default_suite())?
    } else {
        args.scenarios.clone()
    };
    let seeds = args.seeds.as_deref().map(parse_seeds).transpose().map_err(BadInput)?;
    let partition = args.partition.as_deref().map(parse_partition).transpose().map_err(BadInput)?;
    if args.jobs == Some(0) {
        return Err(BadInput("--jobs 0: need at least one thread".into()));
    }
    check_output_path("--json", &args.json)?;
    check_output_path("--junit", &args.junit)?;
    let mut jobs = Vec::new();
    for path in files {
        let (scenario, config) = load(&path, &args.engine_bugs)?;
        let range = seeds.clone().unwrap_or(0..scenario.seeds);
        let seeds: Vec<u64> = match partition {
            Some((k, n)) => range.filter(|s| s % n == k - 1).collect(),
            None => range.collect(),
        };
        jobs.push(Job { path, scenario, config, seeds });
    }
    Ok(jobs)
}

fn summary(results: &[ScenarioResult]) -> String {
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
    out
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one testsuite, one testcase per scenario; a failing scenario carries its first
/// failing seeds with class, message and the command that reproduces each.
fn junit(jobs: &[Job], results: &[ScenarioResult], bugs: &[String]) -> String {
    let failures = results.iter().filter(|r| r.violations() > 0).count();
    let time: f64 = results.iter().map(|r| r.elapsed_secs).sum();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n  <testsuite name=\"powercut\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n",
        results.len(),
        results.len()
    );
    for (job, r) in jobs.iter().zip(results) {
        x.push_str(&format!(
            "    <testcase classname=\"powercut.{}\" name=\"{}\" time=\"{:.3}\">\n",
            xml_escape(&r.name),
            xml_escape(&r.name),
            r.elapsed_secs
        ));
        let failing: Vec<_> = r.seeds.iter().filter(|s| !s.violations.is_empty()).collect();
        if let Some(first) = failing.first() {
            let v = &first.violations[0];
            let mut body = String::new();
            for s in failing.iter().take(20) {
                let v = &s.violations[0];
                body.push_str(&format!(
                    "seed {}: {} at op {} ({}): {}\nreproduce: {}\n\n",
                    s.seed,
                    v.class,
                    v.crash_op,
                    v.crash_kind.name(),
                    v.message,
                    replay_command(&job.path, s.seed, v.crash_op, v.state, bugs)
                ));
            }
            x.push_str(&format!(
                "      <failure type=\"{}\" message=\"{} failing seeds; first: seed {}: {}\">{}</failure>\n",
                v.class,
                failing.len(),
                first.seed,
                xml_escape(&v.message),
                xml_escape(&body)
            ));
        }
        x.push_str(&format!(
            "      <system-out>{} seeds, {} crash states, {} distinct</system-out>\n    </testcase>\n",
            r.seeds.len(),
            r.crash_states(),
            r.distinct_states()
        ));
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn replay_command(path: &Path, seed: u64, crash_op: u64, state: u32, bugs: &[String]) -> String {
    let at = if crash_op > 0 {
        format!(" --crash-at {crash_op} --state {state}")
    } else {
        String::new()
    };
    format!("powercut replay {} --seed {seed}{at}{}", path.display(), bug_flags(bugs))
}

fn shrunk_command(path: &Path, s: &Shrunk, bugs: &[String]) -> String {
    let mut cmd = format!(
        "powercut replay {} --seed {} --ops {} --crash-at {} --state {}",
        path.display(),
        s.seed,
        format_ops(&s.keep),
        s.crash_op,
        s.state
    );
    if !s.faults.is_empty() {
        cmd.push_str(&format!(" --faults {}", format_faults(&s.faults)));
    }
    if let Some(b) = s.exhaustive {
        cmd.push_str(&format!(" --exhaustive {b}"));
    }
    cmd + &bug_flags(bugs)
}

fn shrunk_json(path: &Path, s: &Shrunk, bugs: &[String]) -> Value {
    json!({
        "class": s.class.name(),
        "message": s.message,
        "ops": s.keep.len(),
        "original_ops": s.original_ops,
        "keep": format_ops(&s.keep),
        "crash_op": s.crash_op,
        "state": s.state,
        "faults": format_faults(&s.faults),
        "exhaustive": s.exhaustive,
        "replay": shrunk_command(path, s, bugs),
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), BadInput> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| BadInput(format!("{}: cannot create: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| BadInput(format!("{}: cannot write: {e}", path.display())))
}

fn run(args: RunArgs) -> Result<bool, BadInput> {
    let jobs = prepare(&args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| BadInput(format!("--jobs: {e}")))?;
    let total: u64 = jobs.iter().map(|j| j.seeds.len() as u64).sum();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar =
        if show { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  [{elapsed_precise} < {eta}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let violations = AtomicU64::new(0);
    let on_seed = |o: &crate::run::SeedOutcome| {
        let v = violations.fetch_add(o.violations.len() as u64, Ordering::Relaxed)
            + o.violations.len() as u64;
        bar.set_message(format!("{v} violations"));
        bar.inc(1);
    };
    let results: Vec<ScenarioResult> = pool.install(|| {
        jobs.iter()
            .map(|job| {
                bar.set_prefix(job.scenario.name.clone());
                run_seeds::<Bitcask>(&job.scenario, &job.config, &job.seeds, &on_seed)
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut nondeterministic = Vec::new();
    if args.check_determinism {
        let again: Vec<ScenarioResult> = pool.install(|| {
            jobs.iter()
                .map(|job| run_seeds::<Bitcask>(&job.scenario, &job.config, &job.seeds, &|_| {}))
                .collect()
        });
        for (a, b) in results.iter().zip(&again) {
            for (x, y) in a.seeds.iter().zip(&b.seeds) {
                if x != y {
                    nondeterministic.push(format!("{} seed {}", a.name, x.seed));
                }
            }
        }
    }
    print!("{}", summary(&results));
    let mut failures = 0;
    for (job, r) in jobs.iter().zip(&results) {
        let mut shrunk_one = args.no_shrink;
        for s in &r.seeds {
            let Some(v) = s.violations.first() else { continue };
            failures += 1;
            let repro = replay_command(&job.path, s.seed, v.crash_op, v.state, &args.engine_bugs);
            let shrunk = if shrunk_one {
                None
            } else {
                shrunk_one = true;
                shrink::<Bitcask>(&job.scenario, &job.config, s.seed, None)
            };
            if !args.quiet && failures <= 20 {
                println!(
                    "\nFAIL {} seed {}: {} at op {} ({})",
                    r.name,
                    s.seed,
                    v.class,
                    v.crash_op,
                    v.crash_kind.name()
                );
                println!("  {}", v.message);
                println!("  reproduce: {repro}");
                if let Some(sh) = &shrunk {
                    println!(
                        "  shrunk ({}) to {} of {} operations: {}",
                        sh.class,
                        sh.keep.len(),
                        sh.original_ops,
                        shrunk_command(&job.path, sh, &args.engine_bugs)
                    );
                }
            }
            let record = json!({
                "scenario": job.path.display().to_string(),
                "name": r.name,
                "seed": s.seed,
                "crash_op": v.crash_op,
                "crash_kind": v.crash_kind.name(),
                "state": v.state,
                "class": v.class.name(),
                "message": v.message,
                "engine_bugs": args.engine_bugs,
                "reproduce": repro,
                "shrink": format!("powercut shrink {} --seed {}{}", job.path.display(), s.seed, bug_flags(&args.engine_bugs)),
                "shrunk": shrunk.map(|sh| shrunk_json(&job.path, &sh, &args.engine_bugs)),
            });
            let file = args.failures.join(format!("{}-seed-{}.json", r.name, s.seed));
            write_file(&file, &(serde_json::to_string_pretty(&record).unwrap_or_default() + "\n"))?;
        }
    }
    if failures > 20 && !args.quiet {
        println!("\n... and {} more failing seeds", failures - 20);
    }
    if failures > 0 {
        println!("\nfailing seeds written to {}/", args.failures.display());
    }
    for n in &nondeterministic {
        println!("NONDETERMINISTIC: {n} gave different outcomes on two runs");
    }
    let doc = to_json(&results);
    println!("\ndigest {}", doc["digest"].as_str().unwrap_or(""));
    if let Some(path) = &args.json {
        write_file(path, &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"))?;
    }
    if let Some(path) = &args.junit {
        write_file(path, &junit(&jobs, &results, &args.engine_bugs))?;
    }
    Ok(failures > 0 || !nondeterministic.is_empty())
}

fn describe_op(op: &Op) -> String {
    let key = |k: &u32| String::from_utf8_lossy(&key_bytes(*k)).into_owned();
    match op {
        Op::Put { key: k, value_bytes } => format!("put {} ({value_bytes} bytes)", key(k)),
        Op::Delete { key: k } => format!("delete {}", key(k)),
        Op::Get { key: k } => format!("get {}", key(k)),
        Op::Merge => "merge".into(),
    }
}

fn replay(args: ReplayArgs) -> Result<bool, BadInput> {
    let (mut scenario, config) = load(&args.case.scenario, &args.case.engine_bugs)?;
    if let Some(budget) = args.exhaustive {
        if budget == 0 {
            return Err(BadInput("--exhaustive 0: the budget must be positive".into()));
        }
        scenario.faults.states = States::Exhaustive { budget };
    }
    let keep = args.ops.as_deref().map(parse_ops).transpose()?;
    let faults = args.faults.as_deref().map(parse_faults).transpose()?;
    let seed = args.case.seed;
    // Without --crash-at: the first failing crash point of the seed, else every point.
    let crash_op = match args.crash_at {
        Some(k) => Some(k),
        None => {
            let probe = Focus { keep: keep.clone(), faults: faults.clone(), ..Focus::default() };
            run_seed::<Bitcask>(&scenario, &config, seed, probe)
                .violations
                .first()
                .map(|v| v.crash_op)
                .filter(|k| *k > 0)
        }
    };
    let focus = Focus { crash_op, keep, state: args.state, faults, detail: true };
    let (outcome, detail) = run_seed_detailed::<Bitcask>(&scenario, &config, seed, &focus);
    let Some(d) = detail else { return Ok(!outcome.violations.is_empty()) };
    println!("scenario {} ({}), seed {seed}", scenario.name, args.case.scenario.display());
    println!(
        "engine: {} with {}, profile {}",
        scenario.engine.strategy.label(),
        config.bugs,
        scenario.faults.profile
    );
    println!("\n== the workload ({} operations) ==", d.plan.len());
    let mut writes = d.history.writes.iter();
    for ((index, op), (_, start, end)) in d.plan.iter().zip(&d.ranges) {
        let mut line =
            format!("  [{index:>4}] fs ops {:>5}..={:<5} {}", start + 1, end, describe_op(op));
        if matches!(op, Op::Put { .. } | Op::Delete { .. }) {
            if let Some(w) = writes.next() {
                line.push_str(&match w.status {
                    crate::oracle::Status::Acked(a) => format!(
                        "  -> acked at {:?}, seq {}, promise {:?}, durable through {}",
                        w.acked_at, a.seq, a.promise, a.durable_through
                    ),
                    crate::oracle::Status::Failed => "  -> FAILED (not acknowledged)".into(),
                    crate::oracle::Status::InFlight => "  -> in flight".into(),
                });
            }
        }
        if crash_op.is_some_and(|k| *start < k && k <= *end) {
            line.push_str("   <== the crash");
        }
        println!("{line}");
    }
    if !d.fired.is_empty() {
        println!(
            "\ninjected faults that fired: {}",
            format_faults(&d.fired.iter().copied().collect())
        );
    }
    if let Some(k) = crash_op {
        println!("\n== syscall trace around the crash at op {k} ==");
        for e in d.trace.iter().filter(|e| e.op + 12 >= k && e.op <= k + 1) {
            println!("  {e}{}", if e.op == k { "   <== in flight" } else { "" });
        }
    }
    for (crash, index, kept) in &d.states {
        println!(
            "\n== crash state {index} at op {} ({} at {:?}) ==",
            crash.op,
            crash.kind.name(),
            crash.at
        );
        if kept.is_empty() {
            println!("  nothing was unsynced: the crash image is the durable image");
        }
        for line in kept.iter().take(60) {
            println!("  {line}");
        }
        if kept.len() > 60 {
            println!("  ... {} more pieces", kept.len() - 60);
        }
        let found: Vec<_> = outcome
            .violations
            .iter()
            .filter(|v| v.crash_op == crash.op && v.state == *index)
            .collect();
        if found.is_empty() {
            println!("  verdict: every check passed");
        }
        for v in found {
            println!("  VIOLATION {}: {}", v.class, v.message);
        }
    }
    for v in outcome.violations.iter().filter(|v| v.crash_op == 0) {
        println!("\nVIOLATION during the run {}: {}", v.class, v.message);
    }
    println!(
        "\n{} crash states checked, {} violations",
        outcome.crash_states,
        outcome.violations.len()
    );
    Ok(!outcome.violations.is_empty())
}

fn shrink_cmd(args: ShrinkArgs) -> Result<bool, BadInput> {
    let (scenario, config) = load(&args.case.scenario, &args.case.engine_bugs)?;
    match shrink::<Bitcask>(&scenario, &config, args.case.seed, None) {
        None => {
            println!(
                "seed {} of {} does not fail: nothing to shrink",
                args.case.seed, scenario.name
            );
            Ok(false)
        }
        Some(s) => {
            println!(
                "{} on seed {}: shrunk from {} to {} workload operations",
                s.class,
                s.seed,
                s.original_ops,
                s.keep.len()
            );
            println!("  operations kept: {}", format_ops(&s.keep));
            println!(
                "  crash point: op {}, state {}{}",
                s.crash_op,
                s.state,
                s.exhaustive.map_or(String::new(), |b| format!(" (exhaustive, budget {b})"))
            );
            if !s.faults.is_empty() {
                println!("  injected faults: {}", format_faults(&s.faults));
            }
            println!("  {}", s.message);
            println!(
                "\nreplay it:\n  {}",
                shrunk_command(&args.case.scenario, &s, &args.case.engine_bugs)
            );
            Ok(true)
        }
    }
}

fn merge_cmd(args: MergeArgs) -> Result<bool, BadInput> {
    check_output_path("--json", &args.json)?;
    let mut docs = Vec::new();
    for path in &args.results {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| BadInput(format!("{}: line {}: {e}", path.display(), e.line())))?;
        docs.push((path.display().to_string(), doc));
    }
    let results = merge(&docs).map_err(BadInput)?;
    print!("{}", summary(&results));
    let doc = to_json(&results);
    println!("\ndigest {}", doc["digest"].as_str().unwrap_or(""));
    if let Some(path) = &args.json {
        write_file(path, &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"))?;
    }
    Ok(results.iter().any(|r| r.violations() > 0))
}

fn list() -> Result<bool, BadInput> {
    println!("scenarios ({}):", default_suite().display());
    for path in suite_files(&default_suite())? {
        match Scenario::load(&path) {
            Ok(s) => println!("  {:<28} {}", s.name, s.description),
            Err(e) => println!("  {e}"),
        }
    }
    println!("\npersistence profiles (faults.profile):");
    for name in faultfs::PROFILE_NAMES {
        println!("  {name:<28} {}", faultfs::Profile::describe(name));
    }
    println!("\nengine bug switches (--engine-bug):");
    for (name, what) in engine::BUGS {
        println!("  {name:<28} {what}");
    }
    println!("\nsync strategies (engine.strategy.kind):");
    for (name, what) in [
        ("o_sync", "every write durable before it is acknowledged"),
        ("interval {ms}", "a tick syncs when dirty and ms have passed (seed 000)"),
        ("none", "never syncs on the write path; the OS writeback decides"),
        (
            "batch {max_ops, max_delay_ms}",
            "group commit: acknowledged when the group's sync completes",
        ),
        (
            "checkpoint {interval_ms, idle_ms, max_delay_ms}",
            "background checkpointer with idle defer and max delay (seed 001)",
        ),
    ] {
        println!("  {name:<28} {what}");
    }
    println!("\nsync calls (engine.sync_call): fsync, fdatasync, o_dsync");
    println!("crash points (faults.crash_points): random, every-op, at-sync-points");
    println!("violation classes: {}", Class::ALL.map(Class::name).join(", "));
    Ok(false)
}

fn report(args: ReportArgs) -> Result<bool, BadInput> {
    if args.out.is_file() {
        return Err(BadInput(format!("--out {}: is a file", args.out.display())));
    }
    let scratch = Path::new("target").join("report-disk");
    let start = std::time::Instant::now();
    let doc = crate::report::collect(&default_suite(), &scratch, args.quick);
    let written = crate::report::write(&args.out, &doc).map_err(BadInput)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    println!("in {:.0} s", start.elapsed().as_secs_f64());
    Ok(false)
}

/// Run the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let outcome = std::panic::catch_unwind(|| match cli.command {
        Command::Run(args) => run(args),
        Command::Replay(args) => replay(args),
        Command::Shrink(args) => shrink_cmd(args),
        Command::Merge(args) => merge_cmd(args),
        Command::List => list(),
        Command::Report(args) => report(args),
        Command::Trace(args) => crate::blackbox::cmd::trace(args).map_err(BadInput),
        Command::Explore(args) => crate::blackbox::cmd::explore_cmd(args).map_err(BadInput),
    });
    match outcome {
        Ok(Ok(false)) => 0,
        Ok(Ok(true)) => 1,
        Ok(Err(BadInput(msg))) => {
            eprintln!("powercut: {msg}");
            2
        }
        Err(_) => {
            eprintln!("powercut: internal error (a panic; see above)");
            3
        }
    }
}
