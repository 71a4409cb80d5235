//! Recovery: torn tails, holes, corruption in immutable files, reads that check CRCs.

use crate::*;
use faultfs::{OpenOptions, Vfs, VfsFile};

const ACTIVE: &str = "0000000001.data";

/// Three durable records, then `tail` appended raw to the active file and made durable.
fn with_tail(tail: &[u8]) -> (SimFs, u64) {
    let fs = sim(Profile::posix());
    let mut db = open(&fs, osync());
    for i in 0..3 {
        db.put(&key(i), &value(i, 20)).unwrap();
    }
    drop(db);
    let f = fs.open(ACTIVE, OpenOptions::existing()).unwrap();
    let good = f.len().unwrap();
    f.write_all_at(tail, good).unwrap();
    f.sync_data().unwrap();
    (fs, good)
}

fn torn_record() -> Vec<u8> {
    let whole = engine::format::encode_record(1, 4, 0, false, b"key0003", &value(3, 20));
    whole[..whole.len() - 5].to_vec()
}

#[test]
fn a_torn_tail_is_truncated_and_the_truncation_synced_before_writes() {
    let (fs, good) = with_tail(&torn_record());
    let mut db = open(&fs, osync());
    let report = db.recovery_report().clone();
    assert_eq!(report.truncated.as_ref().map(|t| (t.0.as_str(), t.1)), Some((ACTIVE, good)));
    assert_eq!(db.state().unwrap().len(), 3);
    db.put(b"after", b"recovery").unwrap();
    // The truncation is durable: a power cut now still shows a clean log with the new record.
    let image = durable_only(&fs);
    assert_eq!(recover(&image, osync()).len(), 4);
    let reopened = open(&image, osync());
    assert_eq!(reopened.recovery_report().truncated, None);
}

#[test]
fn unsynced_recovery_truncate_loses_the_truncation_to_a_power_cut() {
    for (config, truncation_durable) in
        [(osync(), true), (with_bug(osync(), "unsynced-recovery-truncate"), false)]
    {
        let (fs, good) = with_tail(&torn_record());
        drop(open(&fs, config));
        let len = durable_only(&fs).file_state(ACTIVE).unwrap().cached_len;
        assert_eq!(len == good, truncation_durable);
    }
}

#[test]
fn append_after_torn_tail_puts_new_records_behind_garbage() {
    for (config, survives) in
        [(osync(), true), (with_bug(osync(), "append-after-torn-tail"), false)]
    {
        let (fs, _) = with_tail(&torn_record());
        let mut db = open(&fs, config.clone());
        db.put(b"new", b"acknowledged").unwrap();
        let state = recover(&durable_only(&fs), config);
        assert_eq!(state.contains_key(b"new".as_slice()), survives);
    }
}

#[test]
fn the_first_bad_record_ends_the_log_and_skipping_it_serves_what_came_after() {
    let mut tail = vec![0u8; 64]; // a hole: size persisted, data did not
    tail.extend(engine::format::encode_record(1, 9, 0, false, b"later", b"write"));
    for (config, sees_later) in [(osync(), false), (with_bug(osync(), "skip-bad-records"), true)] {
        let (fs, _) = with_tail(&tail);
        let state = recover(&fs, config);
        assert_eq!(state.contains_key(b"later".as_slice()), sees_later);
        assert_eq!(state.len(), 3 + usize::from(sees_later));
    }
}

#[test]
fn corruption_inside_an_immutable_file_is_reported_and_never_served() {
    let fs = sim(Profile::posix());
    let config = osync().max_file_bytes(4096);
    let mut db = open(&fs, config.clone());
    for i in 0..60 {
        db.put(&key(i), &value(i, 100)).unwrap();
    }
    drop(db);
    fs.flip_bit(ACTIVE, 1000, 0).unwrap(); // file 1 is immutable now
    let db = open(&fs, config);
    let report = db.recovery_report();
    assert_eq!(report.corrupt.len(), 1, "{report:?}");
    assert_eq!(report.corrupt[0].file, ACTIVE);
    assert!(report.corrupt[0].offset <= 1000);
    let state = db.state().unwrap();
    for (k, v) in &state {
        let i: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
        assert_eq!(v, &value(i, 100), "only values that were written are served");
    }
    assert!(state.len() < 60, "the records after the corruption are not served");
}

#[test]
fn a_read_checks_the_crc_and_refuses_a_rotted_record() {
    let fs = sim(Profile::posix());
    let mut db = open(&fs, osync());
    db.put(b"k", b"value").unwrap();
    fs.flip_bit(ACTIVE, 30, 2).unwrap();
    let err = db.get(b"k").unwrap_err();
    assert!(matches!(err, engine::Error::Corrupt { offset: 0, .. }), "{err}");
    assert!(err.to_string().contains(ACTIVE), "{err}");
}

#[test]
fn a_latent_sector_error_fails_recovery_with_an_error_not_a_panic() {
    let (fs, _) = with_tail(b"");
    fs.add_latent_error(ACTIVE, 10).unwrap();
    let err = Engine::open(fs.clone(), osync()).unwrap_err();
    assert!(err.to_string().contains("latent sector error"), "{err}");
}

#[test]
fn recovery_after_kill_9_makes_what_it_found_durable() {
    let fs = sim(Profile::posix());
    let config = Config::new(SyncStrategy::None);
    let mut db = open(&fs, config.clone());
    db.put(b"k", b"in the page cache only").unwrap();
    let after_kill = fs.crash_point_now().process_crash(faultfs::InFlight::Skipped);
    let reopened = open(&after_kill, config.clone());
    assert_eq!(reopened.state().unwrap().len(), 1);
    assert_eq!(reopened.durable_through(), 1);
    assert_eq!(recover(&durable_only(&after_kill), config).len(), 1);
}

/// Found by powercut (scenario fsync-eio-linux, seed 3): an open that failed after creating the
/// first data file left its entry only in the page cache; the retried open trusted the entry, never
/// fsynced the directory, and a power cut took the file with every acknowledged write in it.
#[test]
fn regression_retried_open_makes_the_found_files_entry_durable() {
    let fs = sim(Profile::posix());
    // Op 1 lists, op 2 creates the file, op 3 is recovery's fdatasync: fail it.
    fs.set_faults(faultfs::FaultPlan::none().at(3, faultfs::Fault::SyncEio));
    assert!(Engine::open(fs.clone(), osync()).is_err());
    fs.set_faults(faultfs::FaultPlan::none());
    let mut db = open(&fs, osync());
    db.put(b"k", b"acknowledged").unwrap();
    assert_eq!(recover(&durable_only(&fs), osync()), kv(&[("k", "acknowledged")]));
}
