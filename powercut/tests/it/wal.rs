//! A second, deliberately tiny subject: the harness judges it like the Bitcask — the correct WAL
//! passes, the one that skips its syncs is caught.

use crate::wal_subject::Wal;
use crate::*;
use powercut::oracle::Class;
use powercut::suite::run_scenario;

#[test]
fn a_correct_wal_passes_and_a_wal_without_syncs_is_caught() {
    let s = scenario("o_sync-posix");
    let good = run_scenario::<Wal>(&s, &true, 0..60, &|_| {});
    assert_eq!(good.violations(), 0, "{:?}", good.seeds.iter().find(|o| !o.violations.is_empty()));
    assert!(good.crash_states() >= 240);
    let bad = run_scenario::<Wal>(&s, &false, 0..60, &|_| {});
    assert!(
        bad.by_class().get(&Class::Durability).copied().unwrap_or(0) > 0,
        "{:?}",
        bad.by_class()
    );
}

#[test]
fn the_readme_shows_the_example_crates_test_as_it_is() {
    let readme = include_str!("../../../README.md");
    let test = include_str!("../../../examples/walsnap/tests/crash.rs");
    let shown = &test[test.find("#[test]\nfn the_default_suite_passes").unwrap()..];
    let shown = &shown[..shown.find("/// Seeds of every").unwrap()];
    assert!(
        readme.contains(shown.trim()),
        "README.md must show walsnap's the_default_suite_passes"
    );
}
