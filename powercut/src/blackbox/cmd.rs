//! `powercut trace` and `powercut explore`.

use super::explore::{self, Check, Exploration, Options, Promise};
use super::generations::{self, Rerun};
use super::{Recording, Trace, TraceOp, record};
use faultfs::Profile;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `powercut trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The directory the program keeps its data in (it must exist; files already in it are the
    /// durable starting state).
    #[arg(long)]
    pub dir: PathBuf,
    /// Where to write the trace.
    #[arg(long, default_value = "powercut.trace")]
    pub out: PathBuf,
    /// A stdout line matching this regular expression acknowledges what follows the match.
    #[arg(long, default_value = "^ACK ")]
    pub ack: String,
    /// Make the Nth fsync and the Nth fdatasync of each traced process fail with EIO.
    #[arg(long)]
    pub fail_sync: Option<u64>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Arguments of `powercut explore`.
#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// A trace written by `powercut trace`.
    pub trace: PathBuf,
    /// The program's recovery, `{dir}` standing for a crash state's directory: it exits non-zero
    /// on a failed recovery, or prints the recovered state as JSON lines {"key": .., "value": ..}.
    #[arg(long, required_unless_present_any = ["materialize", "check_server"], conflicts_with = "check_server")]
    pub check: Option<String>,
    /// Instead of --check: a long-lived check command that reads one crash state's directory
    /// per line on stdin and answers one JSON line, {"state": {key: value, ...}} or
    /// {"error": "why"} (see docs/trace.md). One runs per job, restarted after a hang or a crash.
    #[arg(long)]
    pub check_server: Option<String>,
    /// Persistence profile (strict, ext4-ordered, ext4-writeback, posix).
    #[arg(long, default_value = "posix")]
    pub profile: String,
    /// Seed for the replay into SimFs, the sampled crash states and the choice within --budget.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most distinct crash states to check.
    #[arg(long, default_value_t = 500)]
    pub budget: usize,
    /// Distinct states enumerated per crash point (nearest "nothing landed" first).
    #[arg(long, default_value_t = 6)]
    pub per_point: u64,
    /// Seeded random states drawn per crash point besides.
    #[arg(long, default_value_t = 4)]
    pub sampled: u32,
    /// Checks run at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// A check running longer than this is killed and reported as a hang.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// What an acknowledgement promises: `durable` (it survives a power cut) or `none` (a
    /// recovered state need only be a prefix of the history).
    #[arg(long, default_value = "durable")]
    pub promise: String,
    /// Which crashes: `power` (power cuts), `kill` (process crashes: the page cache survives) or
    /// `both`.
    #[arg(long, default_value = "both")]
    pub crash: String,
    /// Write the findings as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Instead of exploring, write the one crash state with this id into --into.
    #[arg(long, requires = "into")]
    pub materialize: Option<String>,
    /// A new (or empty) directory for --materialize.
    #[arg(long)]
    pub into: Option<PathBuf>,
    /// Explore a trace whose program exited non-zero or was killed (by default refused: a run
    /// that died half way gives plausible failures that are not the program's). A trace made
    /// with --fail-sync is allowed to have failed.
    #[arg(long)]
    pub allow_failed_run: bool,
    /// Life after recovery: run the program's workload again on states that passed their check
    /// (under trace), and explore that run too, its own acknowledgements judged on top of the
    /// state it started from; N generations in all (1: the traced run alone).
    #[arg(long, default_value_t = 1)]
    pub generations: u32,
    /// The workload of later generations, `{dir}` standing for the recovered directory, run
    /// with `sh -c` here (default: the traced command, where it ran, its directory replaced).
    #[arg(long)]
    pub then: Option<String>,
    /// Most states each later generation starts from (each explored with --budget / N states):
    /// those whose crash left a torn or garbage write first, then others, spread over the run.
    #[arg(long, default_value_t = 8)]
    pub starts: usize,
}

/// Check runs one shrink may take.
const SHRINK_RUNS: usize = 64;

/// `powercut trace`: Ok(false) when traced.
pub fn trace(args: TraceArgs) -> Result<bool, String> {
    if args.out.is_dir() {
        return Err(format!("--out {}: is a directory", args.out.display()));
    }
    let trace = record(&Recording {
        dir: args.dir,
        command: args.command,
        ack: args.ack,
        fail_sync: args.fail_sync,
        quiet: None,
        cwd: None,
        timeout: None,
    })?;
    std::fs::write(&args.out, trace.to_text())
        .map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let count = |f: fn(&TraceOp) -> bool| trace.ops.iter().filter(|o| f(o)).count();
    println!(
        "traced `{}` in {}: {} operations ({} writes, {} syncs, {} acknowledgements); exit code {}",
        trace.header.command.join(" "),
        trace.header.dir,
        trace.ops.len(),
        count(|o| matches!(o, TraceOp::Write { .. })),
        count(|o| matches!(
            o,
            TraceOp::Fsync { .. }
                | TraceOp::Fdatasync { .. }
                | TraceOp::SyncDir { .. }
                | TraceOp::SyncFailed { .. }
        )),
        count(|o| matches!(o, TraceOp::Ack { .. })),
        trace.header.exit_code.map_or("none (killed)".into(), |c| c.to_string()),
    );
    for w in &trace.header.warnings {
        println!("warning: {w}");
    }
    println!("wrote {}", args.out.display());
    Ok(false)
}

/// `powercut explore`: Ok(true) when a crash state failed its check.
pub fn explore_cmd(args: ExploreArgs) -> Result<bool, String> {
    let trace = Trace::load(&args.trace)?;
    let profile = Profile::named(&args.profile).map_err(|e| format!("--profile: {e}"))?;
    if let (Some(id), Some(into)) = (&args.materialize, &args.into) {
        return materialize(&trace, &profile, args.seed, id, into);
    }
    let failed = match trace.header.exit_code {
        Some(0) => None,
        Some(code) => Some(format!("exited with code {code}")),
        None => Some("was killed by a signal".to_string()),
    };
    if let Some(how) = failed.filter(|_| !args.allow_failed_run && trace.header.fail_sync.is_none())
    {
        return Err(format!(
            "{}: the traced program {how}, so the trace may stop half way and its failures need \
             not be the program's; fix the run, or explore it anyway with --allow-failed-run",
            args.trace.display()
        ));
    }
    let promise = match args.promise.as_str() {
        "durable" => Promise::Durable,
        "none" => Promise::None,
        other => return Err(format!("--promise {other:?}: expected durable or none")),
    };
    let (power, kill) = match args.crash.as_str() {
        "power" => (true, false),
        "kill" => (false, true),
        "both" => (true, true),
        other => return Err(format!("--crash {other:?}: expected power, kill or both")),
    };
    if args.budget == 0 {
        return Err("--budget 0: nothing would be checked".into());
    }
    crate::cli::check_output("--json", &args.json)?;
    if args.generations == 0 {
        return Err("--generations 0: generation 1 is the traced run; give 1 or more".into());
    }
    if args.starts == 0 {
        return Err("--starts 0: a later generation needs a state to start from".into());
    }
    if args.then.is_some() && args.generations < 2 {
        return Err("--then: runs only in later generations; give --generations 2 or more".into());
    }
    let rerun = match args.generations {
        1 => None,
        _ => Some(Rerun::of(&trace.header, args.then.as_deref())?),
    };
    let jobs =
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let o = Options {
        profile,
        seed: args.seed,
        budget: args.budget,
        per_point: args.per_point,
        sampled: args.sampled,
        check: match (&args.check, &args.check_server) {
            (_, Some(server)) => Check::Server(server.clone()),
            (check, None) => Check::Command(check.clone().unwrap_or_default()),
        },
        timeout: Duration::from_millis(args.timeout_ms),
        jobs,
        promise,
        power,
        kill,
        shrink_runs: SHRINK_RUNS,
        scratch: std::env::temp_dir().join(format!("powercut-explore-{}", std::process::id())),
    };
    let bar =
        if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} check runs  {per_sec}  [{elapsed_precise} < {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let replayed = explore::replay(&trace, &o.profile, o.seed)?;
    let found = explore::explore(&trace, &replayed, &o, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let found = found?;
    print_exploration(&args, &args.trace, &trace, &replayed, &found);
    let mut later = Vec::new();
    if let Some(rerun) = &rerun {
        later = generations::explore_later(
            (&replayed, &found),
            &o,
            rerun,
            args.generations,
            args.starts,
        )?;
        let _ = std::fs::remove_dir_all(&o.scratch);
    }
    let saved = save_later_traces(&args.trace, &later)?;
    if let Some(rerun) = &rerun {
        print_generations(&args, rerun, &found, &later, &saved);
    }
    let failed = !found.failures.is_empty()
        || later.iter().any(|r| {
            r.failed_run.is_some() || r.exploration.as_ref().is_some_and(|x| !x.failures.is_empty())
        });
    if let Some(path) = &args.json {
        let mut doc = to_json(&trace, &replayed, &found);
        doc["generations"] = later
            .iter()
            .zip(&saved)
            .map(|(r, file)| {
                json!({
                    "generation": r.generation,
                    "from": r.from,
                    "trace": file.as_ref().map(|f| f.display().to_string()),
                    "failed_run": r.failed_run,
                    "exploration": r.exploration.as_ref().map(|x| to_json(&r.trace, &r.replayed, x)),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(failed)
}

/// Write the trace of each later-generation run that failed next to the first trace (so its
/// states can be re-created): `TRACE.gen<G>-<K>`, K counting that generation's runs.
fn save_later_traces(
    first: &Path,
    runs: &[generations::Run],
) -> Result<Vec<Option<PathBuf>>, String> {
    let mut out = Vec::new();
    let mut k = std::collections::BTreeMap::new();
    for r in runs {
        let n = k.entry(r.generation).or_insert(0);
        *n += 1;
        let failed = r.failed_run.is_some()
            || r.exploration.as_ref().is_some_and(|x| !x.failures.is_empty());
        if !failed {
            out.push(None);
            continue;
        }
        let path = PathBuf::from(format!("{}.gen{}-{n}", first.display(), r.generation));
        std::fs::write(&path, r.trace.to_text()).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(Some(path));
    }
    Ok(out)
}

fn print_generations(
    args: &ExploreArgs,
    rerun: &Rerun,
    first: &Exploration,
    runs: &[generations::Run],
    saved: &[Option<PathBuf>],
) {
    for g in 2..=args.generations {
        let here: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].generation == g).collect();
        if here.is_empty() {
            println!("generation {g}: no passing state to start from");
            break;
        }
        let explored: Vec<&Exploration> =
            here.iter().filter_map(|&i| runs[i].exploration.as_ref()).collect();
        let judged: usize = explored.iter().map(|x| x.checked).sum();
        let failing: usize = explored.iter().map(|x| x.failures.len()).sum();
        let failed_runs = here.iter().filter(|&&i| runs[i].failed_run.is_some()).count();
        // The same failure from several start states is one: group by signature.
        let mut groups: Vec<(&explore::Signature, Vec<(usize, usize)>)> = Vec::new();
        for &i in &here {
            for (gi, group) in runs[i].exploration.iter().flat_map(|x| x.groups.iter().enumerate())
            {
                match groups.iter_mut().find(|(s, _)| **s == group.signature) {
                    Some((_, members)) => members.push((i, gi)),
                    None => groups.push((&group.signature, vec![(i, gi)])),
                }
            }
        }
        println!(
            "generation {g}: `{}` run again on {} passing states of generation {}: {judged} states judged, {failing} failing, {} distinct {}{}",
            rerun.describe(),
            here.len(),
            g - 1,
            groups.len(),
            if groups.len() == 1 { "failure" } else { "failures" },
            match failed_runs {
                0 => String::new(),
                n => format!("; the workload failed to run on {n}"),
            }
        );
        for &i in here.iter().filter(|&&i| runs[i].failed_run.is_some()) {
            println!(
                "  from state {}: {}",
                runs[i].from.join(" > "),
                runs[i].failed_run.as_deref().unwrap_or("")
            );
        }
        for (k, (signature, members)) in groups.iter().enumerate() {
            let states: usize = members
                .iter()
                .map(|&(i, gi)| {
                    runs[i].exploration.as_ref().map_or(0, |x| x.groups[gi].failures.len())
                })
                .sum();
            let starts: std::collections::BTreeSet<usize> = members.iter().map(|m| m.0).collect();
            println!(
                "generation {g}, distinct failure {} of {}: {states} states from {} of {} start states; {signature}",
                k + 1,
                groups.len(),
                starts.len(),
                here.len()
            );
            let (i, gi) = members[0];
            if let Some(j) = first.groups.iter().position(|g| &g.signature == *signature) {
                println!("  as generation 1's distinct failure {}", j + 1);
                continue;
            }
            let Some(x) = &runs[i].exploration else { continue };
            let group = &x.groups[gi];
            println!("  started from state {}", runs[i].from.join(" > "));
            let (f, what) = match &group.shrunk {
                Some((f, n)) => (f, format!("shrunk ({n} check runs)")),
                None => (&x.failures[group.failures[0]], "its first state".to_string()),
            };
            println!("{what}:");
            let path = saved[i].as_deref().unwrap_or(Path::new("-"));
            print_failure(args, path, &runs[i].trace, &runs[i].replayed, f);
        }
    }
}

fn materialize(
    trace: &Trace,
    profile: &Profile,
    seed: u64,
    id: &str,
    into: &Path,
) -> Result<bool, String> {
    if into.exists()
        && std::fs::read_dir(into)
            .map_err(|e| format!("--into {}: {e}", into.display()))?
            .next()
            .is_some()
    {
        return Err(format!("--into {}: not empty (nothing was written)", into.display()));
    }
    let replayed = explore::replay(trace, profile, seed)?;
    let (point, crash) = explore::find_state(&replayed, id)?;
    explore::materialize_into(&explore::image_of(&replayed, point, &crash), into)?;
    println!("{}", explore::in_flight(trace, &replayed, point));
    match &crash {
        explore::Crash::Power(state) => {
            for line in replayed.points[point].0.power_cut_space().describe(state) {
                println!("  {line}");
            }
        }
        explore::Crash::Kill(fate) => {
            println!("  a process crash; the operation in flight: {fate:?}")
        }
    }
    println!("wrote crash state {id} into {}", into.display());
    Ok(false)
}

fn repro(args: &ExploreArgs, trace: &Path, id: &str) -> String {
    format!(
        "powercut explore {} --profile {} --seed {} --materialize '{id}' --into /tmp/powercut-state",
        trace.display(),
        args.profile,
        args.seed
    )
}

fn print_failure(
    args: &ExploreArgs,
    path: &Path,
    trace: &Trace,
    replayed: &explore::Replayed,
    f: &explore::Failure,
) {
    println!("  {}: {}", f.verdict.class, f.verdict.why);
    println!("    {}", explore::in_flight(trace, replayed, f.point));
    let shown = f.dropped.len().min(6);
    for line in &f.dropped[..shown] {
        println!("    dropped: {line}");
    }
    if f.dropped.len() > shown {
        println!("    dropped: ... and {} more", f.dropped.len() - shown);
    }
    let out: Vec<&str> = f.run.stdout.lines().take(4).collect();
    if !out.is_empty() {
        println!("    check printed: {}", out.join(" | "));
    }
    println!("    state {}", f.id);
    println!("    re-create it: {}", repro(args, path, &f.id));
}

fn print_exploration(
    args: &ExploreArgs,
    path: &Path,
    trace: &Trace,
    replayed: &explore::Replayed,
    x: &Exploration,
) {
    let per_sec = x.checked as f64 / x.seconds.max(1e-9);
    println!(
        "explored {}: {} crash points, {} candidate states, {} distinct judged ({} check runs), crashes {}, profile {}, seed {}",
        args.trace.display(),
        x.points,
        x.candidates,
        x.checked,
        x.check_runs,
        args.crash,
        args.profile,
        args.seed
    );
    println!(
        "  {:.1} s, {per_sec:.0} states/s; the check processes took {:.1} s of it (summed over jobs)",
        x.seconds, x.check_seconds
    );
    for w in &trace.header.warnings {
        println!("  warning: {w}");
    }
    if x.failures.is_empty() {
        println!("no failures");
        return;
    }
    let mut by_class = std::collections::BTreeMap::new();
    for f in &x.failures {
        *by_class.entry(f.verdict.class).or_insert(0) += 1;
    }
    let classes: Vec<String> = by_class.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let groups = x.groups.len();
    println!(
        "{} failing states ({}), {groups} distinct {}",
        x.failures.len(),
        classes.join(", "),
        if groups == 1 { "failure" } else { "failures" }
    );
    println!("first failure:");
    print_failure(args, path, trace, replayed, &x.failures[0]);
    for (k, g) in x.groups.iter().enumerate() {
        println!(
            "distinct failure {} of {groups}: {} {}; {}",
            k + 1,
            g.failures.len(),
            if g.failures.len() == 1 { "state" } else { "states" },
            g.signature
        );
        match &g.shrunk {
            Some((f, runs)) => {
                println!("shrunk ({runs} check runs):");
                print_failure(args, path, trace, replayed, f);
            }
            None => {
                println!(
                    "not shrunk (shrinking had spent its {} check runs); its first state:",
                    explore::SHRUNK_GROUPS * SHRINK_RUNS
                );
                print_failure(args, path, trace, replayed, &x.failures[g.failures[0]]);
            }
        }
    }
}

fn to_json(trace: &Trace, replayed: &explore::Replayed, x: &Exploration) -> serde_json::Value {
    let failure = |f: &explore::Failure| {
        json!({
            "class": f.verdict.class,
            "why": f.verdict.why,
            "state": f.id,
            "at": explore::in_flight(trace, replayed, f.point),
            "dropped": f.dropped,
            "check_exit": f.run.exit,
            "check_stdout": f.run.stdout,
            "check_stderr": f.run.stderr,
        })
    };
    json!({
        "crash_points": x.points,
        "candidates": x.candidates,
        "checked": x.checked,
        "check_runs": x.check_runs,
        "seconds": x.seconds,
        "check_seconds": x.check_seconds,
        "failures": x.failures.iter().map(failure).collect::<Vec<_>>(),
        "shrunk": x.shrunk.as_ref().map(|(f, runs)| json!({"failure": failure(f), "check_runs": runs})),
        "groups": x.groups.iter().map(|g| json!({
            "class": g.signature.class,
            "check_exit": g.signature.exit,
            "stderr": g.signature.stderr,
            "dropped_kinds": g.signature.dropped,
            "count": g.failures.len(),
            "states": g.failures.iter().map(|&i| x.failures[i].id.clone()).collect::<Vec<_>>(),
            "shrunk": g.shrunk.as_ref().map(|(f, runs)| json!({"failure": failure(f), "check_runs": runs})),
        })).collect::<Vec<_>>(),
    })
}
