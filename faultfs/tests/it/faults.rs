//! Injected faults: fsync EIO under each semantics, write EIO, ENOSPC, bit rot, latent errors.

use crate::*;
use faultfs::{EioSemantics, Fault, FaultPlan, InFlight, Latency, SimConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::ErrorKind;
use std::time::Duration;

fn with_faults(faults: FaultPlan) -> SimFs {
    SimFs::new(SimConfig::new(Profile::posix()).latency(Latency::zero()).faults(faults))
}

/// A durable "AAAA" overwritten with "BBBB", then two fsyncs: ops 5..=8 are open, write, fsync,
/// sync_dir; op 9 the overwrite, op 10 the first fsync (the fault), op 11 the retry.
fn fsyncgate(semantics: EioSemantics) -> (SimFs, std::io::Result<()>, std::io::Result<()>) {
    let fs = with_faults(FaultPlan::none().at(3, Fault::SyncEio).semantics(semantics));
    let f = fs.open("db", OpenOptions::create()).unwrap(); // 1
    f.write_all_at(b"AAAA", 0).unwrap(); // 2
    fs.set_faults(FaultPlan::none().at(6, Fault::SyncEio).semantics(semantics));
    f.sync_all().unwrap(); // 3: not faulted any more
    fs.sync_dir().unwrap(); // 4
    f.write_all_at(b"BBBB", 0).unwrap(); // 5
    let first = f.sync_data(); // 6: EIO
    let second = f.sync_data(); // 7
    (fs, first, second)
}

#[test]
fn fsync_eio_linux_then_a_successful_fsync_still_loses_the_data() {
    let (fs, first, second) = fsyncgate(EioSemantics::Linux);
    let err = first.unwrap_err();
    assert!(err.to_string().contains("db") && err.to_string().contains("EIO"), "{err}");
    second.expect("linux reports the error once; the retry succeeds");
    assert_eq!(fs.contents("db").unwrap(), b"BBBB", "reads still show the new data");
    assert_eq!(fs.fired_faults(), vec![(6, Fault::SyncEio)]);
    // Whatever the failed fsync did not persist, the retry never will: one durable image.
    assert_eq!(outcomes(&images(&fs.crash_point_now())).len(), 1);
}

#[test]
fn a_failed_linux_fsync_may_have_persisted_a_prefix_of_the_writes() {
    // Four pages written, then a failing fsync and a retry: across seeds, the durable image is
    // the old file with the first k writes for several k, 0 among them, and never a later write
    // without an earlier one.
    let mut kept = BTreeSet::new();
    for seed in 0..24 {
        let plan = FaultPlan::none().at(8, Fault::SyncEio);
        let config = SimConfig::new(Profile::posix()).latency(Latency::zero()).seed(seed);
        let fs = SimFs::new(config);
        let f = durable_file(&fs, "db", &[b'o'; 2048]); // ops 1-4
        fs.set_faults(plan);
        for i in 0..3u64 {
            f.write_all_at(&[b'n'; 512], i * 512).unwrap(); // ops 5-7
        }
        assert!(f.sync_data().is_err()); // op 8
        f.sync_data().unwrap();
        let image = images(&fs.crash_point_now());
        assert_eq!(image.len(), 1);
        let db = image[0].contents("db").unwrap();
        let k = db.chunks(512).take_while(|c| c.iter().all(|b| *b == b'n')).count();
        assert!(db[k * 512..].iter().all(|b| *b == b'o'), "a prefix of the writes: {seed}");
        kept.insert(k);
    }
    assert!(kept.contains(&0) && kept.len() >= 3, "{kept:?}");
}

#[test]
fn writeback_errors_reach_every_descriptor_once_and_rewriting_a_page_restores_it() {
    // Two descriptors opened before a background writeback fails: each reports it at its next
    // fsync, once; one opened after the error was reported does not.
    let plan = FaultPlan::none().at(1, Fault::WritebackEio);
    let config = SimConfig::new(Profile::ext4_ordered()).latency(Latency::zero()).faults(plan);
    let fs = SimFs::new(config);
    let a = fs.open("db", OpenOptions::create()).unwrap();
    let b = fs.open("db", OpenOptions::existing()).unwrap();
    a.write_all_at(&[b'x'; 100], 0).unwrap();
    fs.advance(Duration::from_secs(6)); // the first pass writes it, and fails
    assert_eq!(fs.fired_faults().len(), 1);
    assert_eq!(fs.file_state("db").unwrap().pending_ops, 0, "the data was dropped silently");
    // The error lives in the kernel: a process restarted after a kill -9 sees it at its first
    // fsync (no one has yet); a reboot forgets it.
    let point = fs.crash_point_now();
    let killed = point.process_crash(faultfs::InFlight::Skipped);
    let reopened = killed.open("db", OpenOptions::existing()).unwrap();
    assert!(reopened.sync_all().is_err(), "after a kill -9");
    let space = point.power_cut_space();
    let rebooted = space.materialize(&space.nothing_landed());
    let reopened = rebooted.open("db", OpenOptions::existing()).unwrap();
    assert!(reopened.sync_all().is_ok(), "after a power cut");
    assert!(a.sync_all().is_err(), "a sees the writeback error");
    assert!(a.sync_all().is_ok(), "once");
    let c = fs.open("db", OpenOptions::existing()).unwrap();
    assert!(b.sync_all().is_err(), "b, opened before the error, sees it too");
    assert!(b.sync_all().is_ok() && c.sync_all().is_ok(), "c was opened after a reported it");
    assert_eq!(fs.file_state("db").unwrap().durable_len, 0, "the dropped data never landed");
    // Re-dirtying the page writes it whole: the dropped bytes land with the new ones.
    a.write_all_at(b"!", 100).unwrap();
    a.sync_all().unwrap();
    let mut want = vec![b'x'; 100];
    want.push(b'!');
    assert_eq!(images(&fs.crash_point_now())[0].contents("db").unwrap(), want);
}

#[test]
fn a_failed_journal_commit_shuts_the_filesystem_down_read_only() {
    let plan = FaultPlan::none().at(3, Fault::CommitEio);
    let config = SimConfig::new(Profile::ext4_ordered()).latency(Latency::zero()).faults(plan);
    let fs = SimFs::new(config);
    let f = fs.open("db", OpenOptions::create()).unwrap(); // 1
    f.write_all_at(b"data", 0).unwrap(); // 2
    let err = f.sync_all().unwrap_err(); // 3: the commit fails
    assert!(err.to_string().contains("journal commit failed"), "{err}");
    let err = f.write_all_at(b"more", 4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnlyFilesystem, "{err}");
    assert!(fs.open("other", OpenOptions::create()).is_err());
    assert!(fs.sync_dir().is_err());
    assert_eq!(fs.contents("db").unwrap(), b"data", "reads still work");
    // The name never committed: a power cut leaves nothing.
    assert!(outcomes(&images(&fs.crash_point_now())).iter().all(|s| s.is_empty()));
    // Without the fault, the same fsync commits the name and the data.
    let fs = SimFs::with_profile(Profile::ext4_ordered());
    let f = fs.open("db", OpenOptions::create()).unwrap();
    f.write_all_at(b"data", 0).unwrap();
    f.sync_all().unwrap();
    assert_eq!(
        outcomes(&images(&fs.crash_point_now())),
        BTreeSet::from([vec![file("db", b"data")]])
    );
}

#[test]
fn fsync_eio_btrfs_revert_rolls_the_cache_back() {
    let (fs, first, second) = fsyncgate(EioSemantics::BtrfsRevert);
    assert!(first.is_err());
    assert!(second.is_ok());
    assert_eq!(fs.contents("db").unwrap(), b"AAAA");
}

#[test]
fn fsync_eio_sticky_fails_every_later_fsync_and_keeps_pages_dirty() {
    let (fs, first, second) = fsyncgate(EioSemantics::Sticky);
    assert!(first.is_err());
    assert!(second.is_err(), "sticky: the retry fails too");
    assert_eq!(fs.contents("db").unwrap(), b"BBBB");
    assert_eq!(fs.file_state("db").unwrap().pending_ops, 1, "still dirty");
    let seen: BTreeSet<Vec<u8>> =
        images(&fs.crash_point_now()).iter().map(|i| i.contents("db").unwrap()).collect();
    assert!(seen.contains(b"AAAA".as_slice()) && seen.contains(b"BBBB".as_slice()));
}

#[test]
fn write_eio_changes_nothing_and_is_traced_as_injected() {
    let fs = with_faults(FaultPlan::none().at(2, Fault::WriteEio));
    let f = fs.open("a", OpenOptions::create()).unwrap();
    let err = f.write_at(b"x", 0).unwrap_err();
    assert!(err.to_string().contains("a: write at 0"), "{err}");
    assert_eq!(fs.contents("a").unwrap(), b"");
    let last = fs.trace().pop().unwrap();
    assert_eq!(last.outcome, faultfs::Outcome::Err { errno: "EIO", injected: true });
}

#[test]
fn enospc_gives_a_short_write_then_an_error_naming_the_file() {
    let fs = with_faults(FaultPlan::none().capacity(100));
    let f = fs.open("big", OpenOptions::create()).unwrap();
    assert_eq!(f.write_at(&[1; 150], 0).unwrap(), 100, "short write up to the capacity");
    let err = f.write_at(&[2; 10], 100).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    assert!(err.to_string().contains("big") && err.to_string().contains("ENOSPC"), "{err}");
    // Overwriting inside the file needs no space; removing a file frees it.
    assert_eq!(f.write_at(&[3; 50], 0).unwrap(), 50);
    drop(f);
    fs.remove("big").unwrap();
    let g = fs.open("next", OpenOptions::create()).unwrap();
    assert_eq!(g.write_at(&[4; 100], 0).unwrap(), 100);
    let err = g.write_all_at(&[5; 1], 100).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
}

#[test]
fn random_fault_rates_are_seeded_and_recorded() {
    let run = |seed: u64| {
        let plan = FaultPlan { sync_eio_rate: 0.3, ..FaultPlan::none() };
        let fs = SimFs::new(SimConfig::new(Profile::posix()).faults(plan).seed(seed));
        let f = fs.open("a", OpenOptions::create()).unwrap();
        for i in 0..40u64 {
            f.write_all_at(b"x", i).unwrap();
            let _ = f.sync_data();
        }
        fs.fired_faults()
    };
    let fired = run(9);
    assert!(!fired.is_empty() && fired.len() < 40, "{fired:?}");
    assert_eq!(fired, run(9));
    assert_ne!(fired, run(10));
}

#[test]
fn bit_flip_is_served_by_reads_of_the_durable_sector() {
    let fs = posix();
    durable_file(&fs, "log", b"\x00\x00\x00\x00");
    let space = fs.crash_point_now().power_cut_space();
    let image = space.materialize(&space.nothing_landed());
    image.flip_bit("log", 2, 3).unwrap();
    let f = image.open("log", OpenOptions::existing()).unwrap();
    let mut buf = [0u8; 4];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf, [0, 0, 8, 0]);
}

