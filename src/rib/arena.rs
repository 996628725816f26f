//! A byte arena for the interner's encoded attribute sets.
//!
//! One heap allocation per set (a `Box<[u8]>`: 16 bytes of pointer and length
//! in the slot, plus malloc's header and rounding) costs about as much as the
//! set itself. Here sets live back to back in 1 MiB pages and are named by a
//! 4-byte [`Handle`]: the page index (14 bits) and the offset in 4-byte
//! granules (18 bits). A block is the set's length (LEB128, 1-3 bytes for any
//! realistic set) followed by its bytes, rounded up to whole granules.
//!
//! Freed blocks go on a free list per size class (the exact number of
//! granules) and are reused by the next block of that size; the unused tail
//! of a page is freed the same way when a new page is started. Blocks larger
//! than [`LARGE`] bytes get a page of their own, released when they are freed
//! (its index is reused). Ordinary pages are never returned to the allocator:
//! the interner's working set shrinks and grows within them.

/// Names one block: `page << OFF_BITS | granule offset`.
pub type Handle = u32;

/// Bytes per granule (the unit of block sizes and offsets).
const GRANULE: usize = 4;
/// Bits of the granule offset in a [`Handle`].
const OFF_BITS: u32 = 18;
/// Bytes per ordinary page (1 MiB).
pub const PAGE: usize = GRANULE << OFF_BITS;
/// Pages addressable (the last index is never used, so no handle is `u32::MAX`).
const MAX_PAGES: usize = (1 << (32 - OFF_BITS)) - 1;
/// Blocks above this many bytes get a page of their own.
pub const LARGE: usize = 16 * 1024;

/// A handle no block ever has (for callers marking "no block").
pub const NONE: Handle = u32::MAX;

#[derive(Debug, Default)]
pub struct Arena {
    /// Ordinary pages are `PAGE` bytes; a large block's page is its size (empty once freed).
    pages: Vec<Box<[u8]>>,
    /// The page blocks are carved from (`None` before the first).
    cur: Option<u32>,
    /// Granules used in `cur`.
    top: usize,
    /// `free[n]`: free blocks of `n` granules (ordinary pages only).
    free: Vec<Vec<Handle>>,
    /// Indices of released large pages.
    free_pages: Vec<u32>,
    /// Bytes in live blocks (granules, length prefixes included).
    live: usize,
}

