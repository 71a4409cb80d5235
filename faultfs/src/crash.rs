//! Crash states: what a power cut or a process crash at one operation leaves on the disk.
//!
//! A [`CrashPoint`] is the SimFs state just before operation k started, plus operation k itself (in
//! flight). Nothing is copied to take one: file images are copy-on-write pages shared with the run.
//!
//! **Power cut.** The operation in flight is applied to the page cache as if it had completed, then
//! the unsynced state is cut into *pieces*, and each piece is given a [`Fate`]:
//! - a data piece is the part of one unsynced write inside one page (`page_bytes`): lost, landed,
//!   or (with `torn_sectors`) torn — its first bytes new and the rest old, the tear on a sector
//!   boundary with `atomic_sector_writes` — or garbage (stale blocks of removed files, or random
//!   bytes with plausible lengths; the whole sector without `powersafe_overwrite`);
//! - a size piece (with `size_before_data`) is a growing write's new size alone, after its data
//!   in issue order: if it lands and the data does not, the tail reads as zeros or garbage;
//! - a metadata piece is one unsynced set_len: lost or landed;
//! - each unsynced directory operation: lost or landed (a rename is one piece: atomic).
//!
//! With `reorder` any combination of a file's pages may land; without, only a prefix of its pieces
//! (in issue order), of which the first piece not landed may be torn. With `page_snapshots` a
//! page's pieces land as the page was at one moment (a prefix of its writes), torn at one point
//! against an earlier moment. Journal rules bind pieces across files and directory operations
//! (`auto_da_alloc`, `journaled_truncate`): every state drawn, explored, decoded or given back is
//! made to obey them. Directory operations survive as a prefix (`ordered`) or any subset. The crash
//! image is the durable image plus the landed pieces, applied in issue order; it shares every
//! untouched page, and a reboot forgets the kernel's write errors.
//!
//! Crash states are chosen from a seed ([`CrashSpace::sample_shaped`]: a shape first — durable
//! image, clean prefix, size only, independent — then the pieces) or enumerated
//! ([`CrashSpace::explore`]): nothing landed, everything landed, the likely shapes, then every
//! combination nearest to "nothing unsynced landed" first (tears at every sector boundary), until
//! a budget of distinct states; states are deduplicated by a hash of the image (names and
//! contents), and the count of distinct states is reported.
//!
//! **Process crash** (kill -9). The page cache survives: every completed operation is visible, and
//! nothing that was unsynced becomes durable — a later power cut can still lose it. The operation in
//! flight is skipped, applied, or (a write) applied up to a page boundary.

use crate::blob::Blob;
use crate::model::{DataOp, DirOp, Ino, Model, Op, PendingDir, describe_dir_op};
use crate::names::{self, Kind};
use crate::profile::{DirOps, Profile, SizeBeforeData, TornSectors};
use crate::sim::{SimConfig, SimFs};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;
use xxhash_rust::xxh3::Xxh3;

/// The state just before an operation, with that operation in flight.
#[derive(Clone)]
pub struct CrashPoint {
    op: u64,
    at: Duration,
    config: Rc<SimConfig>,
    before: Model,
    in_flight: Option<Op>,
}

impl fmt::Debug for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CrashPoint(op {}, t={:?}, in flight: {:?})", self.op, self.at, self.in_flight)
    }
}

/// What a process crash did to the operation in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InFlight {
    /// It never happened.
    Skipped,
    /// It completed (in the page cache).
    Applied,
    /// A write reached the page cache up to `bytes` bytes.
    Partial { bytes: u64 },
}

pub(crate) fn mix(seed: u64, salt: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&salt.to_le_bytes(), seed)
}

impl CrashPoint {
    pub(crate) fn new(
        op: u64,
        at: Duration,
        config: Rc<SimConfig>,
        before: Model,
        in_flight: Option<Op>,
    ) -> CrashPoint {
        CrashPoint { op, at, config, before, in_flight }
    }

    /// The operation in flight (numbered from 1).
    pub fn op(&self) -> u64 {
        self.op
    }

    /// Virtual time of the crash.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// The profile in force.
    pub fn profile(&self) -> &Profile {
        &self.config.profile
    }

    /// The config a crash image runs with: same profile and latency, no faults, a derived seed.
    fn image_config(&self) -> Rc<SimConfig> {
        let mut c = SimConfig::clone(&self.config);
        c.faults = crate::fault::FaultPlan::none();
        c.seed = mix(self.config.seed, self.op);
        Rc::new(c)
    }

    /// The choices a power cut at this point has.
    pub fn power_cut_space(&self) -> CrashSpace {
        CrashSpace::new(self)
    }

    /// The image after a process crash, with the operation in flight treated as `fate`.
    pub fn process_crash(&self, fate: InFlight) -> SimFs {
        let mut model = self.before.clone();
        match (&self.in_flight, fate) {
            // An operation that would have failed left nothing.
            (Some(op), InFlight::Applied) => drop(model.apply_unsynced(op, self.op, self.at)),
            (Some(Op::Write { ino, offset, data }), InFlight::Partial { bytes }) => {
                let cut = (bytes as usize).min(data.len());
                let partial =
                    Op::Write { ino: *ino, offset: *offset, data: Rc::from(&data[..cut]) };
                drop(model.apply_unsynced(&partial, self.op, self.at));
            }
            _ => {}
        }
        for inode in &mut model.inodes {
            inode.open_handles = 0;
        }
        SimFs::from_model(self.image_config(), model, self.at)
    }

    /// Every distinct fate of the operation in flight under a process crash: skipped, applied, and
    /// for a write spanning sectors, each sector boundary inside it (at most 16).
    pub fn process_crash_fates(&self) -> Vec<InFlight> {
        let mut fates = vec![InFlight::Skipped];
        match &self.in_flight {
            Some(Op::NoEffect) | None => return fates,
            Some(Op::Write { offset, data, .. }) => {
                let sector = u64::from(self.config.profile.page_bytes);
                let end = offset + data.len() as u64;
                let mut b = (offset / sector + 1) * sector;
                while b < end && fates.len() <= 16 {
                    fates.push(InFlight::Partial { bytes: b - offset });
                    b += sector;
                }
            }
            Some(_) => {}
        }
        fates.push(InFlight::Applied);
        fates
    }

    /// One process-crash fate chosen from `rng`.
    pub fn sample_process_crash(&self, rng: &mut impl Rng) -> InFlight {
        let fates = self.process_crash_fates();
        fates[rng.random_range(0..fates.len())]
    }

    /// A short description of the operation in flight.
    pub fn describe_in_flight(&self) -> String {
        let name = |ino: &Ino| {
            self.before.name_of(*ino).map_or_else(|| format!("inode {ino}"), |n| n.to_string())
        };
        match &self.in_flight {
            None => "nothing in flight".into(),
            Some(Op::Open { name, create, truncate }) => {
                format!("open {name} (create: {create}, truncate: {truncate})")
            }
            Some(Op::Rename { from, to }) => format!("rename {from} -> {to}"),
            Some(Op::Remove { name }) => format!("remove {name}"),
            Some(Op::CreateDir { path }) => format!("mkdir {path}"),
            Some(Op::RemoveDir { path }) => format!("rmdir {path}"),
            Some(Op::Link { from, to }) => format!("link {from} -> {to}"),
            Some(Op::Symlink { target, path }) => format!("symlink {path} -> {target}"),
            Some(Op::Write { ino, offset, data }) => {
                format!("write {} @{offset}+{}", name(ino), data.len())
            }
            Some(Op::SetLen { ino, len }) => format!("set_len {} to {len}", name(ino)),
            Some(Op::NoEffect) => "a read or sync (no effect of its own)".into(),
        }
    }
}

