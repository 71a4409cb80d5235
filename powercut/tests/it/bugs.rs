//! The default suite on the correct engine finds nothing; with each known-bug switch on, the
//! scenario that targets it (of the default suite, or an extra one) reports the expected class.

use crate::*;
use powercut::bitcask::Bitcask;
use powercut::bugs::CAUGHT_BY;
use powercut::run::{Focus, run_seed};
use powercut::shrink::shrink;
use powercut::suite::run_scenario;

#[test]
fn the_correct_engine_passes_the_whole_default_suite() {
    for s in suite() {
        let config = bitcask(&s, &[]);
        let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds, &|_| {});
        let first = r.seeds.iter().flat_map(|o| &o.violations).next();
        assert_eq!(r.violations(), 0, "{}: {first:?}", s.name);
        assert!(r.crash_states() >= s.seeds, "{}", s.name);
    }
}

#[test]
fn every_engine_bug_switch_is_caught_by_its_scenario() {
    assert_eq!(CAUGHT_BY.len(), engine::BUGS.len());
    let docs = include_str!("../../../docs/scenarios.md");
    for (bug, what) in engine::BUGS {
        assert!(
            docs.contains(&format!("| `{bug}` | {what} |")),
            "{bug} is not in docs/scenarios.md"
        );
    }
    for (bug, name, class) in CAUGHT_BY {
        assert!(engine::BUGS.iter().any(|(b, _)| *b == bug), "{bug} is not a switch");
        let s = powercut::scenarios::named(name).unwrap();
        let config = bitcask(&s, &[bug]);
        let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds, &|_| {});
        let found = r.by_class();
        assert!(
            found.get(&class).copied().unwrap_or(0) > 0,
            "{bug} on {name}: expected {class}, got {found:?}"
        );
    }
}

#[test]
fn the_correct_engine_passes_every_extra_scenario() {
    for s in powercut::scenarios::extra() {
        let config = bitcask(&s, &[]);
        let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds, &|_| {});
        let first = r.seeds.iter().flat_map(|o| &o.violations).next();
        assert_eq!(r.violations(), 0, "{}: {first:?}", s.name);
        assert!(r.crash_states() >= s.seeds, "{}", s.name);
    }
}

#[test]
fn the_extra_device_faults_scenario_passes_the_correct_engine_and_catches_a_read_error_taken_for_the_end()
 {
    let s = powercut::scenarios::named("device-faults").unwrap();
    for (bugs, caught) in [(&[][..], false), (&["read-error-ends-log"][..], true)] {
        let config = bitcask(&s, bugs);
        let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds, &|_| {});
        let first = r.seeds.iter().flat_map(|o| &o.violations).next();
        assert_eq!(r.violations() > 0, caught, "{bugs:?}: {first:?}");
    }
}

#[test]
fn every_bug_replays_from_its_crash_point_and_shrinks_to_at_most_20_operations() {
    for (bug, name, class) in CAUGHT_BY {
        let s = powercut::scenarios::named(name).unwrap();
        let config = bitcask(&s, &[bug]);
        let r = run_scenario::<Bitcask>(&s, &config, 0..s.seeds, &|_| {});
        let (seed, v) = r
            .seeds
            .iter()
            .find_map(|o| {
                o.violations.iter().find(|v| v.class == class).map(|v| (o.seed, v.clone()))
            })
            .unwrap();
        // What `replay --crash-at K --state N` runs: the same class at the same place.
        let focus = Focus { crash_op: Some(v.crash_op), state: Some(v.state), ..Focus::default() };
        let again = run_seed::<Bitcask>(&s, &config, seed, focus);
        assert!(
            again.violations.iter().any(|w| w.class == class && w.message == v.message),
            "{bug}: replay of seed {seed} lost the violation"
        );
        // How far a case shrinks depends on its seed (where its faults and its crash fell): the
        // best of the first three seeds failing this way must get under the bound.
        let failing: Vec<u64> = r
            .seeds
            .iter()
            .filter(|o| o.violations.iter().any(|v| v.class == class))
            .map(|o| o.seed)
            .take(3)
            .collect();
        let (seed, shrunk) = failing
            .iter()
            .map(|&seed| (seed, shrink::<Bitcask>(&s, &config, seed, Some(class)).unwrap()))
            .min_by_key(|(_, sh)| sh.keep.len())
            .unwrap();
        assert_eq!(shrunk.class, class);
        // A misdirected write's choices (which write of a sync, how many pages away) are drawn
        // per filesystem operation, so dropping an earlier operation draws them anew; and the
        // case needs a merged file of several chunks. It shrinks less far.
        // The failed-fsync case needs a failed sync, the rewrite it starts and a kill inside
        // it.
        let most = match bug {
            "trusts-misplaced-record" | "trusts-page-cache" => 60,
            _ => 20,
        };
        assert!(shrunk.keep.len() <= most, "{bug}: shrunk to {} operations", shrunk.keep.len());
        let replayed =
            run_seed::<Bitcask>(&s_for(&s, shrunk.exhaustive), &config, seed, shrunk.focus());
        assert!(
            replayed.violations.iter().any(|w| w.class == class),
            "{bug}: the shrunk case does not fail"
        );
    }
}

