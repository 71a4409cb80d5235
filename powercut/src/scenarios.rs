//! The default scenario suite, compiled into the library: `powercut run` and
//! [`Check`](crate::Check) use it wherever they run, with no files to find.
//!
//! The same files are in the package's `scenarios/` directory, to read and to copy from; a test
//! checks that the two agree.

use crate::scenario::Scenario;

macro_rules! suite {
    ($($name:literal),* $(,)?) => {
        /// (file stem, JSON text) of every default scenario, in file name order.
        pub const FILES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../scenarios/", $name, ".json")))),*
        ];
    };
}

suite!(
    "atomic-batch-posix",
    "batch-ext4",
    "batch-posix",
    "bit-rot",
    "checkpoint-ext4",
    "checkpoint-posix",
    "commit-eio-ext4",
    "crash-during-recovery",
    "enospc",
    "exhaustive-small",
    "fsync-eio-btrfs-revert",
    "fsync-eio-linux",
    "fsync-eio-sticky",
    "fsync-vs-fdatasync",
    "generations",
    "interval-ext4",
    "interval-posix",
    "kill-9",
    "merge-heavy",
    "none-ext4-writeback-window",
    "none-ext4",
    "none-posix",
    "o_dsync",
    "o_sync-ext4",
    "o_sync-posix",
    "recycled-blocks",
    "rotation-heavy",
    "throughput-1k",
    "torn-tail-then-writes",
    "writeback-eio-ext4",
);

/// (file stem, JSON text) of the extra scenarios: compiled in and run by name, not part of the
/// default suite, because they ask more of a subject than crash consistency. `device-faults`
/// judges a subject on a device that misdirects writes and loses flushes: most logs that stop at
/// the first bad record lose later records silently there, which is worth knowing and not a
/// crash-consistency bug. `misdirected-merge` aims misdirected writes at merged files read
/// through their hints, where a displaced record lands exactly on another one.
pub const EXTRA: &[(&str, &str)] = &[
    ("device-faults", include_str!("../scenarios/extra/device-faults.json")),
    ("misdirected-merge", include_str!("../scenarios/extra/misdirected-merge.json")),
];

/// Every extra scenario, in file name order.
pub fn extra() -> Vec<Scenario> {
    EXTRA.iter().map(|(stem, text)| parse(stem, text)).collect()
}

/// Every scenario of the default suite, in file name order.
pub fn default() -> Vec<Scenario> {
    FILES.iter().map(|(stem, text)| parse(stem, text)).collect()
}

/// The default or extra scenario named `name` (its `name` field, which is also its file stem).
pub fn named(name: &str) -> Option<Scenario> {
    FILES.iter().chain(EXTRA).find(|(stem, _)| *stem == name).map(|(stem, text)| parse(stem, text))
}

fn parse(stem: &str, text: &str) -> Scenario {
    // The suite is checked by the tests (`every_default_scenario_parses`): a failure here is a
    // bug in this build, not bad input.
    match Scenario::parse(text, &format!("scenarios/{stem}.json")) {
        Ok(s) => s,
        Err(e) => panic!("the embedded default suite is broken: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_scenario_parses_and_is_named_as_its_file() {
        let all = default();
        assert_eq!(all.len(), FILES.len());
        for (s, (stem, _)) in all.iter().zip(FILES) {
            assert_eq!(&s.name, stem);
        }
        assert!(named("o_sync-posix").is_some());
        assert!(extra().iter().all(|s| named(&s.name).is_some()));
        assert!(default().iter().all(|s| extra().iter().all(|e| e.name != s.name)));
        assert!(named("no-such-scenario").is_none());
    }

    #[test]
    fn the_embedded_suite_is_the_scenarios_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        on_disk.sort(); // by file name, as the suite always ran: the digest depends on the order
        let on_disk: Vec<&str> = on_disk.iter().filter_map(|n| n.strip_suffix(".json")).collect();
        let embedded: Vec<&str> = FILES.iter().map(|(stem, _)| *stem).collect();
        assert_eq!(on_disk, embedded, "add new scenario files to the suite! list");
    }
}