/// The shape a sampled crash state was drawn as (see [`CrashSpace::sample_shaped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// Nothing unsynced landed (directory operations aside): the durable image alone.
    Durable,
    /// Each file a clean prefix of its unsynced pieces in issue order, perhaps torn at the end.
    Prefix,
    /// Each file a clean prefix, and every later size change landed without its data: a zero
    /// (or garbage) tail.
    SizeOnly,
    /// Each page (or piece) drawn on its own: holes.
    Independent,
}

impl Shape {
    /// Every shape, in the order reports list them.
    pub const ALL: [Shape; 4] =
        [Shape::Durable, Shape::Prefix, Shape::SizeOnly, Shape::Independent];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Durable => "durable",
            Shape::Prefix => "prefix",
            Shape::SizeOnly => "size_only",
            Shape::Independent => "independent",
        }
    }
}

/// The fate of one piece of unsynced state at a power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fate {
    Lost,
    /// Landed whole (a size piece: the tail reads as zeros).
    Landed,
    /// The first `new_bytes` bytes landed, the rest kept the old content.
    Torn {
        new_bytes: u32,
    },
    /// Garbage landed instead (a size piece: the tail reads as garbage).
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceKind {
    Data,
    Size,
    Meta,
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    /// Index into the inode's pending list.
    pending: usize,
    kind: PieceKind,
    /// Byte range of the file the piece covers (for a size piece: old end to new end).
    start: u64,
    end: u64,
}

#[derive(Clone, Debug)]
struct FilePieces {
    ino: Ino,
    /// Index of this file's first piece in the state's fate vector.
    first: usize,
    pieces: Vec<Piece>,
}

/// One power-cut crash state: a fate per piece (files in inode order) and per directory op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrashState {
    fates: Vec<Fate>,
    dir: Vec<bool>,
}

impl CrashState {
    /// Did a piece land torn or as garbage (debris a recovery has to step over)?
    pub fn has_debris(&self) -> bool {
        self.fates.iter().any(|f| matches!(f, Fate::Torn { .. } | Fate::Garbage))
    }

    /// Pieces that landed whole, torn or as garbage, and directory operations that landed.
    pub fn landed_counts(&self) -> (usize, usize) {
        (
            self.fates.iter().filter(|f| **f != Fate::Lost).count(),
            self.dir.iter().filter(|d| **d).count(),
        )
    }
}

/// How one dimension of the choice varies (see [`CrashSpace::explore`]).
#[derive(Clone, Debug)]
enum Dim {
    /// A file without reordering: value `v` lands the first `v` pieces; values past the plain
    /// prefixes land a prefix and give its boundary piece another fate (`alts`).
    FilePrefix {
        file: usize,
        alts: Vec<(usize, Fate)>,
    },
    /// One piece, with `values[0] == Lost`.
    Piece {
        index: usize,
        values: Vec<Fate>,
    },
    /// One page (with `page_snapshots` and `reorder`): value `v <= n` lands the page as it was
    /// after its first `v` writes; later values are `tears` — the page after its first `m`
    /// writes, torn at byte `b` of the file (new before it, durable after).
    Page {
        page: usize,
        tears: Vec<(usize, u64)>,
    },
    DirPrefix,
    DirOp {
        index: usize,
    },
}

/// A set_len piece and the pieces that land only if it does (by state index).
type TruncateRule = (usize, Vec<usize>);

/// Every choice a power cut at one crash point has.
pub struct CrashSpace {
    op: u64,
    at: Duration,
    config: Rc<SimConfig>,
    image_config: Rc<SimConfig>,
    /// The state with the in-flight operation completed in the page cache.
    after: Model,
    files: Vec<FilePieces>,
    dir: Vec<PendingDir>,
    piece_count: usize,
    /// With `page_snapshots`: each page's data pieces, by state index, in issue order.
    pages: Vec<Vec<usize>>,
    /// With `auto_da_alloc`: per directory operation, the pieces that land whenever it does.
    requires: Vec<Vec<usize>>,
    /// With `journaled_truncate`: each set_len piece and the pieces that land only if it does.
    truncates: Vec<TruncateRule>,
    /// With `auto_da_alloc`: each truncate to zero a close followed, and the pieces written
    /// between them, which land whenever it does.
    closes: Vec<TruncateRule>,
    /// Durable bytes of removed files (at most 64 KiB): the stale blocks garbage is drawn from.
    stale: Vec<u8>,
}

impl fmt::Debug for CrashSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CrashSpace(op {}, {} pieces in {} files, {} dir ops)",
            self.op,
            self.piece_count,
            self.files.len(),
            self.dir.len()
        )
    }
}

/// What [`CrashSpace::explore`] covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct crash images visited.
    pub distinct: u64,
    /// Candidate states generated (several can give the same image).
    pub candidates: u64,
    /// True when every combination was generated (the budget did not cut it short).
    pub complete: bool,
}

impl CrashSpace {
    fn new(point: &CrashPoint) -> CrashSpace {
        let mut after = point.before.clone();
        if let Some(op) = &point.in_flight {
            // An operation that would have failed left nothing.
            drop(after.apply_unsynced(op, point.op, point.at));
        }
        let profile = &point.config.profile;
        let sector = u64::from(profile.page_bytes);
        let size_pieces = profile.size_before_data != SizeBeforeData::Off;
        let mut files = Vec::new();
        let mut first = 0;
        for (ino, inode) in after.inodes.iter().enumerate() {
            if inode.pending.is_empty() {
                continue;
            }
            let mut pieces = Vec::new();
            for (i, p) in inode.pending.iter().enumerate() {
                match &p.op {
                    DataOp::SetLen { len } => {
                        pieces.push(Piece {
                            pending: i,
                            kind: PieceKind::Meta,
                            start: *len,
                            end: *len,
                        });
                    }
                    DataOp::Write { offset, data, len_before } => {
                        let end = offset + data.len() as u64;
                        let mut s = *offset;
                        // Bounded: `s` advances to the next sector boundary each step.
                        while s < end {
                            let e = ((s / sector + 1) * sector).min(end);
                            pieces.push(Piece {
                                pending: i,
                                kind: PieceKind::Data,
                                start: s,
                                end: e,
                            });
                            s = e;
                        }
                        // The size after the data: in issue order a journaled filesystem writes
                        // the data before it commits the size that covers it, so a prefix of the
                        // pieces never has a zero tail (the size-only shape draws those).
                        if size_pieces && end > *len_before {
                            let kind = PieceKind::Size;
                            pieces.push(Piece { pending: i, kind, start: *len_before, end });
                        }
                    }
                }
            }
            let ino = ino as Ino;
            let n = pieces.len();
            files.push(FilePieces { ino, first, pieces });
            first += n;
        }
        let dir = after.pending_dir.clone();
        let (pages, truncates) = Self::page_and_truncate_rules(profile, &files);
        let requires = Self::rename_rules(profile, &after, &files, &dir);
        let closes = Self::close_rules(profile, &after, &files);
        let mut stale = Vec::new();
        let named: BTreeSet<Ino> =
            after.durable_dir.values().chain(after.visible_dir.values()).copied().collect();
        for (ino, inode) in after.inodes.iter().enumerate() {
            if !named.contains(&(ino as Ino)) && stale.len() < 1 << 16 {
                let mut bytes = Vec::new();
                inode.durable.extend_vec(&mut bytes);
                // Whole blocks, each file from a block boundary: a block keeps its layout.
                let block = profile.page_bytes as usize;
                bytes.resize(bytes.len().div_ceil(block) * block, 0);
                bytes.truncate(((1 << 16) - stale.len()) / block * block);
                stale.extend_from_slice(&bytes);
            }
        }
        CrashSpace {
            op: point.op,
            at: point.at,
            config: point.config.clone(),
            image_config: point.image_config(),
            after,
            files,
            dir,
            piece_count: first,
            pages,
            requires,
            truncates,
            closes,
            stale,
        }
    }

