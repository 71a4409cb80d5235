//! `SimFs`: a deterministic simulated disk and page cache with power cuts and injected faults.
//!
//! The fault model, precisely:
//! - Every call but `now()` is one numbered operation (from 1). A power cut can be armed at any
//!   operation k: operation k is *in flight* — it may have partly happened — and k and every later
//!   call fail with a power-cut error (see [`is_power_cut`]).
//! - A write or set_len changes the cached image at once (reads see it) and is queued as an
//!   unsynced operation on its file. fsync / fdatasync make the file's queued operations durable;
//!   fsync also the mtime, fdatasync not. Neither commits the file's directory entry unless the
//!   profile's `file_sync_persists_entry` says so. `O_SYNC` / `O_DSYNC` handles do the same as part
//!   of each write.
//! - create, rename and remove change the visible directory at once and are queued as unsynced
//!   directory operations; a directory fsync makes them all durable.
//! - Virtual time advances by each operation's [`Latency`] and by the harness
//!   ([`SimFs::advance`]). With a `writeback` profile, writeback passes and background writeback
//!   write dirty data, and journal commits make what they wrote and the pending directory
//!   operations durable (the calibrated model: see the `profile` module). With
//!   `fsync_commits_journal` a file fsync commits the whole transaction; a failed commit shuts
//!   the filesystem down read-only.
//! - What survives a crash is decided in the `crash` module from a [`CrashPoint`]: the durable image
//!   plus a subset of the unsynced state chosen by the profile (power cut), or the whole page cache
//!   (process crash). Nothing else of the state is lost, ever.
//! - Faults (see the `fault` module) fire at scheduled operation numbers or at seeded random.
//!
//! Single-threaded by design (`Rc<RefCell<_>>`): one SimFs per scenario, and scenarios run in
//! parallel on separate SimFs instances. Its only randomness is a ChaCha stream from the seed.

use crate::crash::CrashPoint;
use crate::fault::{EioSemantics, Fault, FaultPlan, Latency};
use crate::model::{DataOp, Ino, Model, Op};
use crate::names::{self, Kind};
use crate::profile::{Profile, Writeback};
use crate::trace::{Call, Outcome, TraceEntry};
use powercut_vfs::{
    DirEntry, EntryKind, OpenOptions, PowerLost, SyncMode, Vfs, VfsFile, check_dir, check_path,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// Everything that configures a SimFs.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub profile: Profile,
    pub latency: Latency,
    pub faults: FaultPlan,
    /// Seeds the fault stream and the garbage written into torn sectors.
    pub seed: u64,
}

impl SimConfig {
    /// The profile with default latency, no faults, seed 0.
    pub fn new(profile: Profile) -> Self {
        SimConfig { profile, latency: Latency::default(), faults: FaultPlan::none(), seed: 0 }
    }

    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    pub fn faults(mut self, faults: FaultPlan) -> Self {
        self.faults = faults;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What a device fault may have cost: `bytes` of `file` at `offset` — data that did not land
/// where it belonged, or durable data a misplaced write overwrote — recorded at operation `op`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDamage {
    pub op: u64,
    pub fault: Fault,
    pub file: String,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// What the trace and error messages say about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    /// What reads return.
    pub cached_len: u64,
    /// What the platter holds.
    pub durable_len: u64,
    /// Unsynced data operations queued.
    pub pending_ops: usize,
    /// Is the directory entry durable under this name?
    pub entry_durable: bool,
    pub cached_mtime: Duration,
    pub durable_mtime: Duration,
}

/// A simulated filesystem. Cloning gives another handle to the same filesystem.
#[derive(Clone)]
pub struct SimFs {
    inner: Rc<RefCell<Inner>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        write!(f, "SimFs({}, op {}, t={:?})", inner.config.profile, inner.ops, inner.now)
    }
}

/// What a capture policy says at the start of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// Take no crash point here.
    Skip,
    /// Take a crash point here, keeping the ones taken before.
    Keep,
    /// Take a crash point here in place of the last one taken (reservoir sampling).
    Replace,
}

type CapturePolicy = Box<dyn FnMut(u64, Call) -> Capture>;

struct Inner {
    config: Rc<SimConfig>,
    capture_policy: Option<CapturePolicy>,
    model: Model,
    now: Duration,
    next_writeback: Duration,
    next_commit: Duration,
    /// When background writeback writes the rest of what was dirty after a chunk.
    rest_due: Option<Duration>,
    /// Has a writeback pass found dirty data yet?
    first_pass_done: bool,
    /// This filesystem's background writeback threshold (drawn around the profile's).
    background_bytes: Option<u64>,
    /// A journal commit failed: the filesystem is read-only.
    shut_down: bool,
    /// Scheduled writeback and commit faults that have fired (each fires once).
    spent: BTreeSet<u64>,
    /// What device faults may have cost, in order.
    damage: Vec<DeviceDamage>,
    /// Operations started so far (the last one's number).
    ops: u64,
    capture_at: BTreeSet<u64>,
    cut_at: Option<u64>,
    dead_at: Option<u64>,
    captured: Vec<CrashPoint>,
    rng: ChaCha8Rng,
    tracing: bool,
    trace: Vec<TraceEntry>,
    fired: Vec<(u64, Fault)>,
}

/// An open file on a [`SimFs`].
pub struct SimFile {
    fs: SimFs,
    ino: Ino,
    name: Rc<str>,
    sync: SyncMode,
    /// The file's write errors this descriptor has reported (errseq).
    seen: Cell<u32>,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFile({}, ino {})", self.name, self.ino)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.fs.inner.try_borrow_mut() {
            let inode = inner.model.inode_mut(self.ino);
            inode.open_handles = inode.open_handles.saturating_sub(1);
            inner.close(self.ino);
        }
    }
}

