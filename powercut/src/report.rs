//! `powercut report`: the durability report — each sync strategy's measured speed on this
//! machine's disk beside its crash-tested loss, per persistence profile; the known-bug table; the
//! harness's own speed; and seed 000's picture (write head vs durable-up-to over time).
//!
//! Simulated sections are deterministic (same binary, same bytes); measured sections (real disk,
//! seconds, scenarios/s) change only in their numbers. Wall-clock time is read here, for
//! measurements only, never for a verdict.

use crate::bitcask::{Bitcask, BitcaskSpec};
use crate::bugs::CAUGHT_BY;
use crate::oracle::CrashKind;
use crate::run::{Focus, run_seed};
use crate::scenario::{CrashKinds, CrashPoints, Faults, Mix, Range, Scenario, States, Workload};
use crate::shrink::shrink;
use crate::subject::{Subject, config_for};
use crate::suite::run_scenario;
use engine::{Config, Engine, SyncCall, SyncStrategy};
use faultfs::{
    EioSemantics, MemFs, OpenOptions, Profile, RealFs, SimConfig, SimFs, SyncMode, Vfs, VfsFile,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A strategy as the report names it.
struct Strategy {
    name: &'static str,
    strategy: SyncStrategy,
    call: SyncCall,
    /// What it promises after a power cut, in words.
    bound: &'static str,
}

fn strategies() -> Vec<Strategy> {
    let s = |name, strategy, call, bound| Strategy { name, strategy, call, bound };
    vec![
        s("o_sync (fdatasync)", SyncStrategy::OSync, SyncCall::Fdatasync, "0: every acked write"),
        s("o_sync (fsync)", SyncStrategy::OSync, SyncCall::Fsync, "0: every acked write"),
        s("o_sync (O_DSYNC)", SyncStrategy::OSync, SyncCall::ODsync, "0: every acked write"),
        s("interval 10ms", SyncStrategy::Interval { ms: 10 }, SyncCall::Fdatasync, "10 ms"),
        s("interval 100ms", SyncStrategy::Interval { ms: 100 }, SyncCall::Fdatasync, "100 ms"),
        s("interval 1s", SyncStrategy::Interval { ms: 1000 }, SyncCall::Fdatasync, "1 s"),
        s(
            "batch (64 ops / 5 ms)",
            SyncStrategy::Batch { max_ops: 64, max_delay_ms: 5 },
            SyncCall::Fdatasync,
            "0: acked when the group syncs",
        ),
        s(
            "checkpoint (1s/250ms/3s)",
            SyncStrategy::Checkpoint { interval_ms: 1000, idle_ms: 250, max_delay_ms: 3000 },
            SyncCall::Fdatasync,
            "4 s (max delay + interval)",
        ),
        s(
            "none",
            SyncStrategy::None,
            SyncCall::Fdatasync,
            "OS writeback: within ~40 s on ext4 (expiry, pass, commit); no bound on posix",
        ),
    ]
}

fn scenario(st: &Strategy, profile: &Profile, kind: CrashKind, seeds: u64) -> Scenario {
    let crash = match kind {
        CrashKind::PowerCut => CrashKinds { power_cut: 1, kill: 0 },
        CrashKind::Kill => CrashKinds { power_cut: 0, kill: 1 },
    };
    Scenario {
        name: format!("report-{}", profile.base),
        description: String::new(),
        subject: BTreeMap::from([(Bitcask::NAME.to_string(), spec_json(st))]),
        workload: Workload {
            ops: 400,
            keys: 100,
            value_bytes: Range { min: 100, max: 100 },
            mix: Mix { put: 90, delete: 10, get: 0, merge: 0, batch: 0 },
            gap_us: Range { min: 50_000, max: 150_000 },
            tail_ms: 0,
            batch_ops: Range { min: 2, max: 8 },
        },
        faults: Faults {
            profile: profile.clone(),
            crash,
            crash_points: CrashPoints::Random,
            points_per_seed: None,
            states: States::Sampled { per_point: 2 },
            crashes_during_recovery: 0,
            after_recovery_writes: 0,
            generations: 1,
            generation_writes: 20,
            sync_eio_rate: 0.0,
            write_eio_rate: 0.0,
            writeback_eio_rate: 0.0,
            commit_eio_rate: 0.0,
            misdirect_rate: 0.0,
            lost_flush_rate: 0.0,
            read_eio_rate: 0.0,
            read_corrupt_rate: 0.0,
            latent_on_read_rate: 0.0,
            eio_semantics: EioSemantics::Linux,
            capacity_bytes: None,
            bit_flips: 0,
            latent_errors: 0,
            tick_ms: 5,
        },
        seeds,
    }
}

fn spec_json(st: &Strategy) -> Value {
    let spec = BitcaskSpec { strategy: st.strategy, sync_call: st.call, ..BitcaskSpec::default() };
    serde_json::to_value(spec).unwrap_or_default()
}

/// Bitcask's configuration for `s`, with `bugs` on.
fn spec_for(s: &Scenario, bugs: &[String]) -> Result<BitcaskSpec, String> {
    config_for::<Bitcask>(s, &BitcaskSpec::default(), bugs)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Crash-tested loss per strategy, profile and crash kind (deterministic).
fn simulated(seeds: u64) -> Value {
    let mut rows = Vec::new();
    for st in strategies() {
        for profile in [Profile::posix(), Profile::ext4_ordered()] {
            for kind in [CrashKind::PowerCut, CrashKind::Kill] {
                let s = scenario(&st, &profile, kind, seeds);
                let Ok(config) = spec_for(&s, &[]) else { continue };
                let r = run_scenario::<Bitcask>(&s, &config, 0..seeds, &|_| {});
                let (p, k) = r.loss();
                let l = if kind == CrashKind::PowerCut { p } else { k };
                rows.push(json!({
                    "strategy": st.name,
                    "profile": profile.base,
                    "crash": kind.name(),
                    "promised_bound": st.bound,
                    "crash_states": r.crash_states(),
                    "violations": r.violations(),
                    "acked_lost_mean": if l.states > 0 { (l.acked_lost as f64 / l.states as f64 * 100.0).round() / 100.0 } else { 0.0 },
                    "acked_lost_max": l.acked_lost_max,
                    "loss_window_max_ms": ms(l.window_max),
                }));
            }
        }
    }
    Value::Array(rows)
}

/// Each bug switch: the class that caught it, seeds and seconds to the first detection, the
/// shrunk size.
fn bug_table() -> Value {
    let mut rows = Vec::new();
    for (bug, name, class) in CAUGHT_BY {
        let Some(s) = crate::scenarios::named(name) else { continue };
        let Ok(config) = spec_for(&s, &[bug.to_string()]) else { continue };
        let start = Instant::now();
        let first = (0..s.seeds).find(|&seed| {
            run_seed::<Bitcask>(&s, &config, seed, Focus::default())
                .violations
                .iter()
                .any(|v| v.class == class)
        });
        let secs = start.elapsed().as_secs_f64();
        let shrunk = first.and_then(|seed| shrink::<Bitcask>(&s, &config, seed, Some(class)));
        rows.push(json!({
            "bug": bug,
            "scenario": name,
            "class": class.name(),
            "seeds_to_first_detection": first.map(|f| f + 1),
            "seconds_to_first_detection": (secs * 1000.0).round() / 1000.0,
            "shrunk_operations": shrunk.as_ref().map(|s| s.keep.len()),
            "original_operations": shrunk.as_ref().map(|s| s.original_ops),
        }));
    }
    Value::Array(rows)
}

/// Seed 000's picture: bytes written vs bytes durable over virtual time, per strategy, on
/// ext4-ordered (deterministic).
fn picture(quick: bool) -> Value {
    let secs = if quick { 40 } else { 45 };
    let mut series = Vec::new();
    for st in
        strategies().into_iter().filter(|s| s.call != SyncCall::Fsync && s.call != SyncCall::ODsync)
    {
        let fs = SimFs::new(SimConfig::new(Profile::ext4_ordered()));
        let Ok(mut db) = Engine::open(fs.clone(), Config::new(st.strategy)) else { continue };
        let mut points = Vec::new();
        let step = Duration::from_millis(10);
        for i in 0..(secs * 100) {
            let _ = db.put(format!("key{:04}", i % 1000).as_bytes(), &[b'v'; 100]);
            fs.advance(step);
            let _ = db.tick();
            if i % 20 == 0 {
                let (mut head, mut durable) = (0, 0);
                for name in fs.names() {
                    if let Some(f) = fs.file_state(&name) {
                        head += f.cached_len;
                        durable += f.durable_len.min(f.cached_len);
                    }
                }
                points.push(json!([ms(fs.now()), head, durable]));
            }
        }
        series.push(json!({ "strategy": st.name, "points": points }));
    }
    Value::Array(series)
}

/// The mount holding `dir`, from /proc/self/mountinfo: (mount point, filesystem type, mount
/// options, including the filesystem's own such as `data=ordered`).
fn mount_of(dir: &Path) -> (String, String, String) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let unknown = ("?".to_string(), "unknown".to_string(), String::new());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return unknown };
    let mut best = (0, unknown);
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let field = |i: usize| fields.get(i).copied().unwrap_or("").to_string();
        let mount = field(4);
        if dir.starts_with(&mount) && mount.len() >= best.0 {
            let options = format!("{} (superblock: {})", field(5), field(dash + 3));
            best = (mount.len(), (mount, field(dash + 1), options));
        }
    }
    best.1
}