    /// With `auto_da_alloc`: a truncate to zero that a close followed lands with every piece of
    /// the file issued between them (the close flushed them before the truncate could commit).
    fn close_rules(profile: &Profile, after: &Model, files: &[FilePieces]) -> Vec<TruncateRule> {
        let mut rules = Vec::new();
        if !profile.auto_da_alloc {
            return rules;
        }
        for f in files {
            let inode = after.inode(f.ino);
            let seq = |p: &Piece| inode.pending[p.pending].seq;
            for &(t, closed) in &inode.close_flushes {
                let Some(m) =
                    f.pieces.iter().position(|p| p.kind == PieceKind::Meta && seq(p) == t)
                else {
                    continue;
                };
                let between = f.pieces.iter().enumerate().filter(|(_, p)| {
                    let s = seq(p);
                    s > t && s <= closed
                });
                let deps: Vec<usize> = between.map(|(j, _)| f.first + j).collect();
                if !deps.is_empty() {
                    rules.push((f.first + m, deps));
                }
            }
        }
        rules
    }

    /// The pages (`page_snapshots`) and the truncate rules (`journaled_truncate`) of `files`.
    fn page_and_truncate_rules(
        profile: &Profile,
        files: &[FilePieces],
    ) -> (Vec<Vec<usize>>, Vec<TruncateRule>) {
        let page = u64::from(profile.page_bytes);
        let (mut pages, mut truncates) = (Vec::new(), Vec::new());
        for f in files {
            if profile.page_snapshots {
                let mut by_page: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
                for (i, p) in f.pieces.iter().enumerate() {
                    if p.kind == PieceKind::Data {
                        by_page.entry(p.start / page).or_default().push(f.first + i);
                    }
                }
                pages.extend(by_page.into_values());
            }
            if profile.journaled_truncate {
                for (i, p) in f.pieces.iter().enumerate().filter(|(_, p)| p.kind == PieceKind::Meta)
                {
                    // Blocks wholly past the new length are the ones a truncate frees; data
                    // written there afterwards goes to blocks the file has only once it commits.
                    let freed = p.start.div_ceil(page) * page;
                    let later = f.pieces.iter().enumerate().skip(i + 1);
                    let deps = later
                        .filter(|(_, q)| q.kind != PieceKind::Data || q.start >= freed)
                        .map(|(j, _)| f.first + j)
                        .collect();
                    truncates.push((f.first + i, deps));
                }
            }
        }
        (pages, truncates)
    }

    /// With `auto_da_alloc`, a rename over an existing name lands only with every piece of the
    /// renamed file issued before it.
    fn rename_rules(
        profile: &Profile,
        after: &Model,
        files: &[FilePieces],
        dir: &[PendingDir],
    ) -> Vec<Vec<usize>> {
        let mut requires = vec![Vec::new(); dir.len()];
        if !profile.auto_da_alloc {
            return requires;
        }
        // The names as each operation saw them: the durable entries plus the earlier pending ones.
        let mut entries = after.durable_dir.clone();
        for (k, p) in dir.iter().enumerate() {
            if let DirOp::Rename { to, ino, .. } = &p.op {
                let replaces = entries.get(to).is_some_and(|other| other != ino);
                if let Some(f) = files.iter().find(|f| f.ino == *ino).filter(|_| replaces) {
                    let pending = &after.inode(*ino).pending;
                    requires[k] = (0..f.pieces.len())
                        .filter(|&j| pending[f.pieces[j].pending].seq < p.seq)
                        .map(|j| f.first + j)
                        .collect();
                }
            }
            p.op.apply(&mut entries);
        }
        requires
    }

    /// The piece at state index `i`.
    fn piece_at(&self, i: usize) -> &Piece {
        let f = self.files.partition_point(|f| f.first + f.pieces.len() <= i);
        &self.files[f].pieces[i - self.files[f].first]
    }

    fn has_rules(&self) -> bool {
        !self.truncates.is_empty()
            || !self.closes.is_empty()
            || self.requires.iter().any(|r| !r.is_empty())
    }

    /// Make `state` obey the profile's journal rules: a rename that landed brings the pieces
    /// `auto_da_alloc` flushes before it; a truncate that was lost takes the pieces that depend on
    /// it. A page the rules broke falls back to its leading landed writes.
    fn constrain(&self, state: &mut CrashState) {
        let mut changed = false;
        for (k, req) in self.requires.iter().enumerate() {
            if state.dir[k] {
                for &i in req {
                    let land = self.landing(self.piece_at(i))[0];
                    changed |= std::mem::replace(&mut state.fates[i], land) != land;
                }
            }
        }
        for (m, deps) in &self.closes {
            if state.fates[*m] != Fate::Lost {
                for &i in deps {
                    let land = self.landing(self.piece_at(i))[0];
                    changed |= std::mem::replace(&mut state.fates[i], land) != land;
                }
            }
        }
        for (m, deps) in &self.truncates {
            if state.fates[*m] == Fate::Lost {
                for &j in deps {
                    changed |= std::mem::replace(&mut state.fates[j], Fate::Lost) != Fate::Lost;
                }
            }
        }
        if changed {
            for page in &self.pages {
                if !self.page_valid(page, &state.fates) {
                    let lead = page.iter().take_while(|&&i| state.fates[i] == Fate::Landed).count();
                    for &i in &page[lead..] {
                        state.fates[i] = Fate::Lost;
                    }
                }
            }
        }
    }

    /// Land the page writes before a landed one and the truncates a landed piece depends on, so
    /// that pieces given back stay landed once `constrain` runs.
    fn raise(&self, state: &mut CrashState) {
        for page in &self.pages {
            if !self.page_valid(page, &state.fates) {
                let last = page.iter().rposition(|&i| state.fates[i] != Fate::Lost);
                for &i in &page[..last.map_or(0, |k| k + 1)] {
                    state.fates[i] = Fate::Landed;
                }
            }
        }
        for (m, deps) in self.truncates.iter().rev() {
            if state.fates[*m] == Fate::Lost && deps.iter().any(|&j| state.fates[j] != Fate::Lost) {
                state.fates[*m] = Fate::Landed;
            }
        }
    }

    /// The fates of `page` landed as it was after its first `m2` writes, of which those after
    /// the first `m1` are torn at byte `b` of the file (new before it, as after `m1` writes past it).
    fn set_page(&self, page: &[usize], m1: usize, m2: usize, b: Option<u64>, fates: &mut [Fate]) {
        for (k, &i) in page.iter().enumerate() {
            let p = self.piece_at(i);
            fates[i] = match b {
                _ if k < m1 => Fate::Landed,
                _ if k >= m2 => Fate::Lost,
                None => Fate::Landed,
                Some(b) if p.end <= b => Fate::Landed,
                Some(b) if p.start >= b => Fate::Lost,
                Some(b) => Fate::Torn { new_bytes: (b - p.start) as u32 },
            };
        }
    }

    /// Is `page` landed as the page cache held it at one moment, perhaps torn at one point (a
    /// sector boundary with `atomic_sector_writes`) against an earlier moment?
    fn page_valid(&self, page: &[usize], fates: &[Fate]) -> bool {
        let landed = |f: Fate| matches!(f, Fate::Landed | Fate::Garbage);
        let m2 = page.iter().rposition(|&i| fates[i] != Fate::Lost).map_or(0, |k| k + 1);
        let m1 = page.iter().take_while(|&&i| landed(fates[i])).count().min(m2);
        if m1 == m2 {
            return true;
        }
        let atomic = self.profile().atomic_sector_writes;
        let sector = u64::from(self.profile().sector_bytes);
        let mut points = BTreeSet::new();
        for &i in &page[m1..m2] {
            let p = self.piece_at(i);
            match fates[i] {
                Fate::Torn { new_bytes } => points.insert(p.start + u64::from(new_bytes)),
                _ => points.insert(p.end),
            };
            if atomic {
                points.extend(sector_boundaries(p.start, p.end + 1, sector));
            }
        }
        let mut expect = vec![Fate::Lost; fates.len().min(page.iter().max().map_or(0, |m| m + 1))];
        points.into_iter().filter(|b| !atomic || b % sector == 0).any(|b| {
            self.set_page(page, m1, m2, Some(b), &mut expect);
            page.iter().all(|&i| match fates[i] {
                Fate::Garbage => expect[i] != Fate::Lost,
                f => f == expect[i],
            })
        })
    }