fn eio(name: &str, what: &str) -> io::Error {
    io::Error::other(format!("{name}: {what}: EIO (input/output error)"))
}

fn erofs(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ReadOnlyFilesystem,
        format!("{name}: read-only file system (EROFS): a journal commit failed earlier"),
    )
}

fn errno_name(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::NotFound => "ENOENT",
        io::ErrorKind::AlreadyExists => "EEXIST",
        io::ErrorKind::InvalidInput => "EINVAL",
        io::ErrorKind::StorageFull => "ENOSPC",
        io::ErrorKind::ReadOnlyFilesystem => "EROFS",
        io::ErrorKind::NotADirectory => "ENOTDIR",
        io::ErrorKind::IsADirectory => "EISDIR",
        io::ErrorKind::DirectoryNotEmpty => "ENOTEMPTY",
        io::ErrorKind::PermissionDenied => "EPERM",
        _ => "EIO",
    }
}

impl SimFs {
    /// A new, empty filesystem.
    pub fn new(config: SimConfig) -> SimFs {
        if let Err(e) = config.profile.validate() {
            panic!("SimFs::new: invalid profile: {e}");
        }
        SimFs::from_model(Rc::new(config), Model::default(), Duration::ZERO)
    }

    /// A new, empty filesystem with `profile`, zero latency and no faults: for tests.
    pub fn with_profile(profile: Profile) -> SimFs {
        SimFs::new(SimConfig::new(profile).latency(Latency::zero()))
    }

    pub(crate) fn from_model(config: Rc<SimConfig>, mut model: Model, now: Duration) -> SimFs {
        model.page_bytes = u64::from(config.profile.page_bytes);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        // The kernel's threshold is a share of free memory, which differs from run to run: each
        // filesystem draws its own within a quarter of the profile's.
        let background_bytes = config.profile.writeback.and_then(|w| w.background_bytes).map(|b| {
            let quarter = b / 4;
            b - quarter + rng.random_range(0..=2 * quarter)
        });
        let (next_writeback, next_commit) = match config.profile.writeback {
            Some(w) => (
                now + Duration::from_millis(w.interval_ms),
                now + Duration::from_millis(w.metadata_commit_ms.unwrap_or(u64::MAX / 4)),
            ),
            None => (Duration::MAX, Duration::MAX),
        };
        let inner = Inner {
            config,
            capture_policy: None,
            model,
            now,
            next_writeback,
            next_commit,
            rest_due: None,
            first_pass_done: false,
            background_bytes,
            shut_down: false,
            spent: BTreeSet::new(),
            damage: Vec::new(),
            ops: 0,
            capture_at: BTreeSet::new(),
            cut_at: None,
            dead_at: None,
            captured: Vec::new(),
            rng,
            tracing: true,
            trace: Vec::new(),
            fired: Vec::new(),
        };
        SimFs { inner: Rc::new(RefCell::new(inner)) }
    }

    /// The configuration this filesystem runs with.
    pub fn config(&self) -> SimConfig {
        (*self.inner.borrow().config).clone()
    }

    /// Replace the fault plan (for example on a crash image, before recovery runs on it).
    pub fn set_faults(&self, faults: FaultPlan) {
        let mut inner = self.inner.borrow_mut();
        let mut config = (*inner.config).clone();
        config.faults = faults;
        inner.config = Rc::new(config);
    }

    /// Schedule an injected fault at operation `op` (one that has not started yet), beside the
    /// plan's: a harness that places faults relative to where a workload operation starts does it
    /// as the run reaches that operation.
    pub fn schedule_fault(&self, op: u64, fault: Fault) {
        let mut inner = self.inner.borrow_mut();
        assert!(op > inner.ops, "operation {op} has already started");
        let mut config = (*inner.config).clone();
        config.faults.at_ops.insert(op, fault);
        inner.config = Rc::new(config);
    }

    /// Advance virtual time by `d`, running any writeback passes that fall due.
    pub fn advance(&self, d: Duration) {
        let mut inner = self.inner.borrow_mut();
        let t = inner.now + d;
        inner.advance_to(t);
    }

    /// Advance virtual time to `t` (no-op if `t` is in the past: the clock is monotonic).
    pub fn advance_to(&self, t: Duration) {
        self.inner.borrow_mut().advance_to(t);
    }

    /// Arm a power cut at operation `op`: it is in flight when the power goes.
    pub fn arm_power_cut(&self, op: u64) {
        let mut inner = self.inner.borrow_mut();
        assert!(op > inner.ops, "operation {op} has already started");
        inner.cut_at = Some(op);
    }

    /// Capture a crash point as each of `ops` starts, without stopping: one run of a workload then
    /// yields the crash points of many crash scenarios (prefix reuse).
    pub fn capture_at(&self, ops: impl IntoIterator<Item = u64>) {
        self.inner.borrow_mut().capture_at.extend(ops);
    }

    /// Decide at the start of every operation (by its number and call) whether to capture a crash
    /// point there: one run of a workload yields exactly the crash points a policy picks, with no
    /// counting run first. The policy runs in operation order, so a seeded one is deterministic.
    pub fn capture_with(&self, policy: impl FnMut(u64, Call) -> Capture + 'static) {
        self.inner.borrow_mut().capture_policy = Some(Box::new(policy));
    }

    /// Stop capturing by policy.
    pub fn clear_capture_policy(&self) {
        self.inner.borrow_mut().capture_policy = None;
    }

