//! `Blob`: a file's bytes as copy-on-write pages under a copy-on-write page table.
//!
//! Guarantees: cloning a blob copies one pointer per *chunk* of 64 pages (256 KiB), never the
//! bytes and never the per-page table; a write copies only the chunk table and the page it
//! touches, and only if they are shared. Pages never written (holes, or a tail grown by `set_len`)
//! read as zeros and cost nothing. This is what lets a crash image share the durable image of
//! every file instead of copying it.

use std::rc::Rc;

/// Bytes per page of a blob (an implementation detail, independent of the modeled sector size).
pub(crate) const PAGE_BYTES: usize = 4096;
const CHUNK_PAGES: usize = 64;
const CHUNK_BYTES: u64 = (PAGE_BYTES * CHUNK_PAGES) as u64;

type Page = Rc<[u8; PAGE_BYTES]>;
type Chunk = Rc<[Option<Page>; CHUNK_PAGES]>;

#[derive(Clone, Default)]
pub(crate) struct Blob {
    len_bytes: u64,
    /// `chunks[c]` holds pages `[c * CHUNK_PAGES, (c + 1) * CHUNK_PAGES)`; `None` is all zeros,
    /// and so is a `None` page. Invariant: `chunks.len() == ceil(len_bytes / CHUNK_BYTES)`, and
    /// bytes at or past `len_bytes` are zero.
    chunks: Vec<Option<Chunk>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.len_bytes)
    }
}

fn chunk_count(len_bytes: u64) -> usize {
    usize::try_from(len_bytes.div_ceil(CHUNK_BYTES)).expect("file larger than memory")
}

/// (chunk, page within the chunk, byte within the page) of byte `at`.
fn locate(at: u64) -> (usize, usize, usize) {
    let page = (at / PAGE_BYTES as u64) as usize;
    (page / CHUNK_PAGES, page % CHUNK_PAGES, (at % PAGE_BYTES as u64) as usize)
}

impl Blob {
    pub(crate) fn len(&self) -> u64 {
        self.len_bytes
    }

    fn page(&self, chunk: usize, page: usize) -> Option<&[u8; PAGE_BYTES]> {
        self.chunks[chunk].as_ref().and_then(|c| c[page].as_deref())
    }