fn percentiles(mut lat: Vec<Duration>) -> Value {
    lat.sort_unstable();
    let at = |q: f64| {
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len().max(1)) - 1;
        lat.get(i).map_or(0.0, |d| (d.as_secs_f64() * 1e7).round() / 10.0)
    };
    json!({ "p50_us": at(0.50), "p99_us": at(0.99), "p999_us": at(0.999) })
}

/// Measured runs of every real-disk loop; each figure is their median, with the min and max.
const DISK_RUNS: usize = 5;

/// One timed loop: ops/s, and every operation's latency.
type Timed = Result<(f64, Vec<Duration>), String>;

/// A raw syscall loop in a fresh `dir`: append `value_bytes`-byte records, synced as `mode` says.
fn raw_loop(dir: &Path, n: u32, value_bytes: usize, mode: &str) -> Timed {
    let _ = std::fs::remove_dir_all(dir);
    let fs = RealFs::create(dir).map_err(|e| e.to_string())?;
    let sync = if mode == "O_DSYNC" { SyncMode::ODsync } else { SyncMode::None };
    let f = fs
        .open("raw.log", OpenOptions::create().truncate(true).sync(sync))
        .map_err(|e| e.to_string())?;
    let record = vec![7u8; value_bytes + 38];
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..u64::from(n) {
        let t = Instant::now();
        f.write_all_at(&record, i * record.len() as u64).map_err(|e| e.to_string())?;
        match mode {
            "append+fdatasync" => f.sync_data(),
            "append+fsync" => f.sync_all(),
            _ => Ok(()),
        }
        .map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
    }
    Ok((f64::from(n) / start.elapsed().as_secs_f64(), lat))
}

