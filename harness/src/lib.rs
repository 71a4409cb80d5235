//! harness: powercut's crash exploration, oracle and checks.
//!
//! - [`subject`]: the `Subject` trait an engine under test implements, and the built-in Bitcask.
//! - [`state`]: what a subject holds after recovery, flat and sorted by key.
//! - [`scenario`]: scenario files (JSON, unknown fields rejected).
//! - [`workload`]: the operations a seed runs; every value tagged with the write that made it.
//! - [`run`]: one seed — the workload once, crash points captured as it goes, crash states,
//!   recovery, checks, a crash during recovery, writes after recovery.
//! - [`oracle`]: the history, the promises, the named violation classes.
//! - [`suite`]: seeds in parallel, results in seed order, the digest, the JSON results.
//!
//! Determinism: a seed's outcome depends only on the scenario, the seed and the binary. Seeds run
//! in parallel but nothing is shared between them, and results are ordered by seed.

pub mod blackbox;
pub mod bugs;
pub mod cli;
pub mod oracle;
pub mod report;
pub mod report_html;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod state;
pub mod subject;
pub mod suite;
pub mod workload;

/// Keep freed memory in the process instead of handing it back to the kernel (glibc only; a
/// no-op elsewhere). A crash scenario allocates and frees a few hundred KiB (its workload, crash
/// images, recovered files and states); with glibc's defaults the top of the heap went back to the
/// kernel after a scenario and came back as fresh zeroed pages in the next, some 30 page faults a
/// scenario and a fifth of a run's time. `powercut` and the benchmarks call this once at start.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    set_malloc_thresholds();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt sets two glibc tunables and has no safety preconditions")]
fn set_malloc_thresholds() {
    // SAFETY: mallopt takes plain integers and only changes allocator thresholds.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
