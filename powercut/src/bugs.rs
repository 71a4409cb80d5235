//! Which scenario catches each known engine bug, and with which class: one of the default suite,
//! or, for a bug only a misbehaving device exposes, an extra scenario (run by name). The tests
//! assert every row; the durability report measures each one.

use crate::oracle::Class;

/// (bug switch, the scenario that catches it, the class it must report)
pub const CAUGHT_BY: [(&str, &str, Class); 14] = [
    ("no-fsync", "o_sync-posix", Class::Durability),
    ("no-dir-fsync-on-rotate", "rotation-heavy", Class::Durability),
    ("hint-in-place", "merge-heavy", Class::Durability),
    ("unsynced-recovery-truncate", "crash-during-recovery", Class::CrashDuringRecovery),
    ("fsync-retry-after-eio", "fsync-eio-linux", Class::Durability),
    ("skip-bad-records", "interval-posix", Class::Ordering),
    ("merge-drops-tombstones", "merge-heavy", Class::Resurrection),
    ("merge-removes-before-durable", "merge-heavy", Class::Durability),
    ("append-after-torn-tail", "torn-tail-then-writes", Class::Durability),
    ("batch-not-atomic", "atomic-batch-posix", Class::Atomicity),
    ("crc-ignores-file", "recycled-blocks", Class::Resurrection),
    ("read-error-ends-log", "bit-rot", Class::Durability),
    ("trusts-misplaced-record", "misdirected-merge", Class::Validity),
    ("trusts-page-cache", "fsync-eio-linux", Class::CrashDuringRecovery),
];
