//! Same seeds, same binary: the same verdicts and digest, whatever the thread count.

use crate::*;
use powercut::bitcask::Bitcask;
use powercut::suite::{digest, run_scenario};

fn digest_with_threads(threads: usize, names: &[&str]) -> String {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let results: Vec<_> = pool.install(|| {
        names
            .iter()
            .map(|n| {
                let s = scenario(n);
                // Verdicts with violations in them.
                let config = bitcask(&s, &["skip-bad-records"]);
                run_scenario::<Bitcask>(&s, &config, 0..40, &|_| {})
            })
            .collect()
    });
    digest(&results)
}

#[test]
fn one_and_two_threads_give_the_same_digest() {
    let names = ["interval-posix", "checkpoint-ext4", "crash-during-recovery", "exhaustive-small"];
    let one = digest_with_threads(1, &names);
    assert_eq!(one, digest_with_threads(2, &names));
    assert_eq!(one, digest_with_threads(2, &names), "and again");
}