    /// Where a piece may tear, as new bytes from its start, in exhaustive mode: every sector
    /// boundary inside it with `atomic_sector_writes`, else its midpoint.
    fn tear_points(&self, piece: &Piece) -> Vec<u32> {
        let len = piece.end - piece.start;
        if piece.kind != PieceKind::Data || self.profile().torn_sectors == TornSectors::None {
            return Vec::new();
        }
        if self.profile().atomic_sector_writes {
            let sector = u64::from(self.profile().sector_bytes);
            sector_boundaries(piece.start + 1, piece.end, sector)
                .map(|b| (b - piece.start) as u32)
                .collect()
        } else if len > 1 {
            vec![(len / 2).clamp(1, len - 1) as u32]
        } else {
            Vec::new()
        }
    }

    fn profile(&self) -> &Profile {
        &self.config.profile
    }

    /// Number of unsynced data pieces.
    pub fn piece_count(&self) -> usize {
        self.piece_count
    }

    /// Number of unsynced directory operations.
    pub fn dir_op_count(&self) -> usize {
        self.dir.len()
    }

    /// The state where nothing unsynced survives: the durable image alone.
    pub fn nothing_landed(&self) -> CrashState {
        CrashState { fates: vec![Fate::Lost; self.piece_count], dir: vec![false; self.dir.len()] }
    }

    /// The state where everything unsynced landed: the page cache made durable.
    pub fn everything_landed(&self) -> CrashState {
        let mut fates = Vec::with_capacity(self.piece_count);
        for f in &self.files {
            fates.extend(f.pieces.iter().map(|p| self.landing(p)[0]));
        }
        CrashState { fates, dir: vec![true; self.dir.len()] }
    }

