//! The `powercut` command line, for any [`Subject`].
//!
//! A crate that implements `Subject` for its engine gets the whole command line — run, replay,
//! shrink, list, merge, JSON and JUnit results, partitions, failure files, the determinism check —
//! in one line of a `[[bin]]`:
//!
//! ```text
//! fn main() {
//!     powercut::cli::main::<MyEngine>()
//! }
//! ```
//!
//! Every command it prints (reproduce, shrink, replay) names that binary as it was invoked. The
//! built-in `powercut` binary is the same command line for the Bitcask engine, plus `report`,
//! `trace` and `explore`.
//!
//! Exit codes: 0 clean, 1 a violation was found (or a run was not deterministic), 2 bad input
//! (nothing is run or written), 3 an internal error.

use crate::case::{Case, format_ops};
use crate::oracle::Class;
use crate::replay::replay;
use crate::run::{Focus, SeedOutcome};
use crate::scenario::Scenario;
use crate::shrink::{Shrunk, shrink};
use crate::subject::{Subject, config_for};
use crate::suite::{ScenarioResult, merge, run_seeds, to_json};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The command line of a subject's binary.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Crash-consistency torture tests: cut the power at every syscall, check what survives",
    after_help = "A failing seed prints the command that replays it. Start with `run`, then \
                  `replay` and `shrink` on what it finds. Exit codes: 0 clean, 1 a check failed, \
                  2 bad input, 3 an internal error."
)]
struct SubjectCli {
    #[command(subcommand)]
    command: SubjectCommand,
}

/// What every subject's command line does.
#[derive(Subcommand, Debug)]
enum SubjectCommand {
    /// Run scenarios (default: the default suite) and check every crash state.
    Run(RunArgs),
    /// Re-run one seed and show, step by step, what happened and which check failed.
    Replay(ReplayArgs),
    /// Reduce a failing seed to a minimal case that still fails the same check.
    Shrink(ShrinkArgs),
    /// Combine the --json results of partitions into one summary (same digest as one run).
    Merge(MergeArgs),
    /// List the default scenarios, persistence profiles and the subject's bug switches.
    List,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout: `... man > powercut.1`.
    Man,
}

#[cfg(feature = "bitcask")]
#[derive(Parser, Debug)]
#[command(
    name = "powercut",
    version,
    about = "Crash-consistency torture tests: cut the power at every syscall, check what survives",
    after_help = "A failing seed prints the command that replays it. Start with `powercut run`, \
                  then `powercut replay` and `powercut shrink` on what it finds. Exit codes: 0 \
                  clean, 1 a check failed, 2 bad input, 3 an internal error."
)]
struct BuiltinCli {
    #[command(subcommand)]
    command: BuiltinCommand,
}

#[cfg(feature = "bitcask")]
#[derive(Subcommand, Debug)]
enum BuiltinCommand {
    #[command(flatten)]
    Subject(SubjectCommand),
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
    /// Scenario files or default-suite names; none runs the default suite.
    scenarios: Vec<String>,
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
    /// Turn on a known bug of the subject in every scenario (repeatable); see `list`.
    #[arg(long = "bug", visible_alias = "engine-bug")]
    bugs: Vec<String>,
    /// Write machine-readable results (merge them with `merge`).
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
    /// When stderr is not a terminal (a CI log), a progress line at most this often, in seconds,
    /// instead of the bar.
    #[arg(long, default_value_t = 10)]
    heartbeat: u64,
}

#[derive(clap::Args, Debug)]
struct CaseArgs {
    /// The scenario: a file, or a default-suite name.
    scenario: String,
    /// The seed.
    #[arg(long)]
    seed: u64,
    /// Turn on a known bug of the subject (repeatable).
    #[arg(long = "bug", visible_alias = "engine-bug")]
    bugs: Vec<String>,
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
    /// Merge even when shares of a partitioned run are missing (saying which); by default a
    /// missing share is an error, since the merged result would look whole.
    #[arg(long)]
    allow_partial: bool,
}

#[cfg(feature = "bitcask")]
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Where to write the report (`--out reports` refreshes the committed copy).
    #[arg(long, default_value = "target/powercut-report")]
    out: PathBuf,
    /// The directory whose disk is measured: put it on the filesystem you deploy on. Files are
    /// made in a fresh subdirectory and removed after.
    #[arg(long, default_value = "target")]
    dir: PathBuf,
    /// Fewer seeds and operations: under two minutes on 2 cores.
    #[arg(long)]
    quick: bool,
}

/// A bad-input error: exit 2.
struct BadInput(String);

impl From<String> for BadInput {
    fn from(s: String) -> Self {
        BadInput(s)
    }
}

