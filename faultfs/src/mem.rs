//! `MemFs`: a plain in-memory filesystem with no fault tracking — no durable image, no pending
//! operations, no crash points, no trace. It exists as the baseline that SimFs's overhead is
//! measured against (`cargo bench`), and for tests that want the seam without a fault model.
//!
//! Same seam semantics as the other implementations: one flat directory, names checked by
//! [`check_name`], positional I/O, sorted listing; syncs do nothing (there is nothing to lose).

use powercut_vfs::{OpenOptions, Vfs, VfsFile, check_name};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

type Data = Rc<RefCell<Vec<u8>>>;

/// An in-memory directory. Cloning gives another handle to the same one.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    files: Rc<RefCell<BTreeMap<String, Data>>>,
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

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Vfs for MemFs {
    type File = MemFile;

    fn open(&self, name: &str, options: OpenOptions) -> io::Result<MemFile> {
        check_name(name)?;
        let mut files = self.files.borrow_mut();
        let data = match files.get(name) {
            Some(_) if options.create_new => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{name}: file exists"),
                ));
            }
            Some(d) => d.clone(),
            None if options.create || options.create_new => {
                let d = Data::default();
                files.insert(name.to_string(), d.clone());
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
        check_name(from)?;
        check_name(to)?;
        let mut files = self.files.borrow_mut();
        let d = files.remove(from).ok_or_else(|| missing(from))?;
        files.insert(to.to_string(), d);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        self.files.borrow_mut().remove(name).map(|_| ()).ok_or_else(|| missing(name))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.borrow().keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
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