    /// The fates that count as landing for a piece, first the plain one.
    fn landing(&self, piece: &Piece) -> &'static [Fate] {
        match (piece.kind, self.profile().size_before_data) {
            (PieceKind::Size, SizeBeforeData::Garbage) => &[Fate::Garbage],
            (PieceKind::Size, SizeBeforeData::ZerosOrGarbage) => &[Fate::Landed, Fate::Garbage],
            _ => &[Fate::Landed],
        }
    }

    /// The torn fates exhaustive mode gives a piece: a tear at each of its tear points, then
    /// garbage (`split_or_garbage`).
    fn torn_fates(&self, piece: &Piece) -> Vec<Fate> {
        let mut out: Vec<Fate> =
            self.tear_points(piece).into_iter().map(|new_bytes| Fate::Torn { new_bytes }).collect();
        if piece.kind == PieceKind::Data
            && self.profile().torn_sectors == TornSectors::SplitOrGarbage
        {
            out.push(Fate::Garbage);
        }
        out
    }

    /// A torn fate drawn from `rng` for a piece: a tear anywhere inside it (at a sector boundary
    /// with `atomic_sector_writes`) or garbage; `None` if it cannot tear.
    fn random_torn(&self, rng: &mut dyn RngCore, piece: &Piece) -> Option<Fate> {
        if piece.kind != PieceKind::Data {
            return None;
        }
        let mut torn = Vec::new();
        if self.profile().atomic_sector_writes {
            let points = self.tear_points(piece);
            if !points.is_empty() {
                torn.push(Fate::Torn { new_bytes: points[rng.random_range(0..points.len())] });
            }
        } else {
            let len = (piece.end - piece.start) as u32;
            let split = if len > 1 { rng.random_range(1..len) } else { 1 };
            if len > 1 && self.profile().torn_sectors != TornSectors::None {
                torn.push(Fate::Torn { new_bytes: split.clamp(1, len - 1) });
            }
        }
        if self.profile().torn_sectors == TornSectors::SplitOrGarbage {
            torn.push(Fate::Garbage);
        }
        (!torn.is_empty()).then(|| torn[rng.random_range(0..torn.len())])
    }

    /// A page's fates drawn from `rng`: whole with probability `p_land`, else one time in four a
    /// random number of its writes; then one time in four torn against an earlier moment.
    fn sample_page(&self, page: &[usize], p_land: f64, rng: &mut dyn RngCore, fates: &mut [Fate]) {
        let n = page.len();
        let m2 = if rng.random_bool(p_land) {
            n
        } else if rng.random_ratio(1, 4) {
            rng.random_range(1..=n)
        } else {
            0
        };
        let profile = self.profile();
        let (mut m1, mut b) = (m2, None);
        if m2 > 0 && profile.torn_sectors != TornSectors::None && rng.random_ratio(1, 4) {
            m1 = rng.random_range(0..m2);
            let span = page[m1..m2].iter().map(|&i| self.piece_at(i));
            let lo = span.clone().map(|p| p.start).min().unwrap_or(0);
            let hi = span.map(|p| p.end).max().unwrap_or(0);
            b = if profile.atomic_sector_writes {
                let sector = u64::from(profile.sector_bytes);
                let points: Vec<u64> = sector_boundaries(lo + 1, hi, sector).collect();
                (!points.is_empty()).then(|| points[rng.random_range(0..points.len())])
            } else {
                (hi - lo > 1).then(|| rng.random_range(lo + 1..hi))
            };
            if b.is_none() {
                m1 = m2;
            }
        }
        self.set_page(page, m1, m2, b, fates);
        if b.is_none()
            && m2 > 0
            && profile.torn_sectors == TornSectors::SplitOrGarbage
            && rng.random_ratio(1, 8)
        {
            fates[page[rng.random_range(0..m2)]] = Fate::Garbage;
        }
    }

    /// One crash state drawn from `rng` (see [`CrashSpace::sample_shaped`]).
    pub fn sample(&self, rng: &mut impl Rng) -> CrashState {
        self.sample_shaped(rng).0
    }

    /// One crash state drawn from `rng`, and the shape it was drawn as. The shape is drawn first,
    /// weighted toward what real crashes leave: on a profile with a writeback model (a journaled
    /// page-cache filesystem, whose writeback and commits go in order) 2/8 durable image, 4/8
    /// clean prefix, 1/8 size only, 1/8 independent; otherwise 1/8, 3/8, 1/8, 3/8. Without
    /// `reorder`, an independent draw is a prefix. Then a landing probability for this crash,
    /// the pieces per the shape, and the directory operations (a prefix, or any subset).
    pub fn sample_shaped(&self, rng: &mut impl Rng) -> (CrashState, Shape) {
        let weights: [u32; 4] =
            if self.profile().writeback.is_some() { [2, 4, 1, 1] } else { [1, 3, 1, 3] };
        let mut draw = rng.random_range(0..weights.iter().sum::<u32>());
        let mut shape = Shape::ALL[3];
        for (s, w) in Shape::ALL.into_iter().zip(weights) {
            if draw < w {
                shape = s;
                break;
            }
            draw -= w;
        }
        if shape == Shape::Independent && !self.profile().reorder {
            shape = Shape::Prefix;
        }
        let p_land: f64 = rng.random();
        let mut state = self.nothing_landed();
        match shape {
            Shape::Durable => {}
            Shape::Prefix | Shape::SizeOnly => {
                for f in &self.files {
                    let fates = &mut state.fates[f.first..f.first + f.pieces.len()];
                    let n = f.pieces.len();
                    let c = rng.random_range(0..=n);
                    for (fate, piece) in fates.iter_mut().zip(&f.pieces).take(c) {
                        *fate = self.landing(piece)[0];
                    }
                    if c < n && rng.random_bool(0.5) {
                        fates[c] = self.random_torn(rng, &f.pieces[c]).unwrap_or(Fate::Lost);
                    }
                    if shape == Shape::SizeOnly {
                        // One kind of tail per file: zeros or garbage, not a patchwork.
                        let kind = rng.random_range(0..2usize);
                        for (fate, piece) in fates.iter_mut().zip(&f.pieces).skip(c) {
                            if piece.kind == PieceKind::Size {
                                let land = self.landing(piece);
                                *fate = land[kind.min(land.len() - 1)];
                            }
                        }
                    }
                }
            }
            Shape::Independent => {
                let by_page = !self.pages.is_empty();
                for f in &self.files {
                    let fates = &mut state.fates[f.first..f.first + f.pieces.len()];
                    for (fate, piece) in fates.iter_mut().zip(&f.pieces) {
                        if by_page && piece.kind == PieceKind::Data {
                            continue;
                        }
                        let land = self.landing(piece);
                        if rng.random_bool(p_land) {
                            *fate = land[rng.random_range(0..land.len())];
                        } else if rng.random_ratio(1, 4) {
                            *fate = self.random_torn(rng, piece).unwrap_or(Fate::Lost);
                        }
                    }
                }
                for page in self.pages.iter().filter(|_| by_page) {
                    self.sample_page(page, p_land, rng, &mut state.fates);
                }
            }
        }
        match self.profile().dir_ops {
            // The durable image with every directory operation landed half the time: ALICE's
            // commonest vulnerability (names committed, no data).
            DirOps::Ordered if shape == Shape::Durable && rng.random_bool(0.5) => {
                state.dir.fill(true);
            }
            DirOps::Ordered => {
                let c = rng.random_range(0..=self.dir.len());
                state.dir[..c].fill(true);
            }
            DirOps::AnySubset => {
                for landed in &mut state.dir {
                    *landed = rng.random_bool(p_land);
                }
            }
        }
        self.constrain(&mut state);
        (state, shape)
    }

    /// The likely shapes [`CrashSpace::explore`] visits right after its two anchors, each a state
    /// the profile allows (a prefix is a subset, so it is allowed with or without `reorder`).
    fn likely_states(&self) -> Vec<CrashState> {
        let mut base = self.nothing_landed();
        base.dir.fill(true);
        let mut out = Vec::new();
        if !self.dir.is_empty() {
            out.push(base.clone());
        }
        for f in &self.files {
            let n = f.pieces.len();
            for c in 1..n {
                let mut state = base.clone();
                for (i, piece) in f.pieces.iter().enumerate().take(c) {
                    state.fates[f.first + i] = self.landing(piece)[0];
                }
                out.push(state);
            }
            let sizes: Vec<usize> =
                (0..n).filter(|&i| f.pieces[i].kind == PieceKind::Size).collect();
            if !sizes.is_empty() {
                let mut state = base.clone();
                for i in sizes {
                    state.fates[f.first + i] = self.landing(&f.pieces[i])[0];
                }
                out.push(state);
            }
        }
        out
    }

    fn dims(&self) -> Vec<Dim> {
        let mut dims = Vec::new();
        let by_page = self.profile().reorder && !self.pages.is_empty();
        for (fi, f) in self.files.iter().enumerate() {
            if self.profile().reorder {
                for (i, piece) in f.pieces.iter().enumerate() {
                    if by_page && piece.kind == PieceKind::Data {
                        continue;
                    }
                    let mut values = vec![Fate::Lost];
                    values.extend_from_slice(self.landing(piece));
                    values.extend(self.torn_fates(piece));
                    dims.push(Dim::Piece { index: f.first + i, values });
                }
            } else {
                let mut alts = Vec::new();
                for (c, piece) in f.pieces.iter().enumerate() {
                    for fate in self.landing(piece)[1..].iter().copied() {
                        alts.push((c, fate));
                    }
                    for fate in self.torn_fates(piece) {
                        alts.push((c, fate));
                    }
                }
                dims.push(Dim::FilePrefix { file: fi, alts });
            }
        }
        if by_page {
            for (pi, page) in self.pages.iter().enumerate() {
                let mut tears = Vec::new();
                for m2 in 1..=page.len() {
                    let p = self.piece_at(page[m2 - 1]);
                    let points = self.tear_points(p).into_iter();
                    tears.extend(points.map(|nb| (m2, p.start + u64::from(nb))));
                }
                dims.push(Dim::Page { page: pi, tears });
            }
        }
        match self.profile().dir_ops {
            DirOps::Ordered if !self.dir.is_empty() => dims.push(Dim::DirPrefix),
            DirOps::Ordered => {}
            DirOps::AnySubset => dims.extend((0..self.dir.len()).map(|index| Dim::DirOp { index })),
        }
        dims
    }

    fn radix(&self, dim: &Dim) -> usize {
        match dim {
            Dim::FilePrefix { file, alts } => self.files[*file].pieces.len() + 1 + alts.len(),
            Dim::Piece { values, .. } => values.len(),
            Dim::Page { page, tears } => self.pages[*page].len() + 1 + tears.len(),
            Dim::DirPrefix => self.dir.len() + 1,
            Dim::DirOp { .. } => 2,
        }
    }

    fn set(&self, state: &mut CrashState, dim: &Dim, value: usize) {
        match dim {
            Dim::FilePrefix { file, alts } => {
                let f = &self.files[*file];
                let n = f.pieces.len();
                let (landed, boundary) = if value <= n {
                    (value, None)
                } else {
                    (alts[value - n - 1].0, Some(alts[value - n - 1].1))
                };
                let fates = &mut state.fates[f.first..f.first + n];
                for (i, fate) in fates.iter_mut().enumerate() {
                    *fate = if i < landed { self.landing(&f.pieces[i])[0] } else { Fate::Lost };
                }
                if let Some(b) = boundary {
                    fates[landed] = b;
                }
            }
            Dim::Piece { index, values } => state.fates[*index] = values[value],
            Dim::Page { page, tears } => {
                let page = &self.pages[*page];
                match value.checked_sub(page.len() + 1) {
                    None => self.set_page(page, value, value, None, &mut state.fates),
                    Some(t) => {
                        let (m2, b) = tears[t];
                        self.set_page(page, 0, m2, Some(b), &mut state.fates);
                    }
                }
            }
            Dim::DirPrefix => {
                for (i, d) in state.dir.iter_mut().enumerate() {
                    *d = i < value;
                }
            }
            Dim::DirOp { index } => state.dir[*index] = value == 1,
        }
    }

    /// Visit distinct crash states until `budget` distinct images have been seen: first nothing
    /// landed, then everything, then every combination in order of how many dimensions differ
    /// from "nothing landed". `visit` gets each distinct state and its image. Candidates are capped
    /// at 16 × `budget` so that a space full of duplicates still ends.
    pub fn explore(&self, budget: u64, mut visit: impl FnMut(&CrashState, SimFs)) -> Coverage {
        self.explore_hashed(budget, |state, image, _| visit(state, image))
    }

    /// [`CrashSpace::explore`], handing `visit` each image's [`image_hash`] too (computed anyway
    /// to tell distinct images apart; a caller that counts distinct images across crash points
    /// need not hash again).
    pub fn explore_hashed(
        &self,
        budget: u64,
        mut visit: impl FnMut(&CrashState, SimFs, u64),
    ) -> Coverage {
        let dims = self.dims();
        let radix: Vec<usize> = dims.iter().map(|d| self.radix(d)).collect();
        let total = radix.iter().fold(1u128, |acc, r| acc.saturating_mul(*r as u128));
        let max_candidates = budget.saturating_mul(16);
        let mut seen = BTreeSet::new();
        let mut candidates = 0u64;
        let rules = self.has_rules();
        let mut try_state = |state: &CrashState, candidates: &mut u64| -> bool {
            *candidates += 1;
            let mut state = Cow::Borrowed(state);
            if rules {
                self.constrain(state.to_mut());
            }
            let image = self.materialize(&state);
            let hash = image_hash(&image);
            if seen.insert(hash) {
                visit(&state, image, hash);
            }
            (seen.len() as u64) < budget && *candidates < max_candidates
        };
        if budget == 0 {
            return Coverage { distinct: 0, candidates: 0, complete: total == 0 };
        }
        let everything = self.everything_landed();
        let mut going = try_state(&self.nothing_landed(), &mut candidates)
            && try_state(&everything, &mut candidates);
        // Then the shapes real crashes leave most, which a search by how many dimensions differ
        // reaches late or never: each file a clean prefix of its unsynced pieces, and each file's
        // size changes landed without its data (a zero tail), with every directory operation
        // landed (a journal commit) — and the directory operations alone (every unsynced byte
        // lost: ALICE's commonest vulnerability).
        for state in self.likely_states() {
            if !going {
                break;
            }
            if state != everything {
                going = try_state(&state, &mut candidates);
            }
        }
        let mut generated: u128 = 1;
        let mut chosen: Vec<usize> = Vec::new();
        'weights: for weight in 1..=dims.len() {
            if !going {
                break;
            }
            // Combinations of `weight` dimensions, in lexicographic order.
            chosen.clear();
            chosen.extend(0..weight);
            loop {
                // Every non-default value of the chosen dimensions (a mixed-radix counter from 1).
                let mut values = vec![1usize; weight];
                loop {
                    let mut state = self.nothing_landed();
                    for (slot, &d) in chosen.iter().enumerate() {
                        self.set(&mut state, &dims[d], values[slot]);
                    }
                    generated += 1;
                    // The "everything landed" anchor was visited first.
                    if state != everything && !try_state(&state, &mut candidates) {
                        break 'weights;
                    }
                    let mut slot = 0;
                    while slot < weight {
                        values[slot] += 1;
                        if values[slot] < radix[chosen[slot]] {
                            break;
                        }
                        values[slot] = 1;
                        slot += 1;
                    }
                    if slot == weight {
                        break;
                    }
                }
                // Next combination.
                let mut i = weight;
                while i > 0 && chosen[i - 1] == dims.len() - weight + i - 1 {
                    i -= 1;
                }
                if i == 0 {
                    break;
                }
                chosen[i - 1] += 1;
                for j in i..weight {
                    chosen[j] = chosen[j - 1] + 1;
                }
            }
        }
        Coverage { distinct: seen.len() as u64, candidates, complete: generated >= total }
    }

    /// The crash image for `state`: a new SimFs holding the durable image plus the landed pieces.
    pub fn materialize(&self, state: &CrashState) -> SimFs {
        assert_eq!(state.fates.len(), self.piece_count, "crash state from another space");
        assert_eq!(state.dir.len(), self.dir.len(), "crash state from another space");
        let mut model = self.after.clone();
        // With size pieces, a file's length is what its landed size and set_len pieces make it:
        // data that landed past it is on the disk but not in the file (its size update was
        // lost), as on a filesystem that journals the size apart from the data.
        let sized = self.profile().size_before_data != SizeBeforeData::Off;
        for f in &self.files {
            let inode = self.after.inode(f.ino);
            let mut blob = inode.durable.clone();
            let mut len = blob.len();
            for (i, piece) in f.pieces.iter().enumerate() {
                let fate = state.fates[f.first + i];
                if fate == Fate::Lost {
                    continue;
                }
                match (piece.kind, &inode.pending[piece.pending].op) {
                    (PieceKind::Size, _) => len = len.max(piece.end),
                    (PieceKind::Meta, DataOp::SetLen { len: to }) => len = *to,
                    _ => {}
                }
                let g = Garbage {
                    seed: mix(self.image_config.seed, (f.first + i) as u64),
                    stale: &self.stale,
                    block: u64::from(self.profile().page_bytes),
                    sector: (!self.profile().powersafe_overwrite)
                        .then_some(u64::from(self.profile().sector_bytes)),
                };
                apply_piece(&mut blob, &inode.pending[piece.pending].op, piece, fate, &g);
            }
            if sized && blob.len() != len {
                blob.set_len(len);
            }
            model.inode_mut(f.ino).durable = blob;
        }
        let mut entries = self.after.durable_dir.clone();
        for (p, landed) in self.dir.iter().zip(&state.dir) {
            if *landed {
                p.op.apply(&mut entries);
            }
        }
        for inode in &mut model.inodes {
            inode.cached = inode.durable.clone();
            inode.cached_mtime = inode.durable_mtime;
            inode.pending.clear();
            inode.dirty_since = None;
            inode.open_handles = 0;
            inode.sticky_eio = false;
            // A reboot forgets what the kernel held in memory: write errors and dropped pages.
            inode.written = 0;
            inode.unwritten_bytes = 0;
            inode.err_seq = 0;
            inode.err_unseen = false;
            inode.dropped_pages.clear();
            // Nothing is open after a reboot, so no close will flush anything.
            inode.truncated_to_zero = false;
            inode.close_flushes.clear();
        }
        model.dirty_bytes = 0;
        model.visible_dir = entries.clone();
        model.durable_dir = entries;
        model.pending_dir.clear();
        SimFs::from_model(self.image_config.clone(), model, self.at)
    }

    /// One line per piece and directory operation that did not simply land: what the crash kept,
    /// tore and dropped, for a person reading a replay.
    pub fn describe(&self, state: &CrashState) -> Vec<String> {
        let mut lines = Vec::new();
        for f in &self.files {
            let name = self
                .after
                .name_of(f.ino)
                .map_or_else(|| format!("(unlinked inode {})", f.ino), |n| n.to_string());
            let inode = self.after.inode(f.ino);
            for (i, piece) in f.pieces.iter().enumerate() {
                let seq = inode.pending[piece.pending].seq;
                let what = match piece.kind {
                    PieceKind::Data => format!("bytes {}..{}", piece.start, piece.end),
                    PieceKind::Size => format!("size {} -> {}", piece.start, piece.end),
                    PieceKind::Meta => format!("set_len to {}", piece.start),
                };
                let fate = match state.fates[f.first + i] {
                    Fate::Lost => "lost".to_string(),
                    Fate::Landed if piece.kind == PieceKind::Size => "landed (zero tail)".into(),
                    Fate::Landed => "landed".into(),
                    Fate::Torn { new_bytes } => format!("torn ({new_bytes} new bytes, rest old)"),
                    Fate::Garbage => "garbage".into(),
                };
                lines.push(format!("{name}: op #{seq} {what}: {fate}"));
            }
        }
        for (p, landed) in self.dir.iter().zip(&state.dir) {
            let fate = if *landed { "landed" } else { "lost" };
            let op = describe_dir_op(&p.op, &self.after.inodes);
            lines.push(format!("directory: op #{} {op}: {fate}", p.seq));
        }
        lines
    }

    /// Crash point operation number.
    pub fn op(&self) -> u64 {
        self.op
    }

    /// `state` as text, one character per piece then `/` and one per directory operation: `L`
    /// landed, `-` lost, `G` garbage, `T<n>.` torn with n new bytes; `1` / `0` for a directory
    /// operation. [`CrashSpace::decode`] reads it back, so a person can name one state exactly.
    pub fn encode(&self, state: &CrashState) -> String {
        let mut out = String::with_capacity(state.fates.len() + state.dir.len() + 1);
        for fate in &state.fates {
            match fate {
                Fate::Landed => out.push('L'),
                Fate::Lost => out.push('-'),
                Fate::Garbage => out.push('G'),
                Fate::Torn { new_bytes } => out.push_str(&format!("T{new_bytes}.")),
            }
        }
        out.push('/');
        out.extend(state.dir.iter().map(|d| if *d { '1' } else { '0' }));
        out
    }

    /// Read a state written by [`CrashSpace::encode`], refusing one this space cannot produce:
    /// wrong lengths, a fate a piece cannot have, or (without `reorder` / with ordered directory
    /// operations) a landed piece after a lost one.
    pub fn decode(&self, text: &str) -> Result<CrashState, String> {
        let (pieces, dir) = text
            .split_once('/')
            .ok_or("a crash state has a '/' between pieces and directory operations")?;
        let mut fates = Vec::new();
        let mut chars = pieces.chars();
        while let Some(c) = chars.next() {
            fates.push(match c {
                'L' => Fate::Landed,
                '-' => Fate::Lost,
                'G' => Fate::Garbage,
                'T' => {
                    let digits: String = chars.by_ref().take_while(|c| *c != '.').collect();
                    let new_bytes =
                        digits.parse().map_err(|_| format!("bad torn fate T{digits}"))?;
                    Fate::Torn { new_bytes }
                }
                other => return Err(format!("bad fate {other:?} (expected L, -, G or T<n>.)")),
            });
        }
        let dir = dir
            .chars()
            .map(|c| match c {
                '1' => Ok(true),
                '0' => Ok(false),
                other => Err(format!("bad directory fate {other:?} (expected 1 or 0)")),
            })
            .collect::<Result<Vec<bool>, String>>()?;
        if fates.len() != self.piece_count || dir.len() != self.dir.len() {
            return Err(format!(
                "the state has {} pieces and {} directory operations; this crash point has {} and {}",
                fates.len(),
                dir.len(),
                self.piece_count,
                self.dir.len()
            ));
        }
        let state = CrashState { fates, dir };
        for f in &self.files {
            let fates = &state.fates[f.first..f.first + f.pieces.len()];
            for (piece, fate) in f.pieces.iter().zip(fates) {
                let ok = match fate {
                    Fate::Lost => true,
                    Fate::Torn { new_bytes } => {
                        let at = piece.start + u64::from(*new_bytes);
                        let sector = u64::from(self.profile().sector_bytes);
                        piece.kind == PieceKind::Data
                            && *new_bytes > 0
                            && at < piece.end
                            && self.profile().torn_sectors != TornSectors::None
                            && (!self.profile().atomic_sector_writes || at % sector == 0)
                    }
                    f => self.landing(piece).contains(f) || self.torn_fates(piece).contains(f),
                };
                if !ok {
                    return Err(format!(
                        "fate {fate:?} is not possible for {}",
                        self.piece_name(f, piece)
                    ));
                }
            }
            if !self.profile().reorder {
                let landed = f
                    .pieces
                    .iter()
                    .zip(fates)
                    .take_while(|(p, f)| self.landing(p)[0] == **f)
                    .count();
                if fates.iter().skip(landed + 1).any(|f| *f != Fate::Lost) {
                    return Err("without reorder a file's pieces land as a prefix".into());
                }
            }
        }
        if self.profile().dir_ops == DirOps::Ordered {
            let landed = state.dir.iter().take_while(|d| **d).count();
            if state.dir[landed..].iter().any(|d| *d) {
                return Err("ordered directory operations land as a prefix".into());
            }
        }
        if let Some(page) = self.pages.iter().find(|p| !self.page_valid(p, &state.fates)) {
            let f = self.files.iter().find(|f| page[0] < f.first + f.pieces.len()).expect("file");
            return Err(format!(
                "{}: a page lands as the page cache held it at one moment (page_snapshots)",
                self.piece_name(f, self.piece_at(page[0]))
            ));
        }
        let mut constrained = state.clone();
        self.constrain(&mut constrained);
        if constrained != state {
            return Err("the state breaks a journal rule of the profile (auto_da_alloc: a rename \
                        over a file lands with the file's data, and a truncate to zero a close \
                        followed lands with the data written before the close; \
                        journaled_truncate: data and sizes after a lost truncate are lost)"
                .into());
        }
        Ok(state)
    }

    fn piece_name(&self, f: &FilePieces, piece: &Piece) -> String {
        let name =
            self.after.name_of(f.ino).map_or_else(|| format!("inode {}", f.ino), |n| n.to_string());
        format!("{name} bytes {}..{}", piece.start, piece.end)
    }

    /// What `state` dropped, as the units a shrinker can give back one at a time: each piece not
    /// landed plainly (lost, torn or garbage) and each lost directory operation, in order.
    pub fn dropped(&self, state: &CrashState) -> Vec<Dropped> {
        let mut out = Vec::new();
        for f in &self.files {
            for (i, piece) in f.pieces.iter().enumerate() {
                if state.fates[f.first + i] != self.landing(piece)[0] {
                    out.push(Dropped::Piece(f.first + i));
                }
            }
        }
        out.extend((0..self.dir.len()).filter(|d| !state.dir[*d]).map(Dropped::Dir));
        out
    }

    /// `state` with every unit in `give_back` landed plainly, and whatever the profile needs
    /// landed with it so the result is still a state this space can produce (without reorder,
    /// the pieces before it in its file; with ordered directory operations, the ones before it).
    pub fn give_back(&self, state: &CrashState, give_back: &[Dropped]) -> CrashState {
        let mut out = state.clone();
        for unit in give_back {
            match *unit {
                Dropped::Piece(index) => {
                    let f = self
                        .files
                        .iter()
                        .find(|f| index < f.first + f.pieces.len())
                        .expect("piece index inside the space");
                    let from = if self.profile().reorder { index } else { f.first };
                    for i in from..=index {
                        out.fates[i] = self.landing(&f.pieces[i - f.first])[0];
                    }
                }
                Dropped::Dir(index) => {
                    let from = if self.profile().dir_ops == DirOps::Ordered { 0 } else { index };
                    out.dir[from..=index].fill(true);
                }
            }
        }
        self.raise(&mut out);
        self.constrain(&mut out);
        out
    }
}

