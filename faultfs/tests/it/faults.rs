//! Injected faults: fsync EIO under each semantics, write EIO, ENOSPC, bit rot, latent errors.

use crate::*;
use faultfs::{EioSemantics, Fault, FaultPlan, Latency, SimConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::ErrorKind;

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
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![file("db", b"AAAA")]]), "the durable image kept the old");
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
