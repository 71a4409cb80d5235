//! `Blob`: a file's bytes as copy-on-write pages.
//!
//! Guarantees: cloning a blob copies one pointer per page, never the bytes; a write copies only
//! the pages it touches and only if they are shared. Pages never written (holes, or a tail grown by
//! `set_len`) read as zeros and cost nothing. This is what lets a crash image share the durable
//! image of every file instead of copying it.

use std::rc::Rc;

/// Bytes per page of a blob (an implementation detail, independent of the modeled sector size).
pub(crate) const PAGE_BYTES: usize = 4096;

type Page = Rc<[u8; PAGE_BYTES]>;

#[derive(Clone, Default)]
pub(crate) struct Blob {
    len_bytes: u64,
    /// `pages[i]` holds bytes `[i * PAGE_BYTES, (i + 1) * PAGE_BYTES)`; `None` is all zeros.
    /// Invariant: `pages.len() == ceil(len_bytes / PAGE_BYTES)`, and bytes at or past `len_bytes`
    /// in the last page are zero.
    pages: Vec<Option<Page>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.len_bytes)
    }
}

fn page_count(len_bytes: u64) -> usize {
    usize::try_from(len_bytes.div_ceil(PAGE_BYTES as u64)).expect("file larger than memory")
}

impl Blob {
    pub(crate) fn len(&self) -> u64 {
        self.len_bytes
    }

    /// Copy bytes at `offset` into `buf`; returns the count (short at the end of the blob).
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> usize {
        if offset >= self.len_bytes {
            return 0;
        }
        let n = usize::try_from((self.len_bytes - offset).min(buf.len() as u64)).unwrap_or(0);
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let page = (at / PAGE_BYTES as u64) as usize;
            let in_page = (at % PAGE_BYTES as u64) as usize;
            let chunk = (PAGE_BYTES - in_page).min(n - done);
            match &self.pages[page] {
                Some(p) => buf[done..done + chunk].copy_from_slice(&p[in_page..in_page + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        n
    }

    /// Write `data` at `offset`, growing the blob (zero-filling any gap) as needed.
    pub(crate) fn write(&mut self, data: &[u8], offset: u64) {
        let end = offset + data.len() as u64;
        if end > self.len_bytes {
            self.grow(end);
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let page = (at / PAGE_BYTES as u64) as usize;
            let in_page = (at % PAGE_BYTES as u64) as usize;
            let chunk = (PAGE_BYTES - in_page).min(data.len() - done);
            let slot = self.pages[page].get_or_insert_with(|| Rc::new([0u8; PAGE_BYTES]));
            Rc::make_mut(slot)[in_page..in_page + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
    }

    /// Truncate or extend (with zeros) to `len_bytes`.
    pub(crate) fn set_len(&mut self, len_bytes: u64) {
        if len_bytes >= self.len_bytes {
            self.grow(len_bytes);
            return;
        }
        self.pages.truncate(page_count(len_bytes));
        self.len_bytes = len_bytes;
        let in_page = (len_bytes % PAGE_BYTES as u64) as usize;
        if in_page != 0 {
            if let Some(Some(last)) = self.pages.last_mut() {
                Rc::make_mut(last)[in_page..].fill(0);
            }
        }
    }

    fn grow(&mut self, len_bytes: u64) {
        debug_assert!(len_bytes >= self.len_bytes);
        self.pages.resize(page_count(len_bytes), None);
        self.len_bytes = len_bytes;
    }

    /// The whole content (for tests, inspection and hashing of small files).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(self.len_bytes).expect("file larger than memory")];
        let n = self.read(&mut out, 0);
        debug_assert_eq!(n, out.len());
        out
    }

    /// Feed the content into a hasher without materializing it.
    pub(crate) fn hash_into(&self, hasher: &mut xxhash_rust::xxh3::Xxh3) {
        hasher.update(&self.len_bytes.to_le_bytes());
        let zeros = [0u8; PAGE_BYTES];
        for page in &self.pages {
            hasher.update(page.as_deref().unwrap_or(&zeros));
        }
    }

    /// True when both blobs share every page (a cheap "unchanged since the clone" test).
    #[cfg(test)]
    pub(crate) fn same_pages(&self, other: &Blob) -> bool {
        self.len_bytes == other.len_bytes
            && self.pages.iter().zip(&other.pages).all(|(a, b)| match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Rc::ptr_eq(a, b),
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_across_pages_and_holes() {
        let mut b = Blob::default();
        b.write(b"abc", 4094);
        assert_eq!(b.len(), 4097);
        let mut buf = [9u8; 6];
        assert_eq!(b.read(&mut buf, 4092), 5);
        assert_eq!(&buf[..5], &[0, 0, b'a', b'b', b'c']);
        b.set_len(4095);
        assert_eq!(b.to_vec()[4094], b'a');
        b.set_len(4097);
        assert_eq!(&b.to_vec()[4094..], &[b'a', 0, 0]);
    }

    #[test]
    fn clone_shares_pages_until_written() {
        let mut a = Blob::default();
        a.write(&[1u8; 3 * PAGE_BYTES], 0);
        let mut b = a.clone();
        assert!(a.same_pages(&b));
        b.write(&[2], 5000);
        assert!(!a.same_pages(&b));
        assert_eq!(a.to_vec()[5000], 1);
        assert_eq!(b.to_vec()[5000], 2);
    }
}