/// The multiples of `sector` in `from..to`.
fn sector_boundaries(from: u64, to: u64, sector: u64) -> impl Iterator<Item = u64> {
    (from.div_ceil(sector)..).map(move |s| s * sector).take_while(move |b| *b < to)
}

/// One unit of unsynced state a crash state dropped (see [`CrashSpace::dropped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// A piece, by its index in the state.
    Piece(usize),
    /// A directory operation, by its index.
    Dir(usize),
}

/// Bytes a disk exposes where data never landed: half the time what the program wrote before —
/// its own older, checksum-valid records from a removed file, where there is one (`stale`) — and
/// otherwise random bytes in which every aligned word has a fair chance of being a small number,
/// so that a parser trusting a length field follows it.
fn garbage(at: u64, len: usize, g: &Garbage<'_>) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
    let stale = g.stale;
    if !stale.is_empty() && rng.random_bool(0.5) {
        // A recycled block keeps its old bytes at their old place in the block: byte `x` of the
        // file reads byte `x mod block` of a block the removed file had.
        let block = g.block as usize;
        let base = rng.random_range(0..stale.len().div_ceil(block)) * block;
        return (0..len)
            .map(|i| {
                let x = (at as usize + i) % block;
                stale.get(base + x).copied().unwrap_or(0)
            })
            .collect();
    }
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    for word in bytes.chunks_exact_mut(4) {
        if rng.random_ratio(1, 4) {
            word.copy_from_slice(&rng.random_range(1u32..=256).to_le_bytes());
        }
    }
    bytes
}