    /// The crash points captured so far (including the one of a power cut).
    pub fn take_crash_points(&self) -> Vec<CrashPoint> {
        std::mem::take(&mut self.inner.borrow_mut().captured)
    }

    /// A crash point between operations, now (nothing in flight).
    pub fn crash_point_now(&self) -> CrashPoint {
        let inner = self.inner.borrow();
        CrashPoint::new(inner.ops + 1, inner.now, inner.config.clone(), inner.model.clone(), None)
    }

    /// The operation during which the power was cut, if it was.
    pub fn power_cut_at(&self) -> Option<u64> {
        self.inner.borrow().dead_at
    }

    /// Operations started so far (the number of the last one).
    pub fn op_count(&self) -> u64 {
        self.inner.borrow().ops
    }

    /// Turn the trace on or off (on by default).
    pub fn set_tracing(&self, on: bool) {
        self.inner.borrow_mut().tracing = on;
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.inner.borrow().trace.clone()
    }

    /// What device faults may have cost so far.
    pub fn device_damage(&self) -> Vec<DeviceDamage> {
        self.inner.borrow().damage.clone()
    }

    /// Faults that fired, by operation number.
    pub fn fired_faults(&self) -> Vec<(u64, Fault)> {
        self.inner.borrow().fired.clone()
    }

    /// The state of the file visible as `name`.
    pub fn file_state(&self, name: &str) -> Option<FileState> {
        let inner = self.inner.borrow();
        let model = &inner.model;
        let ino = model.lookup(name)?;
        let n = model.inode(ino);
        let durable = names::resolve(&model.durable_dir, &model.inodes, name, true);
        Some(FileState {
            cached_len: n.cached.len(),
            durable_len: n.durable.len(),
            pending_ops: n.pending.len(),
            entry_durable: durable.is_ok_and(|f| f.ino == Some(ino)),
            cached_mtime: n.cached_mtime,
            durable_mtime: n.durable_mtime,
        })
    }

    /// The visible content of `name` (what reads return), for inspection; not an operation.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let inner = self.inner.borrow();
        inner.model.lookup(name).map(|ino| inner.model.inode(ino).cached.to_vec())
    }

    /// Visible paths of files (and symbolic links), in path order, for inspection; not an
    /// operation.
    pub fn names(&self) -> Vec<String> {
        let inner = self.inner.borrow();
        let model = &inner.model;
        let all = names::walk(&model.visible_dir, &model.inodes);
        all.into_iter().filter(|(_, ino)| *model.kind(*ino) != Kind::Dir).map(|(p, _)| p).collect()
    }

    /// Visible paths of directories, in path order, for inspection; not an operation.
    pub fn dir_names(&self) -> Vec<String> {
        let inner = self.inner.borrow();
        let model = &inner.model;
        let all = names::walk(&model.visible_dir, &model.inodes);
        all.into_iter().filter(|(_, ino)| *model.kind(*ino) == Kind::Dir).map(|(p, _)| p).collect()
    }

    /// The target of the visible symbolic link `path`, for inspection; not an operation.
    pub fn link_target(&self, path: &str) -> Option<String> {
        let inner = self.inner.borrow();
        let ino = inner.model.resolve(path, false).ok()?.ino?;
        match inner.model.kind(ino) {
            Kind::Symlink(target) => Some(target.to_string()),
            _ => None,
        }
    }

    /// Bit rot: flip bit `bit` of the byte at `offset` of `name`, on the platter and in the cache.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        let ino = inner.lookup(name)?;
        let inode = inner.model.inode_mut(ino);
        for blob in [&mut inode.durable, &mut inode.cached] {
            let mut byte = [0u8; 1];
            if blob.read(&mut byte, offset) == 1 {
                byte[0] ^= 1 << (bit % 8);
                blob.write(&byte, offset);
            }
        }
        Ok(())
    }

    /// A latent sector error: every read touching the sector holding `offset` of `name` fails with
    /// EIO until the sector is rewritten.
    pub fn add_latent_error(&self, name: &str, offset: u64) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        let ino = inner.lookup(name)?;
        let sector = u64::from(inner.config.profile.page_bytes);
        inner.model.inode_mut(ino).latent_sectors.insert(offset / sector * sector);
        Ok(())
    }

    /// Seeded bit rot over the durable data of the visible files: `flips` flipped bits and
    /// `latent` latent sector errors. Returns what was done, as `(name, offset, is_latent)`.
    pub fn rot(&self, rng: &mut impl Rng, flips: u32, latent: u32) -> Vec<(String, u64, bool)> {
        let files: Vec<(String, u64)> = {
            let inner = self.inner.borrow();
            let model = &inner.model;
            let durable = names::walk(&model.durable_dir, &model.inodes);
            durable
                .into_iter()
                .filter(|(_, ino)| *model.kind(*ino) == Kind::File)
                .filter(|(_, ino)| model.inode(*ino).durable.len() > 0)
                .map(|(n, ino)| (n, model.inode(ino).durable.len()))
                .collect()
        };
        let mut done = Vec::new();
        if files.is_empty() {
            return done;
        }
        for i in 0..flips + latent {
            let (name, len) = &files[rng.random_range(0..files.len())];
            let offset = rng.random_range(0..*len);
            let is_latent = i >= flips;
            let result = if is_latent {
                self.add_latent_error(name, offset)
            } else {
                self.flip_bit(name, offset, rng.random_range(0..8))
            };
            if result.is_ok() {
                done.push((name.clone(), offset, is_latent));
            }
        }
        done
    }

    fn file_op<T>(
        &self,
        file: &SimFile,
        call: Call,
        op: Op,
        range: (u64, u64),
        body: impl FnOnce(&mut Inner, u64) -> io::Result<(T, u64)>,
    ) -> io::Result<T> {
        self.inner.borrow_mut().run(call, Some(file.name.clone()), op, range, body)
    }
}