/// What a command line knows about itself: the subject's base configuration and the binary's
/// name (for the commands it prints).
struct Ctx<S: Subject> {
    config: S::Config,
    bin: String,
    bugs: Vec<String>,
}

/// The name this binary was invoked by (file name only), for the commands it prints.
fn bin_name(fallback: &str) -> String {
    std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| fallback.to_string())
}

/// Run the command line of subject `S`, its configuration `S::Config::default()` where a
/// scenario has no `subject.<NAME>` section; exits with the exit code.
pub fn main<S: Subject>() -> !
where
    S::Config: Default,
{
    main_with::<S>(S::Config::default())
}

/// [`main`] with this configuration where a scenario has no section for the subject.
pub fn main_with<S: Subject>(config: S::Config) -> ! {
    crate::keep_freed_memory();
    crate::quiet_on_closed_pipe();
    let bin = bin_name(S::NAME);
    let command = SubjectCli::command().bin_name(bin.clone()).display_name(bin.clone());
    let matches = match command.try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_clap(e),
    };
    let cli = match SubjectCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => exit_clap(e),
    };
    std::process::exit(outcome(|| {
        subject_command::<S>(cli.command, config, bin, "", SubjectCli::command)
    }))
}

/// The built-in `powercut` binary: the command line of the Bitcask subject, plus `report`,
/// `trace` and `explore`.
#[cfg(feature = "bitcask")]
pub fn builtin_main() -> ! {
    crate::keep_freed_memory();
    crate::quiet_on_closed_pipe();
    let cli = match BuiltinCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_clap(e),
    };
    std::process::exit(outcome(|| match cli.command {
        BuiltinCommand::Subject(c) => subject_command::<crate::bitcask::Bitcask>(
            c,
            crate::bitcask::BitcaskSpec::default(),
            "powercut".into(),
            BITCASK_LIST,
            BuiltinCli::command,
        ),
        BuiltinCommand::Report(args) => report(args),
        BuiltinCommand::Trace(args) => crate::blackbox::cmd::trace(args).map_err(BadInput),
        BuiltinCommand::Explore(args) => crate::blackbox::cmd::explore_cmd(args).map_err(BadInput),
    }))
}

#[cfg(feature = "bitcask")]
const BITCASK_LIST: &str = "\nsync strategies (subject.bitcask.strategy.kind):
  o_sync                       every write durable before it is acknowledged
  interval {ms}                a tick syncs when dirty and ms have passed (seed 000)
  none                         never syncs on the write path; the OS writeback decides
  batch {max_ops, max_delay_ms} group commit: acknowledged when the group's sync completes
  checkpoint {interval_ms, idle_ms, max_delay_ms} background checkpointer with idle defer and max delay (seed 001)

sync calls (subject.bitcask.sync_call): fsync, fdatasync, o_dsync
";

fn exit_clap(e: clap::Error) -> ! {
    let code = if e.use_stderr() { 2 } else { 0 };
    let _ = e.print();
    std::process::exit(code)
}

/// Run a command, mapping its result (and a panic) to the exit code.
fn outcome(f: impl FnOnce() -> Result<bool, BadInput>) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
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

fn subject_command<S: Subject>(
    command: SubjectCommand,
    config: S::Config,
    bin: String,
    list_extra: &str,
    cli: fn() -> clap::Command,
) -> Result<bool, BadInput> {
    let bugs = match &command {
        SubjectCommand::Run(a) => a.bugs.clone(),
        SubjectCommand::Replay(a) => a.case.bugs.clone(),
        SubjectCommand::Shrink(a) => a.case.bugs.clone(),
        _ => Vec::new(),
    };
    let ctx = Ctx::<S> { config, bin, bugs };
    match command {
        SubjectCommand::Run(args) => run(&ctx, args),
        SubjectCommand::Replay(args) => replay_cmd(&ctx, args),
        SubjectCommand::Shrink(args) => shrink_cmd(&ctx, args),
        SubjectCommand::Merge(args) => merge_cmd(args),
        SubjectCommand::List => list::<S>(list_extra),
        SubjectCommand::Completions { shell } => {
            let mut command = cli().bin_name(ctx.bin.clone());
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, ctx.bin.clone(), &mut out);
            print_bytes(&out)
        }
        SubjectCommand::Man => {
            // The page is named for this binary; the name lives until the process exits.
            let name: &'static str = Box::leak(ctx.bin.clone().into_boxed_str());
            let command = cli().name(name).bin_name(name);
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| BadInput(format!("rendering the manual page: {e}")))?;
            print_bytes(&out)
        }
    }
}