/// What garbage is drawn from and how far it reaches.
struct Garbage<'a> {
    seed: u64,
    stale: &'a [u8],
    /// The block size stale bytes keep their place in.
    block: u64,
    /// Without powersafe overwrite, the sector to garble whole (its size).
    sector: Option<u64>,
}

fn apply_piece(blob: &mut Blob, op: &DataOp, piece: &Piece, fate: Fate, g: &Garbage<'_>) {
    let span = (piece.end - piece.start) as usize;
    match (piece.kind, op) {
        (PieceKind::Meta, DataOp::SetLen { len }) => blob.set_len(*len),
        (PieceKind::Size, _) => {
            if blob.len() < piece.end {
                let from = blob.len();
                blob.set_len(piece.end);
                if fate == Fate::Garbage {
                    blob.write(&garbage(from, (piece.end - from) as usize, g), from);
                }
            }
        }
        (PieceKind::Data, DataOp::Write { offset, data, .. }) => {
            let at = (piece.start - offset) as usize;
            let new = &data[at..at + span];
            match fate {
                Fate::Landed => blob.write(new, piece.start),
                Fate::Torn { new_bytes } => {
                    blob.write(&new[..(new_bytes as usize).min(span)], piece.start);
                    if blob.len() < piece.end {
                        blob.set_len(piece.end);
                    }
                }
                Fate::Garbage => {
                    // Without powersafe overwrite the whole sector is garbled, the synced bytes
                    // around the write with it (never past the end of the file).
                    let (from, to) = match g.sector {
                        Some(s) => (piece.start / s * s, piece.end.div_ceil(s) * s),
                        None => (piece.start, piece.end),
                    };
                    let to = to.min(blob.len().max(piece.end));
                    blob.write(&garbage(from, (to - from) as usize, g), from);
                }
                Fate::Lost => {}
            }
        }
        _ => debug_assert!(false, "piece kind does not match its operation"),
    }
}