impl Inner {
    fn advance_to(&mut self, t: Duration) {
        if t <= self.now {
            return;
        }
        if let Some(w) = self.config.profile.writeback {
            // Events in time order, a commit first on a tie (the kernel's first pass lands just
            // after the 5 s commit). Bounded: each event moves its time forward by a positive
            // interval, or clears `rest_due`.
            loop {
                let rest = self.rest_due.unwrap_or(Duration::MAX);
                let next = self.next_commit.min(self.next_writeback).min(rest);
                if next > t {
                    break;
                }
                self.now = self.now.max(next);
                if next == self.next_commit {
                    self.commit();
                    self.next_commit += Duration::from_millis(w.metadata_commit_ms.unwrap_or(0));
                } else if next == rest {
                    self.rest_due = None;
                    self.write_back_all(None);
                } else {
                    self.writeback_pass(w, next);
                    self.next_writeback += Duration::from_millis(w.interval_ms);
                }
            }
        }
        self.now = t;
    }

    /// A descriptor of `ino` was closed. With `auto_da_alloc`, a file truncated to zero since its
    /// last close has its data written back now (ext4's replace-via-truncate heuristic:
    /// `ext4_release_file` allocates and starts writing the delayed blocks), so the data commits
    /// with the next journal commit; and while the truncate is pending, it lands only with the
    /// data written before the close — the old contents or the new, not an empty file. Not after
    /// a power cut: nothing happens then.
    fn close(&mut self, ino: Ino) {
        if !self.config.profile.auto_da_alloc || self.dead_at.is_some() || self.shut_down {
            return;
        }
        let last = self.ops;
        let inode = self.model.inode_mut(ino);
        if !std::mem::take(&mut inode.truncated_to_zero) {
            return;
        }
        let mut flushes = std::mem::take(&mut inode.close_flushes);
        flushes.retain(|&(t, _)| inode.pending.iter().any(|p| p.seq == t));
        let truncate =
            inode.pending.iter().rev().find(|p| matches!(p.op, DataOp::SetLen { len: 0 }));
        flushes.extend(truncate.map(|p| (p.seq, last)));
        inode.close_flushes = flushes;
        if self.config.profile.writeback.is_some() {
            self.write_back_inode(ino, None);
            self.commit_unless_journaled();
        }
    }

    /// One periodic writeback pass at `at`: everything dirty if this is the first pass that
    /// finds any and the model says so, else the inodes dirty for `dirty_expire_ms`.
    fn writeback_pass(&mut self, w: Writeback, at: Duration) {
        let dirty = self.model.dirty_inodes();
        if dirty.is_empty() {
            return;
        }
        if w.first_pass_writes_all && !self.first_pass_done {
            self.first_pass_done = true;
            self.write_back_all(None);
            return;
        }
        let expire = Duration::from_millis(w.dirty_expire_ms);
        for ino in dirty {
            if self.model.inode(ino).dirty_since.is_some_and(|t| t + expire <= at) {
                self.write_back_inode(ino, None);
            }
        }
        self.commit_unless_journaled();
    }

    /// Write back the oldest dirty data, up to `budget` bytes (`None`: all of it).
    fn write_back_all(&mut self, budget: Option<u64>) {
        let mut left = budget;
        for ino in self.model.dirty_inodes() {
            let done = self.write_back_inode(ino, left);
            if let Some(l) = left.as_mut() {
                *l -= done;
                if *l == 0 {
                    break;
                }
            }
        }
        self.commit_unless_journaled();
    }

    /// Without journal commits, written data is durable at once.
    fn commit_unless_journaled(&mut self) {
        if self.config.profile.writeback.is_some_and(|w| w.metadata_commit_ms.is_none()) {
            let page = u64::from(self.config.profile.page_bytes);
            self.model.commit_written(page);
        }
    }

    /// Background writeback: whenever dirty data reaches the threshold, a chunk of the oldest is
    /// written now, and the rest `interval_ms` after the first chunk.
    fn background_writeback(&mut self) {
        let Some(w) = self.config.profile.writeback else { return };
        let Some(threshold) = self.background_bytes else { return };
        if self.model.dirty_bytes >= threshold {
            self.write_back_all(Some(w.chunk_bytes));
            self.rest_due.get_or_insert(self.now + Duration::from_millis(w.interval_ms));
        }
    }

    /// The existing entry `path` names (not following a symbolic link at its end).
    fn lookup(&self, path: &str) -> io::Result<Ino> {
        check_path(path)?;
        self.model
            .resolve(path, false)?
            .ino
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file")))
    }

