//! powercut's benchmarks, as ratios measured in one run (a shared machine is noisy; a ratio of two
//! numbers taken side by side is not). Run: `cargo bench -p powercut`.
//!
//! - crash scenarios/s per core on `throughput-1k` as written (64 random crash points per seed,
//!   sharing one run of the workload), beside a bare crash loop (workload to the cut, one crash
//!   state, one recovery, no checks), with prefix reuse (a crash point at every operation of one
//!   run), and exhaustive (every distinct state up to 64 at each point); targets: as written and
//!   exhaustive at least the bare loop;
//! - crash states/s per core of every default scenario;
//! - recovery scan MB/s (Engine::open over a data file);
//! - SimFs overhead: the engine's o_sync puts on SimFs vs on MemFs (no fault tracking);
//! - real disk: engine o_sync puts/s vs a raw append + fdatasync loop, and batch vs a raw
//!   append loop with no sync (targets: >= 0.9 and >= 0.5).

use engine::{Config, Engine, SyncStrategy};
use faultfs::{MemFs, OpenOptions, RealFs, SimFs, Vfs, VfsFile};
use powercut::scenario::Scenario;
use std::path::Path;
use std::time::Instant;

fn scenario(name: &str) -> Scenario {
    powercut::scenarios::named(name).unwrap_or_else(|| panic!("no default scenario {name}"))
}

fn puts<V: Vfs>(vfs: V, strategy: SyncStrategy, n: u32, value: &[u8]) -> f64 {
    let mut db = Engine::open(vfs, Config::new(strategy)).expect("open");
    let start = Instant::now();
    for i in 0..n {
        db.put(format!("key{i:07}").as_bytes(), value).expect("put");
    }
    db.sync_now().expect("sync");
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn raw_appends(dir: &Path, n: u32, value: &[u8], sync: bool) -> f64 {
    let fs = RealFs::open(dir).expect("dir");
    let f = fs.open("raw.log", OpenOptions::create().truncate(true)).expect("open");
    let record = vec![7u8; value.len() + 38];
    let start = Instant::now();
    for i in 0..u64::from(n) {
        f.write_all_at(&record, i * record.len() as u64).expect("write");
        if sync {
            f.sync_data().expect("fdatasync");
        }
    }
    f.sync_data().expect("fdatasync");
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    powercut::keep_freed_memory();
    let t1k = scenario("throughput-1k");
    let [sampled, reused, explored] =
        powercut::report::throughput_1k(&t1k, 200).unwrap_or_else(|e| panic!("{e}"));
    let bare = powercut::report::bare_crash_loop(2_000);
    println!("throughput-1k, crash scenarios/s per core (every check on):");
    println!(
        "  as written, 64 points sharing a run      {sampled:>10.0}   ({:.2}x the bare loop; target 1.0)",
        sampled / bare
    );
    println!("  bare crash loop, no checks               {bare:>10.0}");
    println!("  prefix reuse, a crash point at every op  {reused:>10.0}");
    println!(
        "  exhaustive, up to 64 states at a point   {explored:>10.0}   ({:.2}x the bare loop; target 1.0)",
        explored / bare
    );
    println!(
        "  turmoil-fs on the same workload: cargo bench --manifest-path bench/turmoil/Cargo.toml"
    );
    println!("\ndefault suite, crash states/s per core (every check on, up to 200 seeds each):");
    for (name, rate) in powercut::report::default_suite_speed(200) {
        println!("  {name:<32} {rate:>10.0}   ({:.2}x the bare loop)", rate / bare);
    }

    // Recovery scan: 16 MiB of 100-byte records on MemFs.
    let mem = MemFs::new();
    let value = [b'v'; 100];
    {
        let config = Config::new(SyncStrategy::None).max_file_bytes(1 << 30);
        let mut db = Engine::open(mem.clone(), config).expect("open");
        for i in 0..125_000u32 {
            db.put(format!("key{i:07}").as_bytes(), &value).expect("put");
        }
    }
    let bytes =
        mem.open("0000000001.data", OpenOptions::existing()).and_then(|f| f.len()).expect("len");
    let start = Instant::now();
    let db = Engine::open(mem.clone(), Config::new(SyncStrategy::None)).expect("recover");
    let scan = bytes as f64 / 1e6 / start.elapsed().as_secs_f64();
    drop(db);
    println!(
        "\nrecovery scan: {:.1} MB in {} records: {scan:.0} MB/s",
        bytes as f64 / 1e6,
        125_000
    );

    let n = 20_000;
    let on_mem = puts(MemFs::new(), SyncStrategy::OSync, n, &value);
    let on_sim =
        puts(SimFs::with_profile(faultfs::Profile::posix()), SyncStrategy::OSync, n, &value);
    println!(
        "\nengine o_sync puts/s (100 B): MemFs {on_mem:.0}, SimFs {on_sim:.0}: SimFs costs {:.2}x",
        on_mem / on_sim
    );

    let dir = tempfile_dir();
    let real_n = 2_000;
    let raw_sync = raw_appends(&dir, real_n, &value, true);
    let engine_sync =
        puts(RealFs::create(dir.join("osync")).expect("dir"), SyncStrategy::OSync, real_n, &value);
    let raw_nosync = raw_appends(&dir, 50_000, &value, false);
    let batch = SyncStrategy::Batch { max_ops: 1024, max_delay_ms: 5 };
    let engine_batch = puts(RealFs::create(dir.join("batch")).expect("dir"), batch, 50_000, &value);
    println!("\nreal disk ({}), 100-byte values:", dir.display());
    println!(
        "  raw append + fdatasync   {raw_sync:>10.0}/s   engine o_sync {engine_sync:>10.0}/s   ratio {:.2} (target >= 0.9)",
        engine_sync / raw_sync
    );
    println!(
        "  raw append, no sync      {raw_nosync:>10.0}/s   engine batch  {engine_batch:>10.0}/s   ratio {:.2} (target >= 0.5)",
        engine_batch / raw_nosync
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory on the disk under the repository (real ext4 here), not in tmpfs.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-disk");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}