/// A hash of a crash image: its names and their contents (what an engine can observe).
pub fn image_hash(fs: &SimFs) -> u64 {
    fs.hash_image()
}

impl SimFs {
    /// Hash of the visible names and the cached contents: what a reader sees. A power-cut image
    /// has nothing unsynced, so that is its durable state; a process-crash image keeps its
    /// unsynced state, which a reader sees too.
    pub(crate) fn hash_image(&self) -> u64 {
        let mut h = Xxh3::new();
        self.with_model(|model| {
            // A file is its path, a 0 byte and its contents (so a flat directory hashes as it
            // always did); a directory its path and a 1; a symbolic link its path, a 2 and its
            // target.
            for (path, ino) in names::walk(&model.visible_dir, &model.inodes) {
                h.update(path.as_bytes());
                match model.kind(ino) {
                    Kind::File => {
                        h.update(&[0]);
                        model.inode(ino).cached.hash_into(&mut h);
                    }
                    Kind::Dir => h.update(&[1]),
                    Kind::Symlink(target) => {
                        h.update(&[2]);
                        h.update(target.as_bytes());
                    }
                }
            }
        });
        h.digest()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Profile, SimFs};
    use powercut_vfs::{OpenOptions, Vfs, VfsFile};

    /// A crash image is not a copy: untouched files share every page with the run's durable image,
    /// and a touched file copies only the pages its landed pieces write.
    #[test]
    fn crash_images_share_untouched_pages() {
        let fs = SimFs::with_profile(Profile::posix());
        let big = fs.open("big", OpenOptions::create()).unwrap();
        big.write_all_at(&vec![1u8; 1 << 20], 0).unwrap();
        big.sync_all().unwrap();
        let log = fs.open("log", OpenOptions::create()).unwrap();
        log.write_all_at(&vec![2u8; 1 << 20], 0).unwrap();
        log.sync_all().unwrap();
        fs.sync_dir().unwrap();
        log.write_all_at(b"tail", 1 << 20).unwrap();
        let space = fs.crash_point_now().power_cut_space();
        let image = space.materialize(&space.everything_landed());
        let blob = |fs: &SimFs, name: &str| {
            fs.with_model(|m| m.inode(m.lookup(name).unwrap()).durable.clone())
        };
        assert!(blob(&image, "big").same_pages(&blob(&fs, "big")));
        let (before, after) = (blob(&fs, "log"), blob(&image, "log"));
        assert_eq!(after.len(), before.len() + 4);
        let mut prefix = after.clone();
        prefix.set_len(before.len());
        assert!(prefix.same_pages(&before), "only the tail page was copied");
    }
}

#[cfg(test)]
mod state_text {
    use crate::{Dropped, Profile, SimFs};
    use powercut_vfs::{OpenOptions, Vfs, VfsFile};

    /// A state written as text reads back as itself; a state the profile cannot produce is
    /// refused; giving dropped units back lands them (and, without reorder, what precedes them).
    #[test]
    fn states_round_trip_as_text_and_shrink_by_giving_back() {
        for profile in [Profile::posix(), Profile::ext4_ordered()] {
            let fs = SimFs::with_profile(profile.clone());
            let f = fs.open("log", OpenOptions::create()).unwrap();
            f.write_all_at(&[7u8; 1500], 0).unwrap();
            let space = fs.crash_point_now().power_cut_space();
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
            for _ in 0..50 {
                let state = space.sample(&mut rng);
                let text = space.encode(&state);
                assert_eq!(space.decode(&text).unwrap(), state, "{text}");
                let dropped = space.dropped(&state);
                let back = space.give_back(&state, &dropped);
                assert!(space.dropped(&back).is_empty(), "{}", space.encode(&back));
            }
            assert!(space.decode("L/").is_err(), "wrong length");
            let nothing = space.nothing_landed();
            assert_eq!(space.dropped(&nothing).len(), space.piece_count() + space.dir_op_count());
            let last = space.piece_count() - 1;
            let one = space.give_back(&nothing, &[Dropped::Piece(last)]);
            let landed = space.piece_count()
                - space.dropped(&one).iter().filter(|d| matches!(d, Dropped::Piece(_))).count();
            assert_eq!(
                landed,
                if profile.reorder { 1 } else { space.piece_count() },
                "{}",
                profile.base
            );
            if !profile.reorder {
                let mut text = space.encode(&nothing);
                text.replace_range(last..=last, "L");
                assert!(
                    space.decode(&text).is_err(),
                    "a landed piece after a lost one without reorder"
                );
            }
        }
    }
}

#[cfg(test)]
mod image_hashes {
    use crate::{InFlight, Profile, SimFs, image_hash};
    use powercut_vfs::{OpenOptions, Vfs, VfsFile};

    /// Process-crash images keep unsynced data a reader sees: two that differ only there hash
    /// apart, and one equal to a power-cut image (nothing unsynced) hashes the same.
    #[test]
    fn a_hash_covers_what_a_reader_sees() {
        let fs = SimFs::with_profile(Profile::posix());
        let f = fs.open("log", OpenOptions::create()).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_all().unwrap();
        fs.sync_dir().unwrap();
        let before = fs.crash_point_now();
        f.write_all_at(b" and not", 6).unwrap();
        let after = fs.crash_point_now();
        let (a, b) =
            (before.process_crash(InFlight::Skipped), after.process_crash(InFlight::Skipped));
        assert_eq!(b.contents("log").unwrap(), b"synced and not");
        assert_ne!(image_hash(&a), image_hash(&b), "unsynced data a reader sees is hashed");
        let space = before.power_cut_space();
        assert_eq!(image_hash(&a), image_hash(&space.materialize(&space.nothing_landed())));
    }
}
