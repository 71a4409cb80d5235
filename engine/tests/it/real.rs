//! The real-disk runner: a background thread ticks an interval engine on RealFs.

use engine::runner::Background;
use engine::{Config, Engine, SyncStrategy};
use faultfs::RealFs;
use std::time::Duration;

#[test]
fn the_background_ticker_syncs_an_interval_engine_on_a_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(SyncStrategy::Interval { ms: 5 });
    let db = Engine::open(RealFs::open(dir.path()).unwrap(), config.clone()).unwrap();
    let runner = Background::start(db, Duration::from_millis(2));
    for i in 0..50u32 {
        runner.engine().put(&i.to_le_bytes(), b"real").unwrap();
    }
    // Wait, bounded, until a background tick has made everything durable.
    let mut waited = 0;
    while runner.engine().durable_through() < 50 && waited < 2_000 {
        std::thread::sleep(Duration::from_millis(5));
        waited += 5;
    }
    assert_eq!(runner.engine().durable_through(), 50, "no tick synced within 2 s");
    assert_eq!(runner.last_error(), None);
    runner.finish().unwrap();
    let reopened = Engine::open(RealFs::open(dir.path()).unwrap(), config).unwrap();
    assert_eq!(reopened.len(), 50);
}