#[test]
fn latent_sector_error_fails_reads_until_the_sector_is_rewritten() {
    let fs = posix();
    let f = durable_file(&fs, "log", &[7u8; 1024]);
    fs.add_latent_error("log", 600).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 10, "sector 0 is fine");
    let err = f.read_at(&mut buf, 510).unwrap_err();
    assert!(err.to_string().contains("latent sector error"), "{err}");
    f.write_all_at(&[9u8; 512], 512).unwrap();
    assert_eq!(f.read_at(&mut buf, 510).unwrap(), 10);
    assert_eq!(buf, [7, 7, 9, 9, 9, 9, 9, 9, 9, 9]);
}

#[test]
fn read_to_end_is_one_read_of_the_whole_file_holes_and_latent_sectors_included() {
    let fs = posix();
    let f = durable_file(&fs, "log", &[7u8; 5000]);
    f.set_len(9000).unwrap(); // a hole reads as zeros
    f.write_all_at(b"end", 9000).unwrap();
    let mut whole = vec![0u8; 9003];
    f.read_exact_at(&mut whole, 0).unwrap();
    let ops = fs.op_count();
    let mut out = b"kept".to_vec();
    assert_eq!(f.read_to_end(&mut out).unwrap(), 9003);
    assert_eq!((&out[..4], &out[4..]), (&b"kept"[..], &whole[..]));
    assert_eq!(fs.op_count(), ops + 1, "one read operation");
    fs.add_latent_error("log", 8000).unwrap();
    let err = f.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("latent sector error"), "{err}");
}

