//! `MemFs`: a plain in-memory filesystem with no fault tracking — no durable image, no pending
//! operations, no crash points, no trace. It exists as the baseline that SimFs's overhead is
//! measured against (`cargo bench`), and for tests that want the seam without a fault model.
//!
//! Same seam semantics as the other implementations — a directory tree, paths checked by
//! [`check_path`], hard links sharing data, positional I/O, sorted listings — with one
//! exception: a symbolic link is stored and read back but never followed (a path through one
//! fails, naming it). Syncs do nothing (there is nothing to lose).

use powercut_vfs::{
    DirEntry, EntryKind, OpenOptions, Vfs, VfsFile, check_dir, check_path, split_path,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

type Data = Rc<RefCell<Vec<u8>>>;

#[derive(Clone, Debug)]
enum Node {
    File(Data),
    Dir,
    Symlink(String),
}

/// An in-memory directory tree. Cloning gives another handle to the same one.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    /// Every entry by its full path.
    nodes: Rc<RefCell<BTreeMap<String, Node>>>,
}

/// An open file of a [`MemFs`].
#[derive(Debug)]
pub struct MemFile {
    data: Data,
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
    }
}

fn error(kind: io::ErrorKind, path: &str, what: &str) -> io::Error {
    io::Error::new(kind, format!("{path}: {what}"))
}

fn missing(name: &str) -> io::Error {
    error(io::ErrorKind::NotFound, name, "no such file")
}

/// The paths below directory `dir` (`""`: the root) in `nodes`, deepest included.
fn below<'a>(nodes: &'a BTreeMap<String, Node>, dir: &str) -> Vec<&'a String> {
    let prefix = format!("{dir}/");
    if dir.is_empty() {
        return nodes.keys().collect();
    }
    nodes
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k)
        .collect()
}