fn prefix_len(len: usize) -> usize {
    let mut n = 1;
    let mut v = len >> 7;
    while v != 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Granules of the block holding `len` bytes.
fn granules(len: usize) -> usize {
    (prefix_len(len) + len).div_ceil(GRANULE)
}

fn handle(page: u32, granule: usize) -> Handle {
    page << OFF_BITS | granule as u32
}

fn split(h: Handle) -> (usize, usize) {
    (
        (h >> OFF_BITS) as usize,
        (h as usize & ((1 << OFF_BITS) - 1)) * GRANULE,
    )
}

/// The stored length at the start of `b` and the prefix's size.
fn read_len(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    unreachable!("arena block without a length")
}

fn write_block(dst: &mut [u8], bytes: &[u8]) {
    let mut v = bytes.len();
    let mut i = 0;
    while v >= 0x80 {
        dst[i] = v as u8 | 0x80;
        v >>= 7;
        i += 1;
    }
    dst[i] = v as u8;
    dst[i + 1..i + 1 + bytes.len()].copy_from_slice(bytes);
}

impl Arena {
    /// Store `bytes` (a copy); its handle.
    pub fn alloc(&mut self, bytes: &[u8]) -> Handle {
        let n = granules(bytes.len());
        self.live += n * GRANULE;
        let h = if n * GRANULE > LARGE {
            self.alloc_large(n * GRANULE)
        } else if let Some(h) = self.free.get_mut(n).and_then(Vec::pop) {
            h
        } else {
            self.bump(n)
        };
        let (page, off) = split(h);
        write_block(&mut self.pages[page][off..off + n * GRANULE], bytes);
        h
    }

    /// The bytes stored under `h` (a live block).
    pub fn get(&self, h: Handle) -> &[u8] {
        let (page, off) = split(h);
        let b = &self.pages[page][off..];
        let (len, p) = read_len(b);
        &b[p..p + len]
    }

    /// Release the block `h` (it must be live; its handle may be returned by a
    /// later [`Arena::alloc`]).
    pub fn free(&mut self, h: Handle) {
        let (page, off) = split(h);
        let (len, _) = read_len(&self.pages[page][off..]);
        let n = granules(len);
        self.live -= n * GRANULE;
        if n * GRANULE > LARGE {
            self.pages[page] = Box::default();
            self.free_pages.push(page as u32);
        } else {
            self.push_free(n, h);
        }
    }

    fn push_free(&mut self, n: usize, h: Handle) {
        if self.free.len() <= n {
            self.free.resize_with(n + 1, Vec::new);
        }
        self.free[n].push(h);
    }

    /// `n` granules at the top of the current page (a new page when full).
    fn bump(&mut self, n: usize) -> Handle {
        let page = match self.cur {
            Some(p) if self.top + n <= PAGE / GRANULE => p,
            cur => {
                if let Some(p) = cur {
                    let rest = PAGE / GRANULE - self.top;
                    if rest > 0 {
                        self.push_free(rest, handle(p, self.top));
                    }
                }
                let p = self.new_page(vec![0; PAGE].into_boxed_slice());
                self.cur = Some(p);
                self.top = 0;
                p
            }
        };
        let h = handle(page, self.top);
        self.top += n;
        h
    }

    fn alloc_large(&mut self, size: usize) -> Handle {
        let page = vec![0; size].into_boxed_slice();
        let p = match self.free_pages.pop() {
            Some(p) => {
                self.pages[p as usize] = page;
                p
            }
            None => self.new_page(page),
        };
        handle(p, 0)
    }

    fn new_page(&mut self, page: Box<[u8]>) -> u32 {
        assert!(
            self.pages.len() < MAX_PAGES,
            "attribute arena full ({MAX_PAGES} pages)"
        );
        self.pages.push(page);
        (self.pages.len() - 1) as u32
    }

    /// Bytes held in live blocks (length prefixes and rounding included).
    #[cfg(test)]
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// Bytes allocated: pages, free lists and the page table.
    pub fn allocated_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.len()).sum::<usize>()
            + self.pages.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
            + self.free.capacity() * std::mem::size_of::<Vec<Handle>>()
            + self.free_pages.capacity() * 4
    }

    #[cfg(test)]
    fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Pages and granules used in the current page: unchanged while
    /// allocations come from the free lists.
    #[cfg(test)]
    pub fn bump_position(&self) -> (usize, usize) {
        (self.pages.len(), self.top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seed * 31 + i * 7) as u8).collect()
    }

    #[test]
    fn alloc_get_free_reuse() {
        let mut a = Arena::default();
        let x = a.alloc(&bytes(1, 10));
        let y = a.alloc(&bytes(2, 10));
        let z = a.alloc(&bytes(3, 30));
        assert_eq!(a.get(x), &bytes(1, 10)[..]);
        assert_eq!(a.get(y), &bytes(2, 10)[..]);
        assert_eq!(a.get(z), &bytes(3, 30)[..]);
        // 1 + 10 bytes -> 3 granules; 1 + 30 -> 8.
        assert_eq!(a.live_bytes(), 12 + 12 + 32);
        a.free(y);
        assert_eq!(a.live_bytes(), 12 + 32);
        // Same size class (9..=11 bytes of data): the freed block is reused.
        let w = a.alloc(&bytes(4, 11));
        assert_eq!(w, y);
        assert_eq!(a.get(w), &bytes(4, 11)[..]);
        // Another class: not reused.
        a.free(x);
        let v = a.alloc(&bytes(5, 40));
        assert_ne!(v, x);
        assert_eq!(a.get(v), &bytes(5, 40)[..]);
        assert_eq!(a.get(z), &bytes(3, 30)[..], "neighbours untouched");
        assert_eq!(a.get(w), &bytes(4, 11)[..]);
    }

    #[test]
    fn size_classes_and_prefix_lengths() {
        let mut a = Arena::default();
        let mut live = Vec::new();
        for len in [0usize, 1, 2, 3, 4, 126, 127, 128, 129, 1000, 16_383, 16_384] {
            live.push((a.alloc(&bytes(len, len)), len));
        }
        for &(h, len) in &live {
            assert_eq!(a.get(h), &bytes(len, len)[..], "len {len}");
        }
        // Free all, then the same sizes come back from the free lists.
        let before = a.pages();
        for &(h, _) in &live {
            a.free(h);
        }
        assert_eq!(a.live_bytes(), 0);
        let mut again: Vec<Handle> = live
            .iter()
            .map(|&(_, len)| a.alloc(&bytes(len + 1, len)))
            .collect();
        let mut old: Vec<Handle> = live.iter().map(|&(h, _)| h).collect();
        again.sort_unstable();
        old.sort_unstable();
        assert_eq!(again, old);
        assert_eq!(a.pages(), before);
    }

    #[test]
    fn many_pages() {
        let mut a = Arena::default();
        // ~3.5 MiB of 100-byte sets: 4 pages, tails reused.
        let hs: Vec<Handle> = (0..36_000).map(|i| a.alloc(&bytes(i, 100))).collect();
        assert_eq!(a.pages(), 4);
        for (i, &h) in hs.iter().enumerate() {
            assert_eq!(a.get(h), &bytes(i, 100)[..]);
        }
        let mut sorted = hs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), hs.len(), "distinct handles");
        // Free every other one and refill: no new page.
        for &h in hs.iter().step_by(2) {
            a.free(h);
        }
        // 102 bytes: the same 26 granules as 100 with its 1-byte length.
        let pos = a.bump_position();
        for i in 0..18_000 {
            a.alloc(&bytes(i, 102));
        }
        assert_eq!(a.bump_position(), pos);
        assert_eq!(a.pages(), 4);
        for (i, &h) in hs.iter().enumerate().skip(1).step_by(2) {
            assert_eq!(a.get(h), &bytes(i, 100)[..]);
        }
    }

    #[test]
    fn page_tail_is_reused() {
        let mut a = Arena::default();
        // 2 + 2000 bytes -> 501 granules; a page holds 523 of them.
        let n = PAGE / GRANULE / 501;
        for i in 0..n {
            a.alloc(&bytes(i, 2000));
        }
        a.alloc(&bytes(9, 2000));
        assert_eq!(a.pages(), 2);
        // The first page's tail (PAGE/4 - 523*501 granules) is a free block.
        let rest = PAGE / GRANULE - n * 501;
        let data_len = rest * GRANULE - 2;
        assert_eq!(granules(data_len), rest);
        let h = a.alloc(&bytes(7, data_len));
        assert_eq!(split(h).0, 0, "carved from the first page's tail");
        assert_eq!(a.get(h), &bytes(7, data_len)[..]);
    }

    #[test]
    fn large_sets_get_their_own_page() {
        let mut a = Arena::default();
        let small = a.alloc(&bytes(1, 50));
        let big = a.alloc(&bytes(2, 70_000));
        assert_eq!(split(big).1, 0);
        assert_ne!(split(big).0, split(small).0);
        assert_eq!(a.get(big), &bytes(2, 70_000)[..]);
        let allocated = a.allocated_bytes();
        a.free(big);
        assert!(a.allocated_bytes() < allocated - 60_000, "page released");
        // The page index is reused by the next large set.
        let big2 = a.alloc(&bytes(3, LARGE + 1));
        assert_eq!(split(big2).0, split(big).0);
        assert_eq!(a.get(big2), &bytes(3, LARGE + 1)[..]);
        assert_eq!(a.get(small), &bytes(1, 50)[..]);
        // Small sets keep coming from the ordinary page.
        let s2 = a.alloc(&bytes(4, 50));
        assert_eq!(split(s2).0, split(small).0);
    }
}