#[test]
fn seeded_rot_is_deterministic() {
    let rot = |seed: u64| {
        let fs = posix();
        durable_file(&fs, "a", &[0u8; 4096]);
        durable_file(&fs, "b", &[0u8; 4096]);
        let done = fs.rot(&mut ChaCha8Rng::seed_from_u64(seed), 3, 2);
        (done, fs.contents("a"), fs.contents("b"))
    };
    let (done, _, _) = rot(5);
    assert_eq!(done.len(), 5);
    assert_eq!(done.iter().filter(|d| d.2).count(), 2);
    assert_eq!(rot(5), rot(5));
}

/// A durable 4-page file (pages of 'a', 'b', 'c', 'd') on `profile` with `plan` from op 6 on.
fn four_pages(plan: FaultPlan) -> (SimFs, faultfs::SimFile) {
    let fs = SimFs::new(SimConfig::new(Profile::ext4_ordered()).latency(Latency::zero()));
    let data: Vec<u8> = (0..4).flat_map(|p| vec![b'a' + p as u8; 4096]).collect();
    let f = durable_file(&fs, "db", &data); // ops 1-4
    fs.set_faults(plan);
    (fs, f)
}

fn durable(fs: &SimFs) -> Vec<u8> {
    let space = fs.crash_point_now().power_cut_space();
    space.materialize(&space.nothing_landed()).contents("db").unwrap()
}