impl MemFs {
    /// Check `path` and that its directory exists (and is no symbolic link).
    fn parent_of(nodes: &BTreeMap<String, Node>, path: &str) -> io::Result<()> {
        check_path(path)?;
        let (dir, _) = split_path(path);
        let mut at = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            match nodes.get(&at) {
                Some(Node::Dir) => {}
                Some(Node::Symlink(_)) => {
                    return Err(error(
                        io::ErrorKind::Unsupported,
                        path,
                        &format!("{at} is a symbolic link, which MemFs does not follow"),
                    ));
                }
                Some(Node::File(_)) => {
                    return Err(error(
                        io::ErrorKind::NotADirectory,
                        path,
                        &format!("{at} is not a directory"),
                    ));
                }
                None => {
                    return Err(error(
                        io::ErrorKind::NotFound,
                        path,
                        &format!("no directory {at}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Vfs for MemFs {
    type File = MemFile;

    fn open(&self, name: &str, options: OpenOptions) -> io::Result<MemFile> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, name)?;
        let data = match nodes.get(name) {
            Some(_) if options.create_new => {
                return Err(error(io::ErrorKind::AlreadyExists, name, "file exists"));
            }
            Some(Node::File(d)) => d.clone(),
            Some(Node::Dir) => {
                return Err(error(io::ErrorKind::IsADirectory, name, "is a directory"));
            }
            Some(Node::Symlink(_)) => {
                return Err(error(
                    io::ErrorKind::Unsupported,
                    name,
                    "a symbolic link, which MemFs does not follow",
                ));
            }
            None if options.create || options.create_new => {
                let d = Data::default();
                nodes.insert(name.to_string(), Node::File(d.clone()));
                d
            }
            None => return Err(missing(name)),
        };
        if options.truncate {
            data.borrow_mut().clear();
        }
        Ok(MemFile { data })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, from)?;
        Self::parent_of(&nodes, to)?;
        if from == to {
            return nodes.get(from).map(|_| ()).ok_or_else(|| missing(from));
        }
        let node = nodes.get(from).cloned().ok_or_else(|| missing(from))?;
        let is_dir = matches!(node, Node::Dir);
        match nodes.get(to) {
            Some(Node::Dir) if !is_dir => {
                return Err(error(io::ErrorKind::IsADirectory, to, "is a directory"));
            }
            Some(Node::Dir) if !below(&nodes, to).is_empty() => {
                return Err(error(io::ErrorKind::DirectoryNotEmpty, to, "directory not empty"));
            }
            Some(_) if is_dir && !matches!(nodes.get(to), Some(Node::Dir)) => {
                return Err(error(io::ErrorKind::NotADirectory, to, "not a directory"));
            }
            _ => {}
        }
        if is_dir && to.starts_with(&format!("{from}/")) {
            return Err(error(
                io::ErrorKind::InvalidInput,
                to,
                "a directory cannot move below itself",
            ));
        }
        let moved: Vec<String> =
            if is_dir { below(&nodes, from).into_iter().cloned().collect() } else { Vec::new() };
        nodes.remove(from);
        nodes.insert(to.to_string(), node);
        for old in moved {
            let n = nodes.remove(&old).expect("listed");
            nodes.insert(format!("{to}{}", &old[from.len()..]), n);
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, name)?;
        match nodes.get(name) {
            Some(Node::Dir) => Err(error(io::ErrorKind::IsADirectory, name, "is a directory")),
            Some(_) => {
                nodes.remove(name);
                Ok(())
            }
            None => Err(missing(name)),
        }
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, path)?;
        if nodes.contains_key(path) {
            return Err(error(io::ErrorKind::AlreadyExists, path, "file exists"));
        }
        nodes.insert(path.to_string(), Node::Dir);
        Ok(())
    }

    fn remove_dir(&self, path: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, path)?;
        match nodes.get(path) {
            Some(Node::Dir) if !below(&nodes, path).is_empty() => {
                Err(error(io::ErrorKind::DirectoryNotEmpty, path, "directory not empty"))
            }
            Some(Node::Dir) => {
                nodes.remove(path);
                Ok(())
            }
            Some(_) => Err(error(io::ErrorKind::NotADirectory, path, "not a directory")),
            None => Err(missing(path)),
        }
    }

    fn read_dir(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        check_dir(dir)?;
        let nodes = self.nodes.borrow();
        if !dir.is_empty() && !matches!(nodes.get(dir), Some(Node::Dir)) {
            return Err(error(io::ErrorKind::NotFound, dir, "no such directory"));
        }
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let mut out = Vec::new();
        for path in below(&nodes, dir) {
            let name = &path[skip..];
            if name.contains('/') {
                continue;
            }
            let kind = match nodes[path] {
                Node::File(_) => EntryKind::File,
                Node::Dir => EntryKind::Dir,
                Node::Symlink(_) => EntryKind::Symlink,
            };
            out.push(DirEntry { name: name.to_string(), kind });
        }
        out.sort();
        Ok(out)
    }

    fn sync_dir_at(&self, dir: &str) -> io::Result<()> {
        check_dir(dir)
    }

    fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, existing)?;
        Self::parent_of(&nodes, new)?;
        let node = match nodes.get(existing) {
            Some(Node::Dir) => {
                return Err(error(
                    io::ErrorKind::PermissionDenied,
                    existing,
                    "a directory cannot be hard-linked",
                ));
            }
            Some(n) => n.clone(),
            None => return Err(missing(existing)),
        };
        if nodes.contains_key(new) {
            return Err(error(io::ErrorKind::AlreadyExists, new, "file exists"));
        }
        nodes.insert(new.to_string(), node);
        Ok(())
    }

    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        Self::parent_of(&nodes, link)?;
        if target.is_empty() || target.contains('\0') {
            return Err(error(
                io::ErrorKind::InvalidInput,
                link,
                &format!("bad symlink target {target:?}"),
            ));
        }
        if nodes.contains_key(link) {
            return Err(error(io::ErrorKind::AlreadyExists, link, "file exists"));
        }
        nodes.insert(link.to_string(), Node::Symlink(target.to_string()));
        Ok(())
    }

    fn read_link(&self, link: &str) -> io::Result<String> {
        let nodes = self.nodes.borrow();
        Self::parent_of(&nodes, link)?;
        match nodes.get(link) {
            Some(Node::Symlink(t)) => Ok(t.clone()),
            Some(_) => Err(error(io::ErrorKind::InvalidInput, link, "not a symbolic link")),
            None => Err(missing(link)),
        }
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl VfsFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let d = self.data.borrow();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut d = self.data.borrow_mut();
        let start = usize::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        if d.len() < start + buf.len() {
            d.resize(start + buf.len(), 0);
        }
        d[start..start + buf.len()].copy_from_slice(buf);
        Ok(buf.len())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.data.borrow().len() as u64)
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        let len = usize::try_from(len_bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        self.data.borrow_mut().resize(len, 0);
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
