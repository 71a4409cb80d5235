//! Recovery on arbitrary bytes: the input is split into up to three data files and a hint file.
//! Opening must return or fail; it must never panic. Run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run recovery` from the repository root.
#![no_main]

use engine::format::{data_name, hint_name};
use engine::{Config, Engine, EngineBugs, SyncStrategy};
use faultfs::{OpenOptions, Profile, SimFs, Vfs, VfsFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fs = SimFs::with_profile(Profile::posix());
    let mut parts = data.split(|b| *b == 0xff).take(4);
    for id in 1..=3u32 {
        let Some(part) = parts.next() else { break };
        let Ok(f) = fs.open(&data_name(id), OpenOptions::create()) else { return };
        let _ = f.write_all_at(part, 0);
    }
    if let Some(hint) = parts.next() {
        if let Ok(h) = fs.open(&hint_name(3), OpenOptions::create()) {
            let _ = h.write_all_at(hint, 0);
        }
    }
    for bugs in [EngineBugs::none(), EngineBugs { skip_bad_records: true, ..EngineBugs::none() }] {
        let image = fs.crash_point_now().process_crash(faultfs::InFlight::Skipped);
        let config = Config::new(SyncStrategy::OSync).bugs(bugs);
        if let Ok(db) = Engine::open(image, config) {
            let _ = db.state();
        }
    }
});