/// Write `bytes` to stdout; a closed pipe ends the process quietly (status 141, as SIGPIPE).
fn print_bytes(bytes: &[u8]) -> Result<bool, BadInput> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => Err(BadInput(format!("stdout: {e}"))),
    }
}

/// Load a scenario named on the command line: a file, or a default-suite name. Returns it with
/// the label the printed commands use for it.
fn resolve_scenario(arg: &str) -> Result<(Scenario, String), BadInput> {
    let path = Path::new(arg);
    if path.exists() || arg.ends_with(".json") || arg.contains('/') {
        return Ok((Scenario::load(path)?, arg.to_string()));
    }
    match crate::scenarios::named(arg) {
        Some(s) => Ok((s, arg.to_string())),
        None => Err(BadInput(format!(
            "{arg}: no such scenario file, and no default scenario of that name (`list` shows them)"
        ))),
    }
}

impl<S: Subject> Ctx<S> {
    /// The subject's configuration for `scenario` (called `label` on the command line: its file,
    /// or its default-suite name), with the command line's bug switches on.
    fn config_for(&self, scenario: &Scenario, label: &str) -> Result<S::Config, BadInput> {
        config_for::<S>(scenario, &self.config, &self.bugs)
            .map_err(|e| BadInput(format!("{label}: {e}")))
    }

    fn bug_flags(&self) -> String {
        self.bugs.iter().map(|b| format!(" --bug {b}")).collect()
    }

    fn replay_command(&self, label: &str, case: &Case) -> String {
        format!("{} replay {label} {case}{}", self.bin, self.bug_flags())
    }

    fn shrink_command(&self, label: &str, seed: u64) -> String {
        format!("{} shrink {label} --seed {seed}{}", self.bin, self.bug_flags())
    }
}

/// Parse `A..B` or `S`.
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    crate::case::parse_seed_range(text).map_err(|e| format!("--seeds {text:?}: {e}"))
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

struct Job<S: Subject> {
    label: String,
    scenario: Scenario,
    config: S::Config,
    seeds: Vec<u64>,
}

/// Can a file be written into `dir` (creating it and its parents if missing)? Checked on the
/// directory, or the nearest ancestor that exists, without creating anything.
fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut at = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    loop {
        if at.exists() {
            if !at.is_dir() {
                return Err(format!("{} is not a directory", at.display()));
            }
            use nix::unistd::{AccessFlags, access};
            return access(at, AccessFlags::W_OK | AccessFlags::X_OK)
                .map_err(|e| format!("cannot write in {}: {e}", at.display()));
        }
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
}

/// Check, before any work, that `path` can be written: not a directory, in a directory that
/// exists or can be made, and writable. Nothing is created or changed.
fn check_output_path(flag: &str, path: &Option<PathBuf>) -> Result<(), BadInput> {
    let Some(p) = path else { return Ok(()) };
    let bad = |why: String| BadInput(format!("{flag} {}: {why}", p.display()));
    if p.is_dir() {
        return Err(bad("is a directory".into()));
    }
    if p.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(|e| bad(format!("cannot write: {e}")))?;
        return Ok(());
    }
    writable_dir(p.parent().unwrap_or(Path::new("."))).map_err(bad)
}

/// [`check_output_path`] for other commands: the error as text.
pub(crate) fn check_output(flag: &str, path: &Option<PathBuf>) -> Result<(), String> {
    check_output_path(flag, path).map_err(|BadInput(e)| e)
}

/// Check that `dir` can hold failure files, and remove the failure files an earlier run of
/// these scenarios left there (`<scenario>-seed-<n>.json`; nothing else), so it holds only
/// this run's failures of them. A missing
/// directory is made when the first failure is written.
fn prepare_failures_dir(dir: &Path, scenarios: &[&str]) -> Result<(), BadInput> {
    let bad = |why: String| BadInput(format!("--failures {}: {why}", dir.display()));
    writable_dir(dir).map_err(bad)?;
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| bad(format!("cannot read: {e}")))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.strip_suffix(".json").and_then(|n| n.rsplit_once("-seed-")).is_some_and(
            |(scenario, seed)| scenarios.contains(&scenario) && seed.parse::<u64>().is_ok(),
        );
        if stale && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .map_err(|e| bad(format!("cannot remove the earlier run's {name}: {e}")))?;
        }
    }
    Ok(())
}