/// The scenario a shrunk case replays on (exhaustive states when the shrinker used them).
fn s_for(
    s: &powercut::scenario::Scenario,
    exhaustive: Option<u64>,
) -> powercut::scenario::Scenario {
    let mut s = s.clone();
    if let Some(budget) = exhaustive {
        s.faults.states = powercut::scenario::States::Exhaustive { budget };
    }
    s
}

/// Under sticky fsync errors nothing the engine read can be made durable after a kill -9: the
/// correct engine refuses to open, saying why, and the state counts as unavailable, not as a
/// violation; an engine that opens without syncing what it read serves data a power cut takes
/// away (crash-during-recovery).
#[test]
fn a_recovery_the_storage_fails_is_unavailable_and_serving_anyway_is_caught() {
    let s = powercut::scenarios::named("fsync-eio-sticky").unwrap();
    let r = run_scenario::<Bitcask>(&s, &bitcask(&s, &[]), 0..s.seeds, &|_| {});
    let first = r.seeds.iter().flat_map(|o| &o.violations).next();
    assert_eq!(r.violations(), 0, "{first:?}");
    let (p, k) = r.loss();
    assert!(p.unavailable + k.unavailable > 0, "the refusals are counted");
    let buggy = bitcask(&s, &["unsynced-recovery-truncate"]);
    let r = run_scenario::<Bitcask>(&s, &buggy, 0..s.seeds, &|_| {});
    let found = r.by_class();
    assert!(
        found.get(&powercut::oracle::Class::CrashDuringRecovery).copied().unwrap_or(0) > 0,
        "{found:?}"
    );
}

/// Generations: appending after a torn tail passes one recovery (recovery alone reads the log
/// right) and loses the writes that follow once the store carries on and crashes again. The
/// `generations` scenario run with one generation misses it; with its three it is caught, and the
/// correct engine passes.
#[test]
fn a_later_generation_catches_what_one_recovery_cannot() {
    let s = powercut::scenarios::named("generations").unwrap();
    assert_eq!(s.faults.generations, 3);
    let mut one = s.clone();
    one.faults.generations = 1;
    let seeds = 0..100;
    let buggy = bitcask(&s, &["append-after-torn-tail"]);
    let missed = run_scenario::<Bitcask>(&one, &buggy, seeds.clone(), &|_| {});
    assert_eq!(missed.violations(), 0, "one generation cannot see it");
    let caught = run_scenario::<Bitcask>(&s, &buggy, seeds.clone(), &|_| {});
    let found = caught.by_class();
    assert!(found.get(&powercut::oracle::Class::Durability).copied().unwrap_or(0) > 0, "{found:?}");
    let first = caught.seeds.iter().flat_map(|o| &o.violations).next().unwrap();
    assert!(first.message.starts_with("generation "), "{}", first.message);
    let correct = run_scenario::<Bitcask>(&s, &bitcask(&s, &[]), seeds, &|_| {});
    let first = correct.seeds.iter().flat_map(|o| &o.violations).next();
    assert_eq!(correct.violations(), 0, "{first:?}");
}