    /// The directory `dir` names (`""`: the root), following symbolic links.
    fn lookup_dir(&self, dir: &str) -> io::Result<Ino> {
        check_dir(dir)?;
        let found = self.model.resolve(dir, true)?;
        match found.ino {
            None => {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("{dir}: no such directory")))
            }
            Some(ino) if *self.model.kind(ino) != Kind::Dir => {
                Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{dir}: not a directory")))
            }
            Some(ino) => Ok(ino),
        }
    }

    fn cost(&self, call: Call) -> Duration {
        let l = &self.config.latency;
        Latency::of(match call {
            Call::Read => l.read_ns,
            Call::Write => l.write_ns,
            Call::SyncData => l.sync_data_ns,
            Call::SyncAll => l.sync_all_ns,
            Call::SyncDir => l.sync_dir_ns,
            Call::Open
            | Call::Rename
            | Call::Remove
            | Call::List
            | Call::Len
            | Call::SetLen
            | Call::CreateDir
            | Call::RemoveDir
            | Call::Link
            | Call::Symlink
            | Call::ReadLink
            | Call::DropCache => l.metadata_ns,
        })
    }

    /// Number the operation, capture or cut the power, charge its time, run `body`, trace it.
    /// `body` returns the value and the count the trace shows.
    fn run<T>(
        &mut self,
        call: Call,
        file: Option<Rc<str>>,
        op: Op,
        (offset, len): (u64, u64),
        body: impl FnOnce(&mut Inner, u64) -> io::Result<(T, u64)>,
    ) -> io::Result<T> {
        if let Some(k) = self.dead_at {
            return Err(io::Error::other(PowerLost { op: k }));
        }
        self.ops += 1;
        let n = self.ops;
        let cut = self.cut_at == Some(n);
        let policy = self.capture_policy.as_mut().map_or(Capture::Skip, |p| p(n, call));
        if cut || self.capture_at.remove(&n) || policy != Capture::Skip {
            let point =
                CrashPoint::new(n, self.now, self.config.clone(), self.model.clone(), Some(op));
            if policy == Capture::Replace && !cut {
                self.captured.pop();
            }
            self.captured.push(point);
        }
        let mut entry =
            TraceEntry { op: n, at: self.now, call, file, offset, len, outcome: Outcome::Ok(0) };
        if cut {
            self.dead_at = Some(n);
            entry.outcome = Outcome::PowerCut;
            self.trace.push(entry);
            return Err(io::Error::other(PowerLost { op: n }));
        }
        let t = self.now + self.cost(call);
        self.advance_to(t);
        entry.at = self.now;
        let fired_before = self.fired.len();
        let read_only =
            self.shut_down && (call.is_sync() || (call.mutates() && call != Call::Open));
        let result = if read_only {
            Err(erofs(entry.file.as_deref().unwrap_or(".")))
        } else {
            body(self, n)
        };
        if self.config.profile.sync_on_completion && call.mutates() && result.is_ok() {
            self.model.flush_all();
        }
        if call == Call::Write && result.is_ok() {
            self.background_writeback();
        }
        if self.tracing {
            entry.outcome = match &result {
                Ok((_, count)) => Outcome::Ok(*count),
                Err(e) => {
                    Outcome::Err { errno: errno_name(e), injected: self.fired.len() > fired_before }
                }
            };
            self.trace.push(entry);
        }
        result.map(|(value, _)| value)
    }

    /// Should an injected fault of kind `fault` fire at operation `n`?
    fn fault(&mut self, n: u64, fault: Fault) -> bool {
        let faults = &self.config.faults;
        let scheduled = faults.at_ops.get(&n) == Some(&fault);
        let rate = match fault {
            Fault::SyncEio => faults.sync_eio_rate,
            Fault::WriteEio => faults.write_eio_rate,
            Fault::WritebackEio | Fault::CommitEio => return self.deferred_fault(fault),
            Fault::MisdirectedWrite => faults.misdirect_rate,
            Fault::LostFlush => faults.lost_flush_rate,
            Fault::ReadEio => faults.read_eio_rate,
            Fault::ReadCorrupt => faults.read_corrupt_rate,
            Fault::LatentOnRead => faults.latent_on_read_rate,
        };
        let random = rate > 0.0 && self.rng.random_bool(rate.min(1.0));
        if scheduled || random {
            self.fired.push((n, fault));
        }
        scheduled || random
    }

    /// Should a writeback or commit fault fire now? A scheduled one fires once, at the first
    /// writeback or commit at or after its operation; it is recorded at the operation running
    /// now, where a schedule replaying it fires it again.
    fn deferred_fault(&mut self, fault: Fault) -> bool {
        let n = self.ops;
        let faults = &self.config.faults;
        let due = faults
            .at_ops
            .range(..=n)
            .find(|(op, f)| **f == fault && !self.spent.contains(op))
            .map(|(op, _)| *op);
        let rate = if fault == Fault::CommitEio {
            faults.commit_eio_rate
        } else {
            faults.writeback_eio_rate
        };
        let random = rate > 0.0 && self.rng.random_bool(rate.min(1.0));
        if let Some(op) = due {
            self.spent.insert(op);
        }
        if due.is_some() || random {
            self.fired.push((n, fault));
        }
        due.is_some() || random
    }

    /// A journal commit: what writeback wrote and the pending directory operations become
    /// durable — unless an injected fault fails it, which shuts the filesystem down.
    fn commit(&mut self) -> bool {
        if self.shut_down {
            return false;
        }
        if self.deferred_fault(Fault::CommitEio) {
            self.shut_down = true;
            self.model.shut_down();
            return false;
        }
        self.model.commit_written(u64::from(self.config.profile.page_bytes));
        self.model.commit_dir();
        true
    }

    /// Writeback of `ino` (up to `budget` bytes), failing it if a fault says so. Returns the
    /// bytes written.
    fn write_back_inode(&mut self, ino: Ino, budget: Option<u64>) -> u64 {
        let page = u64::from(self.config.profile.page_bytes);
        let before = self.model.inode(ino).written;
        let done = self.model.write_back(ino, budget, page);
        if self.model.inode(ino).written > before && self.deferred_fault(Fault::WritebackEio) {
            match self.config.faults.eio_semantics {
                EioSemantics::Linux => self.model.fail_written(ino, before),
                EioSemantics::BtrfsRevert => {
                    self.model.revert(ino);
                    self.model.record_error(ino);
                }
                EioSemantics::Sticky => {
                    // The pages stay dirty, unwritten; every later sync fails.
                    let inode = self.model.inode_mut(ino);
                    inode.written = before;
                    inode.sticky_eio = true;
                    inode.unwritten_bytes += done;
                    self.model.dirty_bytes += done;
                    self.model.record_error(ino);
                }
            }
        }
        done
    }

    /// Make `ino` durable (fsync if `metadata`, else fdatasync), or fail it with EIO.
    /// `seen` is the descriptor's errseq cursor: an error recorded on the file since it last
    /// looked is reported once, after the data is written.
    fn sync_file(
        &mut self,
        n: u64,
        ino: Ino,
        metadata: bool,
        name: &str,
        seen: &Cell<u32>,
    ) -> io::Result<()> {
        let what = if metadata { "fsync" } else { "fdatasync" };
        if self.model.inode(ino).sticky_eio {
            return Err(eio(name, what));
        }
        if self.fault(n, Fault::SyncEio) {
            match self.config.faults.eio_semantics {
                EioSemantics::Linux => {
                    // Some pages may have reached the disk before the error. Drawn from the
                    // operation, not the stream, so a schedule replaying the fault draws it too.
                    let pending = self.model.inode(ino).pending.len();
                    let persisted = if self.config.faults.eio_persists_nothing {
                        0
                    } else {
                        self.op_rng(n, 1).random_range(0..=pending)
                    };
                    self.model.drop_pending(ino, persisted);
                }
                EioSemantics::BtrfsRevert => self.model.revert(ino),
                EioSemantics::Sticky => self.model.inode_mut(ino).sticky_eio = true,
            }
            self.model.record_error(ino);
            return Err(self.report_error(ino, seen, name, what));
        }
        // A journal commit is needed for the mtime (fsync), a size change, or a new entry.
        let needs_commit = self.config.profile.fsync_commits_journal
            && (metadata || {
                let inode = self.model.inode(ino);
                let grows = inode.pending.iter().any(|p| match &p.op {
                    DataOp::Write { offset, data, len_before } => {
                        offset + data.len() as u64 > *len_before
                    }
                    DataOp::SetLen { .. } => true,
                });
                grows || self.model.pending_dir.iter().any(|p| p.op.ino() == ino)
            });
        let writes = self.model.inode(ino).pending_writes().count();
        if writes > 0 && self.fault(n, Fault::LostFlush) {
            // Acknowledged, and still only in the device's volatile cache: nothing is durable.
            let lost: Vec<(u64, Vec<u8>)> =
                self.model.inode(ino).pending_writes().map(|(_, o, d)| (o, d.to_vec())).collect();
            for (offset, bytes) in lost {
                self.record_damage(n, Fault::LostFlush, name, offset, bytes);
            }
            return Ok(());
        }
        if writes > 0 && self.fault(n, Fault::MisdirectedWrite) {
            let mut rng = self.op_rng(n, 2);
            let chosen = rng.random_range(0..writes);
            let (index, offset, bytes) = (self.model.inode(ino).pending_writes())
                .nth(chosen)
                .map(|(i, o, d)| (i, o, d.to_vec()))
                .expect("a write was chosen");
            let page = u64::from(self.config.profile.page_bytes);
            let pages = rng.random_range(1..=4u64) * page;
            let target = if rng.random_bool(0.5) || offset < pages {
                offset + pages
            } else {
                offset - pages
            };
            self.record_damage(n, Fault::MisdirectedWrite, name, offset, bytes);
            let overwritten = self.model.flush_misdirected(ino, index, target);
            self.record_damage(n, Fault::MisdirectedWrite, name, target, overwritten);
        } else {
            self.model.flush_inode(ino, metadata);
        }
        let profile = &self.config.profile;
        if needs_commit {
            if !self.commit() {
                return Err(eio(name, &format!("{what}: the journal commit failed")));
            }
        } else if profile.file_sync_persists_entry {
            let ordered = profile.dir_ops == crate::profile::DirOps::Ordered;
            self.model.commit_dir_for(ino, ordered);
        }
        if self.model.inode(ino).err_seq > seen.get() {
            return Err(self.report_error(
                ino,
                seen,
                name,
                &format!("{what} (an earlier writeback)"),
            ));
        }
        Ok(())
    }

    /// A generator for choices a fault at operation `n` makes, independent of the fault stream.
    fn op_rng(&self, n: u64, salt: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(crate::crash::mix(self.config.seed ^ salt, n))
    }

    fn record_damage(&mut self, op: u64, fault: Fault, file: &str, offset: u64, bytes: Vec<u8>) {
        let file = file.to_string();
        self.damage.push(DeviceDamage { op, fault, file, offset, bytes });
    }

    /// Device read faults at read operation `n` of `len` bytes at `offset` of `ino`: an error
    /// (transient, or a latent sector found now), or `Ok(Some(bit))`: flip that bit of what was read.
    fn read_faults(
        &mut self,
        n: u64,
        ino: Ino,
        name: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<Option<u64>> {
        if len == 0 {
            return Ok(None);
        }
        if self.fault(n, Fault::ReadEio) {
            return Err(eio(name, &format!("read at {offset} (transient)")));
        }
        if self.fault(n, Fault::LatentOnRead) {
            let page = u64::from(self.config.profile.page_bytes);
            let at = offset + self.op_rng(n, 3).random_range(0..len);
            let start = at / page * page;
            let inode = self.model.inode_mut(ino);
            inode.latent_sectors.insert(start);
            let mut bytes = vec![0u8; page as usize];
            let got = inode.durable.read(&mut bytes, start);
            bytes.truncate(got);
            self.record_damage(n, Fault::LatentOnRead, name, start, bytes);
            return Err(eio(name, &format!("latent sector error found reading at {at}")));
        }
        if self.fault(n, Fault::ReadCorrupt) {
            return Ok(Some(self.op_rng(n, 4).random_range(0..len * 8)));
        }
        Ok(None)
    }

    /// Report the file's latest error through a descriptor: it has seen it now, and so has
    /// someone.
    fn report_error(&mut self, ino: Ino, seen: &Cell<u32>, name: &str, what: &str) -> io::Error {
        let inode = self.model.inode_mut(ino);
        seen.set(inode.err_seq);
        inode.err_unseen = false;
        eio(name, what)
    }

    /// Bytes of a `len`-byte write at `offset` to `ino` that fit under the capacity.
    fn fits(&self, ino: Ino, offset: u64, len: u64) -> u64 {
        let Some(capacity) = self.config.faults.capacity_bytes else {
            return len;
        };
        let cur = self.model.inode(ino).cached.len();
        let growth = (offset + len).saturating_sub(cur);
        let free = capacity.saturating_sub(self.model.used_bytes());
        if growth <= free { len } else { len - (growth - free).min(len) }
    }
}

