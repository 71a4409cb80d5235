//! faultfs integration tests: one test per semantic of the fault model, each showing the exact
//! bytes or names that survive.
#![expect(clippy::unwrap_used, reason = "test helpers: a panic is the failure report")]

mod calibration;
mod crash_states;
mod dir_ops;
mod faults;
mod fidelity;
mod profiles;
mod real;
mod seam;
mod trees;

use faultfs::{CrashPoint, OpenOptions, Profile, SimFs, Vfs, VfsFile};
use std::collections::BTreeSet;

/// Every distinct power-cut image at `point` (the spaces in these tests are small).
pub fn images(point: &CrashPoint) -> Vec<SimFs> {
    let mut out = Vec::new();
    let coverage = point.power_cut_space().explore(100_000, |_, image| out.push(image));
    assert!(coverage.complete, "test space larger than the budget: {coverage:?}");
    out
}

/// Names and contents of an image, as an engine would see them.
pub fn snapshot(fs: &SimFs) -> Vec<(String, Vec<u8>)> {
    fs.names().into_iter().map(|n| (n.clone(), fs.contents(&n).unwrap())).collect()
}

/// The set of distinct snapshots across images.
pub fn outcomes(images: &[SimFs]) -> BTreeSet<Vec<(String, Vec<u8>)>> {
    images.iter().map(snapshot).collect()
}

/// A file `name` holding `data`, its data and its directory entry durable.
pub fn durable_file(fs: &SimFs, name: &str, data: &[u8]) -> faultfs::SimFile {
    let f = fs.open(name, OpenOptions::create()).unwrap();
    f.write_all_at(data, 0).unwrap();
    f.sync_all().unwrap();
    fs.sync_dir().unwrap();
    f
}

pub fn posix() -> SimFs {
    SimFs::with_profile(Profile::posix())
}

pub fn ext4() -> SimFs {
    SimFs::with_profile(Profile::ext4_ordered())
}

pub fn file(name: &str, data: &[u8]) -> (String, Vec<u8>) {
    (name.to_string(), data.to_vec())
}