/// The engine in a fresh `dir` on the real disk: puts/s and put latency.
fn engine_loop(dir: &Path, st: &Strategy, n: u32, value_bytes: usize) -> Timed {
    let _ = std::fs::remove_dir_all(dir);
    let config = Config::new(st.strategy).sync_call(st.call).max_file_bytes(1 << 30);
    let db = RealFs::create(dir)
        .map_err(|e| e.to_string())
        .and_then(|fs| Engine::open(fs, config).map_err(|e| e.to_string()))?;
    let runner = engine::runner::Background::start(db, Duration::from_millis(1));
    let value = vec![b'v'; value_bytes];
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        runner.engine().put(format!("key{i:08}").as_bytes(), &value).map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
    }
    let per_sec = f64::from(n) / start.elapsed().as_secs_f64();
    runner.finish().map_err(|e| e.to_string())?;
    Ok((per_sec, lat))
}

/// The runs of one loop as the report shows them: the median ops/s with min and max, each run's
/// figure, and latency percentiles over every operation of every run.
fn summarize(runs: Vec<Timed>) -> Value {
    let mut rates = Vec::new();
    let mut lat = Vec::new();
    for run in runs {
        match run {
            Ok((per_sec, l)) => {
                rates.push(per_sec.round());
                lat.extend(l);
            }
            Err(e) => return json!({ "error": e }),
        }
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    json!({
        "per_sec": sorted.get(sorted.len() / 2),
        "per_sec_min": sorted.first(),
        "per_sec_max": sorted.last(),
        "per_sec_runs": rates,
        "latency": percentiles(lat),
    })
}

/// Real-disk measurements in `root`: raw syscall baselines and every strategy, 100 B and 4 KiB
/// values, each run `DISK_RUNS` times, the loops interleaved so a slow spell of the disk falls on
/// all of them alike.
fn real_disk(root: &Path, quick: bool) -> Value {
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::create_dir_all(root);
    let (synced, free) = if quick { (200, 2_000) } else { (1_000, 20_000) };
    const RAW: [&str; 4] = ["append+fdatasync", "append+fsync", "O_DSYNC", "append, no sync"];
    let mut sizes = Vec::new();
    for value_bytes in [100usize, 4096] {
        let mut raw: Vec<Vec<Timed>> = RAW.iter().map(|_| Vec::new()).collect();
        let mut engine: Vec<Vec<Timed>> = strategies().iter().map(|_| Vec::new()).collect();
        for _ in 0..DISK_RUNS {
            for (mode, runs) in RAW.iter().zip(&mut raw) {
                let n = if *mode == "append, no sync" { free } else { synced };
                runs.push(raw_loop(&root.join(format!("raw-{value_bytes}")), n, value_bytes, mode));
            }
            for ((i, st), runs) in strategies().iter().enumerate().zip(&mut engine) {
                let n = if st.strategy == SyncStrategy::OSync { synced } else { free };
                let dir = root.join(format!("engine-{value_bytes}-{i}"));
                runs.push(engine_loop(&dir, st, n, value_bytes));
            }
        }
        let raw: serde_json::Map<String, Value> =
            RAW.iter().zip(raw).map(|(m, runs)| (m.to_string(), summarize(runs))).collect();
        let engine: serde_json::Map<String, Value> = strategies()
            .iter()
            .zip(engine)
            .map(|(st, runs)| (st.name.to_string(), summarize(runs)))
            .collect();
        sizes.push(json!({ "value_bytes": value_bytes, "raw": raw, "engine": engine }));
    }
    let (mount, fstype, options) = mount_of(root);
    let _ = std::fs::remove_dir_all(root);
    json!({
        "dir": root.parent().unwrap_or(root).display().to_string(),
        "filesystem": fstype,
        "mount_point": mount,
        "mount_options": options,
        "runs": DISK_RUNS,
        "sizes": sizes,
    })
}

/// Engine o_sync puts/s of 100-byte values on `vfs`.
fn puts<V: Vfs>(vfs: V) -> f64 {
    let n = 20_000u32;
    let start = Instant::now();
    if let Ok(mut db) = Engine::open(vfs, Config::new(SyncStrategy::OSync)) {
        for i in 0..n {
            let _ = db.put(format!("key{i:07}").as_bytes(), &[b'v'; 100]);
        }
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

/// The floor under `throughput-1k`: per seed, the engine's 1,000 o_sync puts of 100-byte values
/// on SimFs (posix) up to a power cut at a random operation, one sampled crash state and one
/// recovery; no history, oracle or second recovery. Seeds per second on the calling thread.
pub fn bare_crash_loop(seeds: u64) -> f64 {
    on_one_thread(|| bare_crash_loop_here(seeds))
}

/// Run `f` on a fresh one-thread pool, as every speed in the report is measured (same thread
/// kind, same allocator arena), or here if no thread can be made.
fn on_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

fn bare_crash_loop_here(seeds: u64) -> f64 {
    use rand::{Rng, SeedableRng};
    let value = [b'v'; 100];
    let mut key = Vec::new();
    let start = Instant::now();
    for seed in 0..seeds {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let fs = SimFs::with_profile(Profile::posix());
        fs.arm_power_cut(rng.random_range(1..=2_000));
        let config = Config::new(SyncStrategy::OSync);
        if let Ok(mut db) = Engine::open(fs.clone(), config.clone()) {
            for i in 0..1_000u32 {
                crate::workload::write_key(&mut key, i);
                if db.put(&key, &value).is_err() {
                    break;
                }
            }
        }
        let point = fs.take_crash_points().pop().unwrap_or_else(|| fs.crash_point_now());
        let space = point.power_cut_space();
        let _ = Engine::open(space.materialize(&space.sample(&mut rng)), config);
    }
    seeds as f64 / start.elapsed().as_secs_f64()
}

/// States/s of each default scenario on one core, every check on, over at most `cap` of its
/// seeds: (name, states/s).
pub fn default_suite_speed(cap: u64) -> Vec<(String, f64)> {
    on_one_thread(|| {
        crate::scenarios::default()
            .into_iter()
            .filter_map(|s| {
                let config = spec_for(&s, &[]).ok()?;
                let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds.min(cap), &|_| {});
                Some((s.name.clone(), r.per_sec()))
            })
            .collect()
    })
}

/// throughput-1k crash scenarios/s on one core, every check on, three ways: as the scenario is
/// written (64 random crash points per seed, sharing one run of the workload) over `seeds`
/// seeds; with prefix reuse (a crash point at every operation of one run) over `seeds / 200`;
/// and exhaustive (every distinct state up to 64 at one point) over `seeds / 4`. A speed is only
/// worth stating when the built-in engine passes: a violation is an error naming the mode.
pub fn throughput_1k(s: &Scenario, seeds: u64) -> Result<[f64; 3], String> {
    let mut reuse = s.clone();
    reuse.faults.crash_points = CrashPoints::EveryOp;
    let mut exhaustive = s.clone();
    exhaustive.faults.states = States::Exhaustive { budget: 64 };
    let config = spec_for(s, &[])?;
    let rate = |s: &Scenario, n: u64, mode: &str| {
        let r = run_scenario::<Bitcask>(s, &config, 0..n, &|_| {});
        match r.violations() {
            0 => Ok(r.per_sec()),
            v => Err(format!("{} ({mode}): {v} violations on the built-in engine", s.name)),
        }
    };
    on_one_thread(|| {
        Ok([
            rate(s, seeds, "sampled")?,
            rate(&reuse, (seeds / 200).max(1), "prefix reuse")?,
            rate(&exhaustive, (seeds / 4).max(1), "exhaustive")?,
        ])
    })
}

/// The harness's own speed: throughput-1k crash scenarios/s on one core beside the bare crash
/// loop; SimFs vs MemFs.
fn speed(quick: bool) -> Value {
    let seeds = if quick { 100 } else { 1_000 };
    let t1k =
        crate::scenarios::named("throughput-1k").ok_or_else(|| "no throughput-1k".to_string());
    let modes = t1k.and_then(|s| throughput_1k(&s, seeds)).ok();
    let per_sec = modes.map(|m| m[0].round());
    let bare = bare_crash_loop(if quick { 300 } else { 2_000 }).round();
    let suite: serde_json::Map<String, Value> = default_suite_speed(if quick { 10 } else { 200 })
        .into_iter()
        .map(|(name, rate)| (name, json!(rate.round())))
        .collect();
    let (mem, sim) = (puts(MemFs::new()), puts(SimFs::with_profile(Profile::posix())));
    json!({
        "throughput_1k_scenarios_per_sec_per_core": per_sec,
        "throughput_1k_prefix_reuse_per_sec_per_core": modes.map(|m| m[1].round()),
        "throughput_1k_exhaustive_per_sec_per_core": modes.map(|m| m[2].round()),
        "bare_crash_loop_per_sec_per_core": bare,
        "checked_share_of_bare": per_sec.map(|p| (p / bare * 100.0).round() / 100.0),
        "exhaustive_share_of_bare": modes.map(|m| (m[2] / bare * 100.0).round() / 100.0),
        "default_suite_states_per_sec_per_core": suite,
        "engine_o_sync_puts_per_sec_memfs": mem.round(),
        "engine_o_sync_puts_per_sec_simfs": sim.round(),
        "simfs_overhead_ratio": ((mem / sim) * 100.0).round() / 100.0,
    })
}

/// Black-box mode's speed on the SQLite example (rollback journal, synchronous=FULL): states/s
/// with a check process per state, with a check server, with `--check true` (the ceiling of a
/// process per state) and with a server that answers at once (the harness's own ceiling), the
/// same states in one run. Skipped, saying why, without python3's sqlite3,
/// strace or the examples directory.
fn blackbox_speed(scratch: &Path, quick: bool) -> Value {
    #[cfg(feature = "cli")]
    let measured = blackbox_speed_run(scratch, quick);
    #[cfg(not(feature = "cli"))]
    let measured: Result<Value, String> = {
        let _ = (scratch, quick);
        Err("built without the cli feature".into())
    };
    measured.unwrap_or_else(|e| json!({ "skipped": e }))
}

#[cfg(feature = "cli")]
fn blackbox_speed_run(scratch: &Path, quick: bool) -> Result<Value, String> {
    use crate::blackbox::explore::{self, Check, Options, Promise};
    use crate::blackbox::{Recording, record};
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blackbox");
    let program = examples.join("sqlite_kv.py");
    if !program.exists() {
        return Err(format!("{} not found (run from a checkout)", program.display()));
    }
    let python = std::process::Command::new("python3")
        .args(["-c", "import sqlite3"])
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if !python.success() {
        return Err("python3 has no sqlite3 module".into());
    }
    let root = scratch.join("blackbox-speed");
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let program = program.display().to_string();
    let trace = record(&Recording {
        dir: data.clone(),
        command: ["python3", &program, &data.display().to_string(), "load", "8", "delete", "full"]
            .map(String::from)
            .to_vec(),
        ack: "^ACK ".into(),
        fail_sync: None,
        quiet: Some(root.join("trace.err")),
        cwd: None,
        timeout: None,
    })?;
    let budget = if quick { 200 } else { 1000 };
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = |check| Options {
        profile: Profile::posix(),
        seed: 0,
        budget,
        per_point: 6,
        sampled: 4,
        check,
        timeout: Duration::from_secs(20),
        jobs,
        promise: Promise::Durable,
        power: true,
        kill: true,
        shrink_runs: 64,
        scratch: root.join("states"),
    };
    let replayed = explore::replay(&trace, &Profile::posix(), 0)?;
    let mut rates = Vec::new();
    let mut states = 0;
    for check in [
        Check::Command(format!("python3 {program} {{dir}} check")),
        Check::Server(format!("python3 {program} --serve")),
        Check::Command("true".into()),
        Check::Server(r#"while read d; do echo '{"state": {}}'; done"#.into()),
    ] {
        let x = explore::explore(&trace, &replayed, &options(check), &|_, _| {})?;
        states = x.checked;
        rates.push(x.checked as f64 / x.seconds.max(1e-9));
    }
    let _ = std::fs::remove_dir_all(&root);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    Ok(json!({
        "program": "examples/blackbox/sqlite_kv.py load 8 delete full (rollback journal, synchronous=FULL)",
        "states": states,
        "jobs": jobs,
        "per_process_states_per_sec": round(rates[0]),
        "check_server_states_per_sec": round(rates[1]),
        "check_true_states_per_sec": round(rates[2]),
        "empty_server_states_per_sec": round(rates[3]),
        "server_speedup": round(rates[1] / rates[0]),
        "server_share_of_ceiling": (rates[1] / rates[3] * 100.0).round() / 100.0,
    }))
}

/// Everything the report says, as JSON.
pub fn collect(scratch: &Path, quick: bool) -> Value {
    let seeds = if quick { 20 } else { 100 };
    json!({
        "quick": quick,
        "simulated": { "seeds_per_row": seeds, "workload": "400 ops (90% put / 10% delete), 100-byte values, 50-150 ms apart (~40 s), random crash point, 2 states per point", "rows": simulated(seeds) },
        "picture": picture(quick),
        "bugs": bug_table(),
        "speed": speed(quick),
        "blackbox_speed": blackbox_speed(scratch, quick),
        "real_disk": real_disk(scratch, quick),
    })
}

/// A markdown table row of `r`'s fields, open at the end: "| a | b | c".
fn row(r: &Value, fields: &[&str]) -> String {
    fields.iter().map(|f| format!("| {} ", num(&r[*f]))).collect::<String>().trim_end().to_string()
}

fn num(v: &Value) -> String {
    match v {
        // A rounded float reads as the whole number it is ("2284", not "2284.0").
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The report's answers, in sentences with numbers: fdatasync against fsync on this disk (with
/// the spread of the runs), the most `interval 1s` lost, and what `none` loses to a power cut
/// and to kill -9.
fn summary(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let disk = &doc["real_disk"];
    if let Some(size) = disk["sizes"].as_array().and_then(|s| s.first()) {
        let runs = |mode: &str| -> Vec<f64> {
            size["raw"][mode]["per_sec_runs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let (fdatasync, fsync) = (runs("append+fdatasync"), runs("append+fsync"));
        let mut ratios: Vec<f64> =
            fdatasync.iter().zip(&fsync).filter(|(_, b)| **b > 0.0).map(|(a, b)| a / b).collect();
        ratios.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
            let mid = ratios[ratios.len() / 2];
            out.push(format!(
                "On this disk ({} at {}), appending {}-byte records with fdatasync after each ran {} per second and with fsync {} (medians of {} runs): fdatasync is {mid:.2}x as fast as fsync, {lo:.2}x to {hi:.2}x run by run{}.",
                num(&disk["filesystem"]),
                num(&disk["mount_point"]),
                num(&size["value_bytes"]),
                num(&size["raw"]["append+fdatasync"]["per_sec"]),
                num(&size["raw"]["append+fsync"]["per_sec"]),
                ratios.len(),
                if *lo < 1.0 && *hi > 1.0 { ": no reliable difference here" } else { "" }
            ));
        }
    }
    let rows: Vec<&Value> = doc["simulated"]["rows"].as_array().into_iter().flatten().collect();
    let find = |strategy: &str, profile: &str, crash: &str| {
        rows.iter()
            .find(|r| r["strategy"] == strategy && r["profile"] == profile && r["crash"] == crash)
    };
    let seeds = num(&doc["simulated"]["seeds_per_row"]);
    if let (Some(p), Some(e)) = (
        find("interval 1s", "posix", "power cut"),
        find("interval 1s", "ext4-ordered", "power cut"),
    ) {
        out.push(format!(
            "interval 1s: the most acknowledged writes one power cut took was {} on posix and {} on ext4-ordered ({seeds} seeds each, ~10 writes a second), the oldest of them {:.0} ms and {:.0} ms old: {} its promised 1 s.",
            num(&p["acked_lost_max"]),
            num(&e["acked_lost_max"]),
            p["loss_window_max_ms"].as_f64().unwrap_or(f64::NAN),
            e["loss_window_max_ms"].as_f64().unwrap_or(f64::NAN),
            {
                let worst = [&p, &e]
                    .iter()
                    .filter_map(|r| r["loss_window_max_ms"].as_f64())
                    .fold(0.0, f64::max);
                if worst <= 1000.0 { "within" } else { "BEYOND" }
            }
        ));
    }
    if let (Some(p), Some(e), Some(kp), Some(ke)) = (
        find("none", "posix", "power cut"),
        find("none", "ext4-ordered", "power cut"),
        find("none", "posix", "kill -9"),
        find("none", "ext4-ordered", "kill -9"),
    ) {
        out.push(format!(
            "none: a power cut took up to {} acknowledged writes on posix (nothing promises they ever reach the disk) and up to {} on ext4-ordered (writeback within ~40 s); kill -9 took {} and {}, since the page cache survives a process crash.",
            num(&p["acked_lost_max"]),
            num(&e["acked_lost_max"]),
            num(&kp["acked_lost_max"]),
            num(&ke["acked_lost_max"])
        ));
    }
    out
}

/// The Markdown report.
pub fn markdown(doc: &Value) -> String {
    let mut m = String::from("# powercut durability report\n\nGenerated by `powercut report`");
    if doc["quick"].as_bool() == Some(true) {
        m.push_str(" (`--quick`)");
    }
    m.push_str(". Simulated sections are deterministic; measured sections are from the machine that ran it.\n\n");
    let disk = &doc["real_disk"];
    m.push_str("## Summary\n\n");
    for line in summary(doc) {
        let _ = writeln!(m, "- {line}");
    }
    m.push('\n');
    let _ = writeln!(
        m,
        "## Real disk: {} at {} ({}), mounted {}\n\nEach figure is the median of {} runs, the loops interleaved, with the slowest and fastest run beside it; latencies are over every operation of every run.\n",
        num(&disk["filesystem"]),
        num(&disk["mount_point"]),
        num(&disk["dir"]),
        num(&disk["mount_options"]),
        num(&disk["runs"])
    );
    for size in disk["sizes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "### {}-byte values\n\n| | puts/s (median) | min–max | p50 us | p99 us | p99.9 us | vs raw append+fdatasync |\n|---|---:|---:|---:|---:|---:|---:|",
            num(&size["value_bytes"])
        );
        let base = size["raw"]["append+fdatasync"]["per_sec"].as_f64().unwrap_or(1.0);
        let mut row = |name: &str, v: &Value| {
            let l = &v["latency"];
            let ratio = v["per_sec"].as_f64().map_or("-".into(), |p| format!("{:.2}x", p / base));
            let _ = writeln!(
                m,
                "| {name} | {} | {}–{} | {} | {} | {} | {ratio} |",
                num(&v["per_sec"]),
                num(&v["per_sec_min"]),
                num(&v["per_sec_max"]),
                num(&l["p50_us"]),
                num(&l["p99_us"]),
                num(&l["p999_us"])
            );
        };
        for (k, v) in size["raw"].as_object().into_iter().flatten() {
            row(&format!("raw: {k}"), v);
        }
        for (k, v) in size["engine"].as_object().into_iter().flatten() {
            row(&format!("engine: {k}"), v);
        }
        m.push('\n');
    }
    let _ = writeln!(
        m,
        "## Crash-tested loss (simulated, {} seeds per row)\n\n{}\n",
        num(&doc["simulated"]["seeds_per_row"]),
        num(&doc["simulated"]["workload"])
    );
    m.push_str("| strategy | profile | crash | promised bound | states | violations | acked lost (mean) | acked lost (max) | loss window max (ms) |\n|---|---|---|---|---:|---:|---:|---:|---:|\n");
    for r in doc["simulated"]["rows"].as_array().into_iter().flatten() {
        let cells = [
            "strategy",
            "profile",
            "crash",
            "promised_bound",
            "crash_states",
            "violations",
            "acked_lost_mean",
            "acked_lost_max",
            "loss_window_max_ms",
        ];
        let _ = writeln!(m, "{} |", row(r, &cells));
    }
    m.push_str("\n## Known bugs: caught, and how fast\n\n| bug switch | scenario | class | seeds to first detection | seconds | shrunk to (ops) |\n|---|---|---|---:|---:|---:|\n");
    for r in doc["bugs"].as_array().into_iter().flatten() {
        let cells = [
            "bug",
            "scenario",
            "class",
            "seeds_to_first_detection",
            "seconds_to_first_detection",
            "shrunk_operations",
        ];
        let _ = writeln!(m, "{} of {} |", row(r, &cells), num(&r["original_operations"]));
    }
    let s = &doc["speed"];
    let _ = writeln!(
        m,
        "\n## Harness speed\n\n- throughput-1k: {} crash scenarios/s on one core, every check on, as the scenario is written: 64 random crash points per seed, sharing one run of the workload (target: at least the bare loop)\n- the same scenario with prefix reuse (a crash point at every operation of one run): {}/s; exhaustive (every distinct state up to 64 at each of its points): {}/s (target: at least the bare loop)\n- bare crash loop (the same puts to a random power cut, one crash state, one recovery, no checks): {}/s on one core; throughput-1k as written is {} of it, exhaustive {}\n- turmoil-fs on the same workload: `cargo bench --manifest-path bench/turmoil/Cargo.toml` runs it beside throughput-1k and the bare loop in one process (a crate of its own: powercut does not build tokio)\n- engine o_sync puts/s: {} on MemFs (no fault tracking), {} on SimFs: SimFs costs {}x\n",
        num(&s["throughput_1k_scenarios_per_sec_per_core"]),
        num(&s["throughput_1k_prefix_reuse_per_sec_per_core"]),
        num(&s["throughput_1k_exhaustive_per_sec_per_core"]),
        num(&s["bare_crash_loop_per_sec_per_core"]),
        num(&s["checked_share_of_bare"]),
        num(&s["exhaustive_share_of_bare"]),
        num(&s["engine_o_sync_puts_per_sec_memfs"]),
        num(&s["engine_o_sync_puts_per_sec_simfs"]),
        num(&s["simfs_overhead_ratio"])
    );
    if let Some(suite) = s["default_suite_states_per_sec_per_core"].as_object() {
        m.push_str("Each default scenario, crash states/s on one core, every check on, beside the bare loop above (a workload to one power cut, one recovery, no checks):\n\n| scenario | states/s | vs bare loop |\n|---|---:|---:|\n");
        let bare = s["bare_crash_loop_per_sec_per_core"].as_f64().unwrap_or(f64::NAN);
        for (name, rate) in suite {
            let ratio = rate.as_f64().map_or("-".into(), |r| format!("{:.2}x", r / bare));
            let _ = writeln!(m, "| {name} | {} | {ratio} |", num(rate));
        }
        m.push('\n');
    }
    let b = &doc["blackbox_speed"];
    match b["skipped"].as_str() {
        Some(why) => {
            let _ = writeln!(m, "## Black-box speed\n\nSkipped: {why}.");
        }
        None => {
            let _ = writeln!(
                m,
                "## Black-box speed\n\n`powercut explore` of {}: {} distinct crash states judged, {} jobs, the same states each way.\n\n| check | states/s |\n|---|---:|\n| a process per state (`--check`) | {} |\n| a check server (`--check-server`) | {} |\n| a process that does nothing (`--check true`): the ceiling of a process per state | {} |\n| a server that answers at once: the harness's own ceiling | {} |\n\nThe check server runs {}x the states/s of a process per state (target 20x), {} of the harness's ceiling.",
                num(&b["program"]),
                num(&b["states"]),
                num(&b["jobs"]),
                num(&b["per_process_states_per_sec"]),
                num(&b["check_server_states_per_sec"]),
                num(&b["check_true_states_per_sec"]),
                num(&b["empty_server_states_per_sec"]),
                num(&b["server_speedup"]),
                num(&b["server_share_of_ceiling"])
            );
        }
    }
    m
}

/// Write `durability.json`, `durability.md` and `durability.html` into `out`.
pub fn write(out: &Path, doc: &Value) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let files = [
        ("durability.json", serde_json::to_string_pretty(doc).unwrap_or_default() + "\n"),
        ("durability.md", markdown(doc)),
        ("durability.html", crate::report_html::html(doc)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_sections_are_deterministic_and_render() {
        let a = simulated(2);
        assert_eq!(a, simulated(2), "same binary, same numbers");
        let rows = a.as_array().map_or(0, Vec::len);
        assert_eq!(rows, strategies().len() * 2 * 2);
        // o_sync never loses an acknowledged write; the correct engine has no violations.
        for r in a.as_array().into_iter().flatten() {
            assert_eq!(r["violations"], 0, "{r}");
            if r["strategy"].as_str().is_some_and(|s| s.starts_with("o_sync")) {
                assert_eq!(r["acked_lost_max"], 0, "{r}");
            }
        }
        let doc = json!({ "quick": true, "simulated": { "rows": a, "seeds_per_row": 2, "workload": "w" }, "picture": [], "bugs": [], "speed": {}, "real_disk": { "sizes": [] } });
        let md = markdown(&doc);
        assert!(md.contains("| interval 1s | posix | power cut |"), "{md}");
        // The summary answers from the rows.
        assert!(
            md.contains("- interval 1s: the most acknowledged writes one power cut took"),
            "{md}"
        );
        assert!(md.contains("- none: a power cut took up to "), "{md}");
        assert!(md.contains("kill -9 took 0 and 0"), "{md}");
        let html = crate::report_html::html(&doc);
        assert!(
            html.starts_with("<!DOCTYPE html>")
                && html.contains("<svg")
                && html.contains("<table>")
        );
    }

    #[test]
    fn the_summary_states_fdatasync_against_fsync_with_its_spread() {
        let raw = |runs: [f64; 5]| {
            let mut sorted = runs;
            sorted.sort_by(f64::total_cmp);
            json!({ "per_sec": sorted[2], "per_sec_runs": runs })
        };
        let doc = json!({
            "real_disk": { "filesystem": "ext4", "mount_point": "/", "sizes": [{
                "value_bytes": 100,
                "raw": {
                    "append+fdatasync": raw([2000.0, 2100.0, 1900.0, 2050.0, 2000.0]),
                    "append+fsync": raw([1000.0, 1000.0, 1000.0, 1000.0, 1000.0]),
                },
            }]},
        });
        let lines = summary(&doc);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("fdatasync is 2.00x as fast as fsync, 1.90x to 2.10x run by run."),
            "{}",
            lines[0]
        );
        let mixed = json!({
            "real_disk": { "filesystem": "ext4", "mount_point": "/", "sizes": [{
                "value_bytes": 100,
                "raw": {
                    "append+fdatasync": raw([900.0, 1100.0, 1000.0, 1000.0, 1000.0]),
                    "append+fsync": raw([1000.0, 1000.0, 1000.0, 1000.0, 1000.0]),
                },
            }]},
        });
        assert!(
            summary(&mixed)[0].ends_with("no reliable difference here."),
            "{:?}",
            summary(&mixed)
        );
    }
}
