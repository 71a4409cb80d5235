//! The `powercut` command line.
//!
//! Exit codes: 0 clean, 1 a violation was found, 2 bad input (nothing is run or written),
//! 3 an internal error.

use crate::scenario::Scenario;
use crate::subject::Bitcask;
use crate::suite::{ScenarioResult, run_scenario, to_json};
use clap::{Parser, Subcommand};
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "powercut",
    version,
    about = "Crash-consistency torture tests: cut the power at every syscall, check what survives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios (default: the suite in scenarios/) and check every crash state.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario files; none runs every scenarios/*.json.
    scenarios: Vec<PathBuf>,
    /// Seed range A..B (B excluded), or one seed S; default: each scenario's 0..seeds.
    #[arg(long)]
    seeds: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Turn on a known engine bug in every scenario (repeatable); see `engine::BUGS`.
    #[arg(long = "engine-bug")]
    engine_bugs: Vec<String>,
    /// Write machine-readable results here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print only the summary.
    #[arg(long)]
    quiet: bool,
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

struct Job {
    path: PathBuf,
    scenario: Scenario,
    config: engine::Config,
    seeds: Range<u64>,
}

fn prepare(args: &RunArgs) -> Result<Vec<Job>, BadInput> {
    let files = if args.scenarios.is_empty() {
        suite_files(&default_suite())?
    } else {
        args.scenarios.clone()
    };
    let seeds = args.seeds.as_deref().map(parse_seeds).transpose().map_err(BadInput)?;
    if args.jobs == Some(0) {
        return Err(BadInput("--jobs 0: need at least one thread".into()));
    }
    let mut jobs = Vec::new();
    for path in files {
        let mut scenario = Scenario::load(&path).map_err(BadInput)?;
        for bug in &args.engine_bugs {
            if !scenario.engine.bugs.contains(bug) {
                scenario.engine.bugs.push(bug.clone());
            }
        }
        let config =
            scenario.engine_config().map_err(|e| BadInput(format!("--engine-bug: {e}")))?;
        let seeds = seeds.clone().unwrap_or(0..scenario.seeds);
        jobs.push(Job { path, scenario, config, seeds });
    }
    if let Some(json) = &args.json {
        if json.is_dir() {
            return Err(BadInput(format!("--json {}: is a directory", json.display())));
        }
    }
    Ok(jobs)
}

fn repro(job: &Job, seed: u64, bugs: &[String]) -> String {
    let mut cmd = format!("powercut run {} --seeds {seed}", job.path.display());
    for b in bugs {
        cmd.push_str(&format!(" --engine-bug {b}"));
    }
    cmd
}

fn summary(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "{:<34} {:>6} {:>9} {:>9} {:>6}  {:<34} {:>10}\n",
        "scenario", "seeds", "states", "distinct", "viol", "by class", "states/s"
    );
    for r in results {
        let classes: Vec<String> = r.by_class().iter().map(|(c, n)| format!("{c}:{n}")).collect();
        out.push_str(&format!(
            "{:<34} {:>6} {:>9} {:>9} {:>6}  {:<34} {:>10.0}\n",
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

fn run(args: RunArgs) -> Result<bool, BadInput> {
    let jobs = prepare(&args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| BadInput(format!("--jobs: {e}")))?;
    let results: Vec<ScenarioResult> = pool.install(|| {
        jobs.iter()
            .map(|job| {
                run_scenario::<Bitcask>(&job.scenario, &job.config, job.seeds.clone(), &|_| {})
            })
            .collect()
    });
    print!("{}", summary(&results));
    let mut failures = 0;
    for (job, r) in jobs.iter().zip(&results) {
        for s in &r.seeds {
            if let Some(v) = s.violations.first() {
                failures += 1;
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
                    println!("  reproduce: {}", repro(job, s.seed, &args.engine_bugs));
                }
            }
        }
    }
    if failures > 20 && !args.quiet {
        println!("\n... and {} more failing seeds", failures - 20);
    }
    let doc = to_json(&results);
    println!("\ndigest {}", doc["digest"].as_str().unwrap_or(""));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(|e| BadInput(format!("--json {}: cannot write: {e}", path.display())))?;
    }
    Ok(failures > 0)
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