    /// Copy bytes at `offset` into `buf`; returns the count (short at the end of the blob).
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> usize {
        if offset >= self.len_bytes {
            return 0;
        }
        let n = usize::try_from((self.len_bytes - offset).min(buf.len() as u64)).unwrap_or(0);
        let mut done = 0;
        while done < n {
            let (c, p, in_page) = locate(offset + done as u64);
            let chunk = (PAGE_BYTES - in_page).min(n - done);
            match self.page(c, p) {
                Some(bytes) => buf[done..done + chunk].copy_from_slice(&bytes[in_page..][..chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        n
    }

    /// Append the whole content to `out` (no zero-filled buffer first); returns the count.
    pub(crate) fn extend_vec(&self, out: &mut Vec<u8>) -> usize {
        let n = usize::try_from(self.len_bytes).expect("file larger than memory");
        out.reserve(n);
        let zeros = [0u8; PAGE_BYTES];
        let mut left = n;
        for i in 0..n.div_ceil(PAGE_BYTES) {
            let page = self.page(i / CHUNK_PAGES, i % CHUNK_PAGES).unwrap_or(&zeros);
            let take = left.min(PAGE_BYTES);
            out.extend_from_slice(&page[..take]);
            left -= take;
        }
        n
    }

    fn page_mut(&mut self, chunk: usize, page: usize) -> &mut [u8; PAGE_BYTES] {
        let slot = self.chunks[chunk].get_or_insert_with(|| Rc::new(std::array::from_fn(|_| None)));
        let page = Rc::make_mut(slot)[page].get_or_insert_with(|| Rc::new([0u8; PAGE_BYTES]));
        Rc::make_mut(page)
    }

    /// Write `data` at `offset`, growing the blob (zero-filling any gap) as needed.
    pub(crate) fn write(&mut self, data: &[u8], offset: u64) {
        let end = offset + data.len() as u64;
        if end > self.len_bytes {
            self.grow(end);
        }
        let mut done = 0;
        while done < data.len() {
            let (c, p, in_page) = locate(offset + done as u64);
            let chunk = (PAGE_BYTES - in_page).min(data.len() - done);
            self.page_mut(c, p)[in_page..][..chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
    }

    /// Truncate or extend (with zeros) to `len_bytes`.
    pub(crate) fn set_len(&mut self, len_bytes: u64) {
        if len_bytes >= self.len_bytes {
            self.grow(len_bytes);
            return;
        }
        self.chunks.truncate(chunk_count(len_bytes));
        self.len_bytes = len_bytes;
        if len_bytes % CHUNK_BYTES == 0 {
            return;
        }
        // Drop the pages past the end in the last chunk, and zero the tail of the last page.
        let (c, p, in_page) = locate(len_bytes);
        if let Some(slot) = self.chunks[c].as_mut() {
            let first_gone = if in_page == 0 { p } else { p + 1 };
            if slot[first_gone..].iter().any(Option::is_some) {
                Rc::make_mut(slot)[first_gone..].fill(None);
            }
            if in_page != 0 && slot[p].is_some() {
                self.page_mut(c, p)[in_page..].fill(0);
            }
        }
    }

    fn grow(&mut self, len_bytes: u64) {
        debug_assert!(len_bytes >= self.len_bytes);
        self.chunks.resize(chunk_count(len_bytes), None);
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
        let pages = self.len_bytes.div_ceil(PAGE_BYTES as u64) as usize;
        for i in 0..pages {
            hasher.update(self.page(i / CHUNK_PAGES, i % CHUNK_PAGES).unwrap_or(&zeros));
        }
    }

    /// True when both blobs share every page (a cheap "unchanged since the clone" test).
    #[cfg(test)]
    pub(crate) fn same_pages(&self, other: &Blob) -> bool {
        let same_page = |a: &Option<Page>, b: &Option<Page>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        };
        self.len_bytes == other.len_bytes
            && self.chunks.iter().zip(&other.chunks).all(|(a, b)| match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    Rc::ptr_eq(a, b) || a.iter().zip(b.iter()).all(|(x, y)| same_page(x, y))
                }
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
        a.write(&vec![1u8; 3 * CHUNK_BYTES as usize], 0);
        let mut b = a.clone();
        assert!(a.same_pages(&b));
        b.write(&[2], CHUNK_BYTES + 5000);
        assert!(!a.same_pages(&b));
        assert_eq!(a.to_vec()[CHUNK_BYTES as usize + 5000], 1);
        assert_eq!(b.to_vec()[CHUNK_BYTES as usize + 5000], 2);
        // Only the written chunk's table and page were copied.
        assert!(Rc::ptr_eq(a.chunks[0].as_ref().unwrap(), b.chunks[0].as_ref().unwrap()));
        assert!(Rc::ptr_eq(a.chunks[2].as_ref().unwrap(), b.chunks[2].as_ref().unwrap()));
    }

    #[test]
    fn truncation_inside_a_chunk_zeroes_what_a_regrow_exposes() {
        let mut b = Blob::default();
        b.write(&vec![7u8; 3 * PAGE_BYTES], 0);
        let shared = b.clone();
        b.set_len(PAGE_BYTES as u64 + 10);
        b.set_len(3 * PAGE_BYTES as u64);
        let v = b.to_vec();
        assert!(v[..PAGE_BYTES + 10].iter().all(|x| *x == 7));
        assert!(v[PAGE_BYTES + 10..].iter().all(|x| *x == 0));
        assert!(shared.to_vec().iter().all(|x| *x == 7), "the clone is untouched");
    }
}