impl SimFs {
    /// One directory-entry operation: checked and applied by the model (which names the path in
    /// any error), numbered and traced as `call` on `shown`.
    fn entry_op(&self, call: Call, shown: Rc<str>, op: Op) -> io::Result<()> {
        self.inner.borrow_mut().run(call, Some(shown), op.clone(), (0, 0), |s, n| {
            let now = s.now;
            s.model.apply_unsynced(&op, n, now).map(|()| ((), 0))
        })
    }
}

impl Vfs for SimFs {
    type File = SimFile;

    fn open(&self, name: &str, options: OpenOptions) -> io::Result<SimFile> {
        let rc: Rc<str> = Rc::from(name);
        let create = options.create || options.create_new;
        let op = Op::Open { name: rc.clone(), create, truncate: options.truncate };
        let ino = self.inner.borrow_mut().run(
            Call::Open,
            Some(rc.clone()),
            op.clone(),
            (0, 0),
            |s, n| {
                s.model.check(&op)?;
                let exists = s.model.resolve(name, true)?.ino.is_some();
                if exists && options.create_new {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{name}: file exists"),
                    ));
                }
                if s.shut_down && (!exists || options.truncate) {
                    return Err(erofs(name));
                }
                let now = s.now;
                s.model.apply_unsynced(&op, n, now)?;
                let ino = s.model.lookup(name).expect("the file was just opened or created");
                let inode = s.model.inode_mut(ino);
                inode.open_handles += 1;
                // errseq_sample: an error no one has reported yet is reported here too.
                let seen = if inode.err_unseen { inode.err_seq - 1 } else { inode.err_seq };
                Ok(((ino, seen), 0))
            },
        )?;
        let (ino, seen) = ino;
        let seen = Cell::new(seen);
        Ok(SimFile { fs: self.clone(), ino, name: rc, sync: options.sync, seen })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let shown = Rc::from(format!("{from} -> {to}"));
        self.entry_op(Call::Rename, shown, Op::Rename { from: Rc::from(from), to: Rc::from(to) })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let rc: Rc<str> = Rc::from(name);
        self.entry_op(Call::Remove, rc.clone(), Op::Remove { name: rc })
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        let rc: Rc<str> = Rc::from(path);
        self.entry_op(Call::CreateDir, rc.clone(), Op::CreateDir { path: rc })
    }

    fn remove_dir(&self, path: &str) -> io::Result<()> {
        let rc: Rc<str> = Rc::from(path);
        self.entry_op(Call::RemoveDir, rc.clone(), Op::RemoveDir { path: rc })
    }

    fn read_dir(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        let file = (!dir.is_empty()).then(|| Rc::from(dir));
        self.inner.borrow_mut().run(Call::List, file, Op::NoEffect, (0, 0), |s, _| {
            let d = s.lookup_dir(dir)?;
            let entries: Vec<DirEntry> = names::children(&s.model.visible_dir, d)
                .map(|(name, ino)| {
                    let kind = match s.model.kind(ino) {
                        Kind::File => EntryKind::File,
                        Kind::Dir => EntryKind::Dir,
                        Kind::Symlink(_) => EntryKind::Symlink,
                    };
                    DirEntry { name: name.to_string(), kind }
                })
                .collect();
            let count = entries.len() as u64;
            Ok((entries, count))
        })
    }

    fn sync_dir_at(&self, dir: &str) -> io::Result<()> {
        let file = (!dir.is_empty()).then(|| Rc::from(dir));
        let shown = if dir.is_empty() { "." } else { dir };
        self.inner.borrow_mut().run(Call::SyncDir, file, Op::NoEffect, (0, 0), |s, n| {
            let d = s.lookup_dir(dir)?;
            if s.fault(n, Fault::SyncEio) {
                return Err(eio(shown, "fsync of the directory"));
            }
            // On a journaled filesystem a directory fsync is a journal commit.
            if s.config.profile.fsync_commits_journal {
                if !s.commit() {
                    return Err(eio(shown, "fsync of the directory: the journal commit failed"));
                }
            } else {
                let ordered = s.config.profile.dir_ops == crate::profile::DirOps::Ordered;
                s.model.commit_dir_at(d, ordered);
            }
            Ok(((), 0))
        })
    }

    fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        let shown = Rc::from(format!("{existing} -> {new}"));
        self.entry_op(Call::Link, shown, Op::Link { from: Rc::from(existing), to: Rc::from(new) })
    }

    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        let rc: Rc<str> = Rc::from(link);
        self.entry_op(Call::Symlink, rc.clone(), Op::Symlink { target: Rc::from(target), path: rc })
    }

    fn read_link(&self, link: &str) -> io::Result<String> {
        let rc: Rc<str> = Rc::from(link);
        self.inner.borrow_mut().run(Call::ReadLink, Some(rc), Op::NoEffect, (0, 0), |s, _| {
            let ino = s.lookup(link)?;
            match s.model.kind(ino) {
                Kind::Symlink(target) => Ok((target.to_string(), target.len() as u64)),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{link}: not a symbolic link"),
                )),
            }
        })
    }

    fn now(&self) -> Duration {
        self.inner.borrow().now
    }
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let (ino, name) = (self.ino, &self.name);
        let range = (offset, buf.len() as u64);
        self.fs.file_op(self, Call::Read, Op::NoEffect, range, |s, n| {
            let readable = s.model.inode(ino).cached.len().saturating_sub(offset);
            let flip = s.read_faults(n, ino, name, offset, readable.min(buf.len() as u64))?;
            let inode = s.model.inode(ino);
            let end = (offset + buf.len() as u64).min(inode.cached.len());
            let sector = u64::from(s.config.profile.page_bytes);
            if offset < end
                && inode.latent_sectors.range(offset / sector * sector..end).next().is_some()
            {
                return Err(eio(name, &format!("latent sector error reading at {offset}")));
            }
            let n = inode.cached.read(buf, offset);
            if let Some(bit) = flip {
                buf[(bit / 8) as usize] ^= 1 << (bit % 8);
            }
            Ok((n, n as u64))
        })
    }

    fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        let (ino, name) = (self.ino, &self.name);
        let len = self.fs.inner.borrow().model.inode(ino).cached.len();
        self.fs.file_op(self, Call::Read, Op::NoEffect, (0, len), |s, n| {
            let flip = s.read_faults(n, ino, name, 0, len)?;
            let inode = s.model.inode(ino);
            // As one `read_at` of the whole file: the first latent sector fails it.
            if inode.latent_sectors.first().is_some_and(|&at| at < len) {
                return Err(eio(name, "latent sector error reading at 0"));
            }
            let start = out.len();
            let n = inode.cached.extend_vec(out);
            if let Some(bit) = flip {
                out[start + (bit / 8) as usize] ^= 1 << (bit % 8);
            }
            Ok((n, n as u64))
        })
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let (ino, name, sync, seen) = (self.ino, &self.name, self.sync, &self.seen);
        let data: Rc<[u8]> = Rc::from(buf);
        let op = Op::Write { ino, offset, data: data.clone() };
        let call = Call::Write;
        self.fs.file_op(self, call, op, (offset, buf.len() as u64), |s, n| {
            if s.fault(n, Fault::WriteEio) {
                return Err(eio(name, &format!("write at {offset}")));
            }
            let fit = s.fits(ino, offset, buf.len() as u64);
            if fit == 0 && !buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("{name}: no space left on device (ENOSPC) writing at {offset}"),
                ));
            }
            let fit_usize = fit as usize;
            let data = if fit_usize < buf.len() { Rc::from(&buf[..fit_usize]) } else { data };
            let now = s.now;
            s.model.write(ino, offset, data, n, now);
            // A rewritten sector is remapped: its latent error is gone.
            let sector = u64::from(s.config.profile.page_bytes);
            let latent = &mut s.model.inode_mut(ino).latent_sectors;
            latent.retain(|&sec| sec + sector <= offset || sec >= offset + fit);
            match sync {
                SyncMode::None => {}
                SyncMode::OSync => s.sync_file(n, ino, true, name, seen)?,
                SyncMode::ODsync => s.sync_file(n, ino, false, name, seen)?,
            }
            Ok((fit_usize, fit))
        })
    }

    fn len(&self) -> io::Result<u64> {
        let ino = self.ino;
        self.fs.file_op(self, Call::Len, Op::NoEffect, (0, 0), |s, _| {
            let len = s.model.inode(ino).cached.len();
            Ok((len, len))
        })
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        let (ino, name) = (self.ino, &self.name);
        let op = Op::SetLen { ino, len: len_bytes };
        self.fs.file_op(self, Call::SetLen, op, (0, len_bytes), |s, n| {
            if s.fault(n, Fault::WriteEio) {
                return Err(eio(name, &format!("set_len to {len_bytes}")));
            }
            let cur = s.model.inode(ino).cached.len();
            if len_bytes > cur && s.fits(ino, cur, len_bytes - cur) < len_bytes - cur {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("{name}: no space left on device (ENOSPC) growing to {len_bytes}"),
                ));
            }
            let now = s.now;
            s.model.set_len(ino, len_bytes, n, now);
            Ok(((), len_bytes))
        })
    }

    fn sync_all(&self) -> io::Result<()> {
        let (ino, name, seen) = (self.ino, &self.name, &self.seen);
        self.fs.file_op(self, Call::SyncAll, Op::NoEffect, (0, 0), |s, n| {
            s.sync_file(n, ino, true, name, seen).map(|()| ((), 0))
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let (ino, name, seen) = (self.ino, &self.name, &self.seen);
        self.fs.file_op(self, Call::SyncData, Op::NoEffect, (0, 0), |s, n| {
            s.sync_file(n, ino, false, name, seen).map(|()| ((), 0))
        })
    }

    fn drop_cache(&self) -> io::Result<()> {
        let ino = self.ino;
        self.fs.file_op(self, Call::DropCache, Op::NoEffect, (0, 0), |s, _| {
            s.model.drop_clean_pages(ino);
            Ok(((), 0))
        })
    }
}

impl SimFs {
    pub(crate) fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.inner.borrow().model)
    }
}