/// Worker threads for `--jobs`: the machine's parallelism when not given, and at most that (a
/// larger number only adds threads that wait), saying so.
fn thread_count(jobs: Option<usize>) -> Result<usize, BadInput> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match jobs {
        Some(0) => Err(BadInput("--jobs 0: need at least one thread".into())),
        Some(j) if j > cores => {
            eprintln!(
                "powercut: --jobs {j}: this machine runs {cores} threads at once; using {cores}"
            );
            Ok(cores)
        }
        Some(j) => Ok(j),
        None => Ok(cores),
    }
}

fn prepare<S: Subject>(ctx: &Ctx<S>, args: &RunArgs) -> Result<Vec<Job<S>>, BadInput> {
    let defaults = args.scenarios.is_empty();
    let mut named: Vec<(Scenario, String)> = if defaults {
        crate::scenarios::default().into_iter().map(|s| (s.clone(), s.name)).collect()
    } else {
        args.scenarios.iter().map(|a| resolve_scenario(a)).collect::<Result<_, _>>()?
    };
    if !S::WRITE_BATCH {
        let needs = |s: &Scenario| s.workload.mix.batch > 0;
        if let Some((s, _)) = named.iter().find(|(s, _)| needs(s) && !defaults) {
            return Err(BadInput(format!(
                "scenario {} has atomic batches (workload.mix.batch), and subject {} has no \
                 write_batch",
                s.name,
                S::NAME
            )));
        }
        for (s, _) in named.iter().filter(|(s, _)| needs(s)) {
            eprintln!(
                "powercut: skipped scenario {}: subject {} has no write_batch",
                s.name,
                S::NAME
            );
        }
        named.retain(|(s, _)| !needs(s));
    }
    let seeds = args.seeds.as_deref().map(parse_seeds).transpose()?;
    let partition = args.partition.as_deref().map(parse_partition).transpose()?;
    check_output_path("--json", &args.json)?;
    check_output_path("--junit", &args.junit)?;
    let mut jobs = Vec::new();
    for (scenario, label) in named {
        let config = ctx.config_for(&scenario, &label)?;
        let others = crate::subject::foreign_sections::<S>(&scenario);
        if !others.is_empty() {
            eprintln!(
                "powercut: scenario {} configures {} but not {}: {} runs with its default \
                 configuration",
                scenario.name,
                others.join(", "),
                S::NAME,
                S::NAME
            );
        }
        let range = seeds.clone().unwrap_or(0..scenario.seeds);
        let seeds: Vec<u64> = match partition {
            Some((k, n)) => range.filter(|s| s % n == k - 1).collect(),
            None => range.collect(),
        };
        jobs.push(Job { label, scenario, config, seeds });
    }
    Ok(jobs)
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
fn junit<S: Subject>(ctx: &Ctx<S>, jobs: &[Job<S>], results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| r.violations() > 0).count();
    let time: f64 = results.iter().map(|r| r.elapsed_secs).sum();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n  <testsuite name=\"powercut.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n",
        results.len(),
        xml_escape(S::NAME),
        results.len()
    );
    for (job, r) in jobs.iter().zip(results) {
        x.push_str(&format!(
            "    <testcase classname=\"powercut.{}.{}\" name=\"{}\" time=\"{:.3}\">\n",
            xml_escape(S::NAME),
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
                    ctx.replay_command(&job.label, &Case::state(s.seed, v.crash_op, v.state))
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

fn shrunk_json<S: Subject>(ctx: &Ctx<S>, label: &str, s: &Shrunk) -> Value {
    json!({
        "class": s.class.name(),
        "message": s.message,
        "ops": s.keep.len(),
        "original_ops": s.original_ops,
        "keep": format_ops(&s.keep),
        "crash_op": s.crash_op,
        "state": s.state,
        "faults": crate::case::format_faults(&s.faults),
        "exhaustive": s.exhaustive,
        "replay": ctx.replay_command(label, &Case::from(s)),
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

fn run<S: Subject>(ctx: &Ctx<S>, args: RunArgs) -> Result<bool, BadInput> {
    let started = std::time::Instant::now();
    let threads = thread_count(args.jobs)?;
    let jobs = prepare(ctx, &args)?;
    let names: Vec<&str> = jobs.iter().map(|j| j.scenario.name.as_str()).collect();
    prepare_failures_dir(&args.failures, &names)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BadInput(format!("--jobs: {e}")))?;
    let total: u64 = jobs.iter().map(|j| j.seeds.len() as u64).sum();
    for job in jobs.iter().filter(|j| j.seeds.is_empty()) {
        eprintln!(
            "powercut: scenario {}: no seed to run in this share ({}{})",
            job.scenario.name,
            args.seeds
                .as_deref()
                .map_or("0..".to_string() + &job.scenario.seeds.to_string(), String::from),
            args.partition.as_deref().map_or(String::new(), |p| format!(", partition {p}"))
        );
    }
    let terminal = std::io::stderr().is_terminal();
    let show = !args.quiet && terminal;
    // A log (no terminal): a heartbeat line at most every --heartbeat seconds instead of a bar.
    let heartbeat = (!args.quiet && !terminal).then(|| std::sync::Mutex::new(started));
    let done = AtomicU64::new(0);
    let bar =
        if show { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  [{elapsed_precise} < {eta}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let violations = AtomicU64::new(0);
    let on_seed = |o: &SeedOutcome| {
        let v = violations.fetch_add(o.violations.len() as u64, Ordering::Relaxed)
            + o.violations.len() as u64;
        bar.set_message(format!("{v} violations"));
        bar.inc(1);
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(last) = &heartbeat {
            if let Ok(mut last) = last.lock() {
                if last.elapsed().as_secs() >= args.heartbeat {
                    *last = std::time::Instant::now();
                    eprintln!(
                        "powercut: {n}/{total} seeds, {v} violations, {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    };
    let results: Vec<ScenarioResult> = pool.install(|| {
        jobs.iter()
            .map(|job| {
                bar.set_prefix(job.scenario.name.clone());
                run_seeds::<S>(&job.scenario, &job.config, &job.seeds, &on_seed)
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut nondeterministic = Vec::new();
    if args.check_determinism {
        let again: Vec<ScenarioResult> = pool.install(|| {
            jobs.iter()
                .map(|job| run_seeds::<S>(&job.scenario, &job.config, &job.seeds, &|_| {}))
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
    print!("{}", crate::suite::table(&results));
    let mut failures = 0;
    let mut output_errors = Vec::new();
    let mut commands = std::collections::BTreeMap::new();
    for (job, r) in jobs.iter().zip(&results) {
        let mut shrunk_one = args.no_shrink;
        for s in &r.seeds {
            let Some(v) = s.violations.first() else { continue };
            failures += 1;
            let repro = ctx.replay_command(&job.label, &Case::state(s.seed, v.crash_op, v.state));
            let shrunk = if shrunk_one {
                None
            } else {
                shrunk_one = true;
                shrink::<S>(&job.scenario, &job.config, s.seed, None)
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
                        ctx.replay_command(&job.label, &Case::from(sh))
                    );
                }
            }
            let record = json!({
                "scenario": job.label,
                "name": r.name,
                "seed": s.seed,
                "crash_op": v.crash_op,
                "crash_kind": v.crash_kind.name(),
                "state": v.state,
                "class": v.class.name(),
                "message": v.message,
                "subject": S::NAME,
                "bugs": ctx.bugs,
                "reproduce": repro,
                "shrink": ctx.shrink_command(&job.label, s.seed),
                "shrunk": shrunk.map(|sh| shrunk_json(ctx, &job.label, &sh)),
            });
            let file = args.failures.join(format!("{}-seed-{}.json", r.name, s.seed));
            let text = serde_json::to_string_pretty(&record).unwrap_or_default() + "\n";
            if let Err(BadInput(e)) = write_file(&file, &text) {
                output_errors.push(e);
            }
            commands
                .insert((r.name.clone(), s.seed), (repro, ctx.shrink_command(&job.label, s.seed)));
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
    let mut doc = to_json(&results);
    attach_commands(&mut doc, &commands);
    doc["run"] = run_metadata(ctx, &args, &jobs);
    if args.check_determinism {
        doc["nondeterministic"] = json!(nondeterministic);
    }
    println!("\ndigest {}", doc["digest"].as_str().unwrap_or(""));
    let failed = failures > 0 || !nondeterministic.is_empty();
    println!(
        "{}",
        verdict(S::NAME, &results, nondeterministic.len(), Some(started.elapsed().as_secs_f64()))
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        if let Err(BadInput(e)) = write_file(path, &text) {
            output_errors.push(e);
        }
    }
    if let Some(path) = &args.junit {
        if let Err(BadInput(e)) = write_file(path, &junit(ctx, &jobs, &results)) {
            output_errors.push(e);
        }
    }
    // An output that could not be written is reported, and never hides a failed check.
    match (output_errors.is_empty(), failed) {
        (true, _) => Ok(failed),
        (false, true) => {
            for e in &output_errors {
                eprintln!("powercut: {e}");
            }
            Ok(true)
        }
        (false, false) => Err(BadInput(output_errors.join("; "))),
    }
}

/// The closing line: PASS or FAIL, what ran, what it found, how long it took (when it ran here).
fn verdict(
    subject: &str,
    results: &[ScenarioResult],
    nondeterministic: usize,
    secs: Option<f64>,
) -> String {
    let seeds: usize = results.iter().map(|r| r.seeds.len()).sum();
    let states: u64 = results.iter().map(|r| r.crash_states()).sum();
    let violations: usize = results.iter().map(|r| r.violations()).sum();
    let failing: usize =
        results.iter().map(|r| r.seeds.iter().filter(|s| !s.violations.is_empty()).count()).sum();
    let word = if violations > 0 || nondeterministic > 0 { "FAIL" } else { "PASS" };
    let mut line = format!(
        "{word} {subject}: {} scenarios, {seeds} seeds, {states} crash states, {violations} violations",
        results.len()
    );
    if failing > 0 {
        line.push_str(&format!(" in {failing} failing seeds"));
    }
    if nondeterministic > 0 {
        line.push_str(&format!(", {nondeterministic} seeds not deterministic"));
    }
    if let Some(secs) = secs {
        line.push_str(&format!(", {secs:.1} s"));
    }
    line
}

/// Give each failing seed in `doc` the commands that replay and shrink it.
fn attach_commands(
    doc: &mut Value,
    commands: &std::collections::BTreeMap<(String, u64), (String, String)>,
) {
    for s in doc["scenarios"].as_array_mut().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or("").to_string();
        for f in s["failing_seeds"].as_array_mut().into_iter().flatten() {
            let seed = f["seed"].as_u64().unwrap_or(u64::MAX);
            if let Some((replay, shrink)) = commands.get(&(name.clone(), seed)) {
                f["reproduce"] = json!(replay);
                f["shrink"] = json!(shrink);
            }
        }
    }
}

/// What a result must say about its run for `merge` to know what it is combining: the version,
/// the subject and its bug switches, the share of the seeds, and per scenario where it came
/// from, its content and the seeds it was asked for.
fn run_metadata<S: Subject>(ctx: &Ctx<S>, args: &RunArgs, jobs: &[Job<S>]) -> Value {
    let partition = args.partition.as_deref().and_then(|p| parse_partition(p).ok());
    json!({
        "powercut_version": env!("CARGO_PKG_VERSION"),
        "subject": S::NAME,
        "bugs": ctx.bugs,
        "partition": partition.map(|(k, n)| json!([k, n])),
        "scenarios": jobs.iter().map(|j| {
            let range = args.seeds.as_deref().and_then(|s| parse_seeds(s).ok()).unwrap_or(0..j.scenario.seeds);
            json!({
                "name": j.scenario.name,
                "label": j.label,
                "content_hash": j.scenario.content_hash(),
                "seeds": [range.start, range.end],
                "seeds_run": j.seeds.len(),
            })
        }).collect::<Vec<_>>(),
    })
}

fn replay_cmd<S: Subject>(ctx: &Ctx<S>, args: ReplayArgs) -> Result<bool, BadInput> {
    let (scenario, label) = resolve_scenario(&args.case.scenario)?;
    let config = ctx.config_for(&scenario, &label)?;
    let case = Case {
        seed: args.case.seed,
        keep: args.ops.as_deref().map(crate::case::parse_ops).transpose()?,
        crash_op: args.crash_at,
        state: args.state,
        faults: args.faults.as_deref().map(crate::case::parse_faults).transpose()?,
        exhaustive: match args.exhaustive {
            Some(0) => return Err(BadInput("--exhaustive 0: the budget must be positive".into())),
            b => b,
        },
    };
    if let Some(keep) = &case.keep {
        if let Some(bad) = keep.iter().find(|&&i| i >= scenario.workload.ops) {
            return Err(BadInput(format!(
                "--ops: operation {bad} does not exist: {} has workload operations 0..={}",
                scenario.name,
                scenario.workload.ops.saturating_sub(1)
            )));
        }
    }
    let replayed = replay::<S>(&scenario, &config, &case);
    if replayed.outcome.crash_states == 0 && (case.crash_op.is_some() || case.state.is_some()) {
        return Err(BadInput(no_such_crash::<S>(&scenario, &config, &case, replayed.crash_op)));
    }
    if label != scenario.name {
        println!("({label})");
    }
    print!("{}", replayed.text);
    Ok(!replayed.outcome.violations.is_empty())
}

/// Why `case` met no crash state: a crash point the seed's run does not have, or a state index
/// past the states at that point. Names what does exist.
fn no_such_crash<S: Subject>(
    scenario: &Scenario,
    config: &S::Config,
    case: &Case,
    crash_op: Option<u64>,
) -> String {
    let seed = case.seed;
    // The whole run (as narrowed), with its filesystem operations.
    let whole = Focus { crash_op: Some(u64::MAX), state: None, detail: true, ..case.focus() };
    let (_, detail) = crate::run::run_seed_detailed::<S>(scenario, config, seed, &whole);
    let last = detail.and_then(|d| d.trace.last().map(|e| e.op)).unwrap_or(0);
    match crash_op {
        Some(k) if k == 0 || k > last + 1 => format!(
            "--crash-at {k}: seed {seed} of {} has crash points 1..={} (its filesystem \
             operations, and right after the last)",
            scenario.name,
            last + 1
        ),
        Some(k) => {
            let here = Focus { crash_op: Some(k), state: None, ..case.focus() };
            let states = crate::run::run_seed::<S>(scenario, config, seed, here).crash_states;
            match case.state {
                Some(i) if states > 0 => format!(
                    "--state {i}: crash point {k} of seed {seed} of {} has {states} crash \
                     states: --state must be < {states}",
                    scenario.name
                ),
                _ => format!(
                    "--crash-at {k}: seed {seed} of {} took no crash state there (its crash \
                     points are 1..={})",
                    scenario.name,
                    last + 1
                ),
            }
        }
        None => format!(
            "--state needs --crash-at: seed {seed} of {} failed at no crash point to default to",
            scenario.name
        ),
    }
}

fn shrink_cmd<S: Subject>(ctx: &Ctx<S>, args: ShrinkArgs) -> Result<bool, BadInput> {
    let (scenario, label) = resolve_scenario(&args.case.scenario)?;
    let config = ctx.config_for(&scenario, &label)?;
    match shrink::<S>(&scenario, &config, args.case.seed, None) {
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
                println!("  injected faults: {}", crate::case::format_faults(&s.faults));
            }
            println!("  {}", s.message);
            println!("\nreplay it:\n  {}", ctx.replay_command(&label, &Case::from(&s)));
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
    let (run, missing) = check_shares(&docs, args.allow_partial)?;
    let results = merge(&docs).map_err(BadInput)?;
    print!("{}", crate::suite::table(&results));
    let mut doc = to_json(&results);
    // Every reproduce and shrink command the shares wrote.
    let mut commands = std::collections::BTreeMap::new();
    for (_, d) in &docs {
        for s in d["scenarios"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or("").to_string();
            for f in s["failing_seeds"].as_array().into_iter().flatten() {
                if let (Some(seed), Some(r), Some(sh)) =
                    (f["seed"].as_u64(), f["reproduce"].as_str(), f["shrink"].as_str())
                {
                    commands.insert((name.clone(), seed), (r.to_string(), sh.to_string()));
                }
            }
        }
    }
    attach_commands(&mut doc, &commands);
    // A share that failed --check-determinism fails the merge too.
    let nondeterministic: Vec<Value> = docs
        .iter()
        .flat_map(|(_, d)| d["nondeterministic"].as_array().cloned().unwrap_or_default())
        .collect();
    for n in &nondeterministic {
        println!("NONDETERMINISTIC: {} gave different outcomes on two runs", num_text(n));
    }
    if docs.iter().any(|(_, d)| d.get("nondeterministic").is_some()) {
        doc["nondeterministic"] = json!(nondeterministic);
    }
    doc["run"] = run;
    doc["merged_from"] = json!(docs.len());
    if !missing.is_empty() {
        doc["missing_shares"] = json!(missing);
    }
    println!("\ndigest {}", doc["digest"].as_str().unwrap_or(""));
    let subject = doc["run"]["subject"].as_str().unwrap_or("subject").to_string();
    let line = verdict(&subject, &results, nondeterministic.len(), None);
    match missing.is_empty() {
        true => println!("{line} (merged from {} results)", docs.len()),
        false => println!(
            "PARTIAL: {} (merged from {} results; missing {})",
            line,
            docs.len(),
            missing.join(", ")
        ),
    }
    if let Some(path) = &args.json {
        write_file(path, &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"))?;
    }
    Ok(results.iter().any(|r| r.violations() > 0) || !nondeterministic.is_empty())
}

/// A JSON string's text, or the value as JSON.
fn num_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), String::from)
}

/// Check that `docs` are shares of one run: the same powercut version, subject, bug switches
/// and scenarios (content and seed range), and, for a partitioned run, every share 1..=N
/// exactly once. Returns the run's metadata (without a partition) and the missing shares
/// (allowed only with `allow_partial`).
fn check_shares(
    docs: &[(String, Value)],
    allow_partial: bool,
) -> Result<(Value, Vec<String>), BadInput> {
    let mut first: Option<(&str, Value)> = None;
    let mut shares: std::collections::BTreeMap<u64, &str> = std::collections::BTreeMap::new();
    let mut of: Option<u64> = None;
    for (origin, doc) in docs {
        let run = &doc["run"];
        if !run.is_object() {
            return Err(BadInput(format!(
                "{origin}: no \"run\" section (written by an older powercut, or not a `run --json` \
                 result): cannot tell which share of which run it is"
            )));
        }
        let mut same = run.clone();
        let partition =
            same.as_object_mut().and_then(|o| o.remove("partition")).unwrap_or(Value::Null);
        // Seeds run differ between shares; the seeds asked for may not.
        for s in same["scenarios"].as_array_mut().into_iter().flatten() {
            if let Some(o) = s.as_object_mut() {
                o.remove("seeds_run");
                o.remove("label");
            }
        }
        match &first {
            None => first = Some((origin, same.clone())),
            Some((o1, s1)) => {
                for field in ["powercut_version", "subject", "bugs", "scenarios"] {
                    if s1[field] != same[field] {
                        return Err(BadInput(format!(
                            "{o1} and {origin} are not shares of one run: their {field} differ \
                             ({} vs {})",
                            s1[field], same[field]
                        )));
                    }
                }
            }
        }
        match (partition.as_array().map(|a| (a[0].as_u64(), a[1].as_u64())), of) {
            (Some((Some(k), Some(n))), None) if shares.is_empty() => {
                of = Some(n);
                shares.insert(k, origin);
            }
            (Some((Some(k), Some(n))), Some(m)) if n == m => {
                if let Some(other) = shares.insert(k, origin) {
                    return Err(BadInput(format!("{other} and {origin} are both share {k}/{n}")));
                }
            }
            (None, None) if shares.is_empty() => {}
            _ => {
                return Err(BadInput(format!(
                    "{origin}: partition {partition} does not match the other results' \
                     ({}): merge the shares of one --partition run",
                    of.map_or("none".to_string(), |n| format!("K/{n}"))
                )));
            }
        }
    }
    let mut missing = Vec::new();
    if let Some(n) = of {
        missing = (1..=n).filter(|k| !shares.contains_key(k)).map(|k| format!("{k}/{n}")).collect();
        if !missing.is_empty() && !allow_partial {
            return Err(BadInput(format!(
                "missing shares {} of a --partition K/{n} run: the merged result would look whole \
                 without them (merge them all, or --allow-partial to merge what is here)",
                missing.join(", ")
            )));
        }
        if !missing.is_empty() {
            eprintln!("powercut: merging without shares {}", missing.join(", "));
        }
    }
    let (_, mut run) = first.unwrap_or(("", json!({})));
    run["partition"] = Value::Null;
    Ok((run, missing))
}

fn list<S: Subject>(extra: &str) -> Result<bool, BadInput> {
    println!("default scenarios (a name runs it, as a file path runs a file):");
    for s in crate::scenarios::default() {
        println!("  {:<28} {}", s.name, s.description);
    }
    println!("\nextra scenarios (run by name; not in the default suite):");
    for s in crate::scenarios::extra() {
        println!("  {:<28} {}", s.name, s.description);
    }
    println!("\npersistence profiles (faults.profile):");
    for name in faultfs::PROFILE_NAMES {
        println!("  {name:<28} {}", faultfs::Profile::describe(name));
    }
    println!("\n{} bug switches (--bug):", S::NAME);
    if S::BUGS.is_empty() {
        println!("  (none)");
    }
    for (name, what) in S::BUGS {
        println!("  {name:<28} {what}");
    }
    print!("{extra}");
    println!("\ncrash points (faults.crash_points): random, every-op, at-sync-points");
    println!("violation classes: {}", Class::ALL.map(Class::name).join(", "));
    Ok(false)
}

#[cfg(feature = "bitcask")]
fn report(args: ReportArgs) -> Result<bool, BadInput> {
    if args.out.is_file() {
        return Err(BadInput(format!("--out {}: is a file", args.out.display())));
    }
    if args.dir.exists() && !args.dir.is_dir() {
        return Err(BadInput(format!("--dir {}: not a directory", args.dir.display())));
    }
    writable_dir(&args.dir).map_err(|e| BadInput(format!("--dir {}: {e}", args.dir.display())))?;
    check_output_path("--out", &Some(args.out.join("durability.json")))?;
    let scratch = args.dir.join(format!("powercut-report-disk-{}", std::process::id()));
    let start = std::time::Instant::now();
    let doc = crate::report::collect(&scratch, args.quick);
    let written = crate::report::write(&args.out, &doc).map_err(BadInput)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    println!("in {:.0} s", start.elapsed().as_secs_f64());
    Ok(false)
}