#[test]
fn a_misdirected_write_lands_a_few_pages_away_and_says_what_it_cost() {
    let (fs, f) = four_pages(FaultPlan::none().at(6, Fault::MisdirectedWrite));
    f.write_all_at(&[b'X'; 4096], 4096).unwrap(); // op 5
    f.sync_data().unwrap(); // op 6: acknowledged
    let disk = durable(&fs);
    assert!(disk[4096..8192].iter().all(|b| *b == b'b'), "the intended page kept its old data");
    let landed: Vec<usize> = (0..disk.len() / 4096)
        .filter(|p| disk[p * 4096..][..4096].iter().all(|b| *b == b'X'))
        .collect();
    assert_eq!(landed.len(), 1, "the data landed whole, elsewhere");
    let damage = fs.device_damage();
    assert_eq!(damage.len(), 2);
    assert_eq!((damage[0].offset, damage[0].bytes[0]), (4096, b'X'), "what did not land");
    assert_eq!(damage[1].offset, landed[0] as u64 * 4096, "what it overwrote");
    // Without the fault the same sync lands it in place.
    let (fs, f) = four_pages(FaultPlan::none());
    f.write_all_at(&[b'X'; 4096], 4096).unwrap();
    f.sync_data().unwrap();
    assert!(durable(&fs)[4096..8192].iter().all(|b| *b == b'X'));
    assert!(fs.device_damage().is_empty());
}

#[test]
fn a_lost_flush_is_acknowledged_and_leaves_the_data_unsynced() {
    let (fs, f) = four_pages(FaultPlan::none().at(6, Fault::LostFlush));
    f.write_all_at(b"new", 0).unwrap(); // op 5
    f.sync_data().unwrap(); // op 6: acknowledged, lost
    assert_eq!(&durable(&fs)[..3], b"aaa", "a power cut loses it");
    assert_eq!(fs.device_damage()[0].bytes, b"new");
    f.sync_data().unwrap(); // the next flush lands it
    assert_eq!(&durable(&fs)[..3], b"new");
}

#[test]
fn device_read_faults_are_transient_except_a_latent_sector() {
    let (fs, f) = four_pages(
        FaultPlan::none()
            .at(5, Fault::ReadEio)
            .at(7, Fault::ReadCorrupt)
            .at(9, Fault::LatentOnRead),
    );
    let mut buf = vec![0u8; 4096];
    assert!(f.read_at(&mut buf, 0).is_err(), "op 5: EIO");
    f.read_exact_at(&mut buf, 0).unwrap(); // op 6: fine again
    assert!(buf.iter().all(|b| *b == b'a'));
    f.read_exact_at(&mut buf, 0).unwrap(); // op 7: one bit flipped in what was read
    assert_eq!(buf.iter().filter(|b| **b != b'a').count(), 1);
    assert!(fs.contents("db").unwrap()[..4096].iter().all(|b| *b == b'a'), "the disk is fine");
    f.read_exact_at(&mut buf, 0).unwrap(); // op 8
    assert!(buf.iter().all(|b| *b == b'a'));
    let mut page = vec![0u8; 4096];
    assert!(f.read_at(&mut page, 8192).is_err(), "op 9: a latent sector found");
    assert!(f.read_at(&mut page, 8192).is_err(), "and it stays");
    assert_eq!(fs.device_damage()[0].offset, 8192);
    f.write_all_at(&[b'z'; 4096], 8192).unwrap(); // rewriting the page remaps it
    f.read_exact_at(&mut page, 8192).unwrap();
    assert!(fs.device_damage().iter().all(|d| d.fault == Fault::LatentOnRead));
}

/// After a `linux` fsync error the cache serves bytes the disk never got, even to a process
/// started after a kill -9; dropping the cache shows what the disk has. Dirty pages stay.
#[test]
fn dropping_the_cache_after_a_linux_fsync_error_shows_what_the_disk_has() {
    let fs = posix();
    let f = durable_file(&fs, "log", b"durable.");
    f.write_all_at(b"never written", 8).unwrap();
    let op = fs.op_count() + 1;
    fs.set_faults(FaultPlan::none().at(op, Fault::SyncEio));
    assert!(f.sync_data().is_err());
    let killed = fs.crash_point_now().process_crash(InFlight::Skipped);
    let g = killed.open("log", OpenOptions::existing()).unwrap();
    let mut buf = vec![0u8; 21];
    g.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"durable.never written", "the cache still serves it");
    g.drop_cache().unwrap();
    g.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..8], b"durable.");
    assert!(buf[8..].iter().all(|b| *b == 0), "the disk never got it: {buf:?}");
    // A page with dirty data in it is not evicted.
    let fs = posix();
    let f = durable_file(&fs, "log", b"durable.");
    f.write_all_at(b"dirty", 8).unwrap();
    f.drop_cache().unwrap();
    let mut buf = vec![0u8; 13];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"durable.dirty");
}
