//! The storage behind [`Environ`](crate::Environ)'s variables: every name and
//! value in one byte buffer, with a small index of where each one is.
//!
//! A request's environ holds a few dozen short variables. Keeping them as a
//! map of owned vectors cost two allocations per variable and a tree walk
//! (a string comparison per level) per lookup. Here a request's variables
//! share one buffer; a lookup scans the index comparing a one-word tag made
//! from each name (its length and three of its bytes), and compares bytes only
//! when the tags agree; iteration sorts a copy of the index by name. The
//! buffers of a dropped environ are kept by its thread for the next one, so
//! a steady stream of requests allocates nothing for its variables.
//! A front-end that already holds a request's variables in one buffer
//! (FastCGI's PARAMS) hands that buffer over whole ([`Vars::set_all_from`]):
//! it becomes the storage, and only the index is built.

use std::cell::RefCell;
use std::ops::Range;

use crate::pool::Pool;

/// Where one variable's name and value sit in [`Vars::buf`].
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// [`tag`] of the name.
    tag: u32,
    name: (u32, u32),
    value: (u32, u32),
}

/// A one-word summary of a name: equal names have equal tags, and names of
/// the same length mostly differ in their first, last or fourth-from-last
/// byte (`SERVER_PORT`, `REMOTE_PORT`; `HTTP_ACCEPT`, `HTTP_COOKIE`;
/// `SERVER_NAME`, `SERVER_PORT`).
fn tag(name: &[u8]) -> u32 {
    let len = name.len();
    let first = name.first().copied().unwrap_or(0);
    let last = name.last().copied().unwrap_or(0);
    let inner = len
        .checked_sub(4)
        .and_then(|i| name.get(i))
        .copied()
        .unwrap_or(0);
    (len.min(0xff) as u32) << 24 | u32::from(first) << 16 | u32::from(inner) << 8 | u32::from(last)
}

impl Entry {
    fn name(self) -> Range<usize> {
        self.name.0 as usize..self.name.1 as usize
    }

    fn value(self) -> Range<usize> {
        self.value.0 as usize..self.value.1 as usize
    }
}

/// Buffers a thread keeps for its next environ.
const POOL_SIZE: usize = 4;
/// Larger buffers are freed rather than kept.
const POOL_MAX_BYTES: usize = 16 * 1024;
const POOL_MAX_ENTRIES: usize = 256;

thread_local! {
    static POOL: Pool<(Vec<u8>, Vec<Entry>)> = const { RefCell::new(Vec::new()) };
}

/// Variables by name, bytes to bytes, iterated in name order.
pub(crate) struct Vars {
    buf: Vec<u8>,
    /// In no particular order; names unique.
    entries: Vec<Entry>,
    /// Bytes of `buf` no entry refers to any more (replaced or removed).
    garbage: usize,
    /// One bit per tag hash of every name ever set (never cleared): a name
    /// whose bit is clear is not here, so building an environ of distinct
    /// names does not search the list once per name.
    seen: [u64; 4],
}

/// The bit of `tag` in [`Vars::seen`]: which of the 4 words, and the mask.
fn seen_bit(tag: u32) -> (usize, u64) {
    let h = tag.wrapping_mul(0x9e37_79b1) >> 24;
    ((h >> 6) as usize & 3, 1u64 << (h & 63))
}

impl Vars {
    /// Empty, reusing buffers this thread kept if it has any.
    pub(crate) fn new() -> Vars {
        let (buf, entries) = crate::pool::take(&POOL).unwrap_or_default();
        Vars {
            buf,
            entries,
            garbage: 0,
            seen: [0; 4],
        }
    }

    fn bytes(&self, r: Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }

    /// The index of the entry called `name`.
    fn search(&self, name: &[u8]) -> Option<usize> {
        let tag = tag(name);
        let (word, mask) = seen_bit(tag);
        if self.seen.get(word).is_none_or(|w| w & mask == 0) {
            return None;
        }
        self.entries
            .iter()
            .position(|e| e.tag == tag && self.bytes(e.name()) == name)
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<&[u8]> {
        let i = self.search(name)?;
        self.entries.get(i).map(|e| self.bytes(e.value()))
    }

    pub(crate) fn contains(&self, name: &[u8]) -> bool {
        self.search(name).is_some()
    }

    /// Adds a new entry (its name not there yet).
    fn add(&mut self, e: Entry) {
        let (word, mask) = seen_bit(e.tag);
        if let Some(w) = self.seen.get_mut(word) {
            *w |= mask;
        }
        self.entries.push(e);
    }

    /// Appends `bytes` to the buffer; their range.
    fn push(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        (pos(start), pos(self.buf.len()))
    }

    /// Sets `name` to the bytes `fill` appends to the buffer it is given.
    pub(crate) fn set_with(&mut self, name: &[u8], fill: impl FnOnce(&mut Vec<u8>)) {
        let found = self.search(name);
        let start = self.buf.len();
        fill(&mut self.buf);
        let value = (pos(start), pos(self.buf.len()));
        match found {
            Some(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    self.garbage += e.value().len();
                    e.value = value;
                }
                self.compact_if_wasteful();
            }
            None => {
                let tag = tag(name);
                let name = self.push(name);
                self.add(Entry { tag, name, value });
            }
        }
    }

    /// Takes `buf` as the storage of the pairs `next` finds in it, rather
    /// than copying each name and value; returns the buffer it held before,
    /// emptied, for the caller to fill next time. `next` gets the unread
    /// rest of `buf` and gives the ranges (within what it got) of the next
    /// name and value and the bytes the pair takes, or `None` at the end. A
    /// name seen again replaces the earlier value, as [`Vars::set`] does.
    /// When variables are already set (or `buf` is too large for the index)
    /// each pair is copied in with [`Vars::set`], and `buf` itself comes back.
    pub(crate) fn set_all_from(
        &mut self,
        buf: Vec<u8>,
        mut next: impl FnMut(&[u8]) -> PairLayout,
    ) -> Vec<u8> {
        if !self.entries.is_empty() || u32::try_from(buf.len()).is_err() {
            let mut at = 0;
            while let Some((name, value, used)) = pair_at(&buf, at, &mut next) {
                let bytes = |r: Range<usize>| buf.get(r).unwrap_or_default();
                self.set(bytes(name), bytes(value));
                at += used;
            }
            let mut buf = buf;
            buf.clear();
            return buf;
        }
        let mut old = std::mem::take(&mut self.buf);
        old.clear();
        self.garbage = 0;
        self.seen = [0; 4];
        let mut at = 0;
        while let Some((name, value, used)) = pair_at(&buf, at, &mut next) {
            at += used;
            let Some(name_bytes) = buf.get(name.clone()) else {
                break;
            };
            let tag = tag(name_bytes);
            let (word, mask) = seen_bit(tag);
            let entry = Entry {
                tag,
                name: (pos(name.start), pos(name.end)),
                value: (pos(value.start), pos(value.end)),
            };
            let seen = self.seen.get(word).is_some_and(|w| w & mask != 0);
            let found = if seen {
                self.entries
                    .iter_mut()
                    .find(|e| e.tag == tag && buf.get(e.name()).unwrap_or_default() == name_bytes)
            } else {
                None
            };
            match found {
                Some(e) => {
                    self.garbage += e.value().len() + name_bytes.len();
                    e.value = entry.value;
                }
                None => self.add(entry),
            }
        }
        self.buf = buf;
        old
    }

    pub(crate) fn set(&mut self, name: &[u8], value: &[u8]) {
        self.set_with(name, |buf| buf.extend_from_slice(value));
    }

    pub(crate) fn set_default(&mut self, name: &[u8], value: &[u8]) {
        if self.search(name).is_none() {
            let tag = tag(name);
            let name = self.push(name);
            let value = self.push(value);
            self.add(Entry { tag, name, value });
        }
    }

    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<Vec<u8>> {
        let i = self.search(name)?;
        let e = self.entries.swap_remove(i);
        let value = self.bytes(e.value()).to_vec();
        self.garbage += e.name().len() + e.value().len();
        self.compact_if_wasteful();
        Some(value)
    }

    /// The variables sorted by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut sorted = self.entries.clone();
        sorted.sort_unstable_by(|a, b| self.bytes(a.name()).cmp(self.bytes(b.name())));
        sorted
            .into_iter()
            .map(|e| (self.bytes(e.name()), self.bytes(e.value())))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Rewrites the buffer once more than half of it is unused, so an app
    /// that keeps replacing a variable does not grow it without end.
    fn compact_if_wasteful(&mut self) {
        if self.garbage <= 4096 || self.garbage * 2 <= self.buf.len() {
            return;
        }
        let mut buf = Vec::with_capacity(self.buf.len() - self.garbage);
        for e in &mut self.entries {
            for range in [&mut e.name, &mut e.value] {
                let start = buf.len();
                buf.extend_from_slice(
                    self.buf
                        .get(range.0 as usize..range.1 as usize)
                        .unwrap_or_default(),
                );
                *range = (pos(start), pos(buf.len()));
            }
        }
        self.buf = buf;
        self.garbage = 0;
    }
}

/// What finds the pair at the start of a slice: the ranges of its name and
/// its value within the slice, and the bytes it takes; `None` when none is left.
pub(crate) type PairLayout = Option<(Range<usize>, Range<usize>, usize)>;

/// The pair `next` finds at `at` in `buf`, its ranges made absolute; `None`
/// at the end, or when `next` answers with ranges outside what it was given
/// or a pair of no bytes (which would never end).
fn pair_at(buf: &[u8], at: usize, next: &mut impl FnMut(&[u8]) -> PairLayout) -> PairLayout {
    let rest = buf.get(at..).filter(|r| !r.is_empty())?;
    let (name, value, used) = next(rest)?;
    if used == 0 || used > rest.len() || name.start > name.end || value.start > value.end {
        return None;
    }
    if name.end > rest.len() || value.end > rest.len() {
        return None;
    }
    Some((
        name.start + at..name.end + at,
        value.start + at..value.end + at,
        used,
    ))
}

/// A buffer offset as stored in an [`Entry`]. An environ of 4 GiB is not a
/// request's; past that the offsets saturate and lookups find empty bytes
/// rather than panic.
fn pos(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Drop for Vars {
    fn drop(&mut self) {
        if self.buf.capacity() > POOL_MAX_BYTES || self.entries.capacity() > POOL_MAX_ENTRIES {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut entries = std::mem::take(&mut self.entries);
        buf.clear();
        entries.clear();
        crate::pool::give_back(&POOL, POOL_SIZE, (buf, entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_replace_remove_in_order() {
        let mut v = Vars::new();
        v.set(b"HTTP_ACCEPT", b"*/*");
        v.set(b"HTTP_COOKIE", b"c");
        assert_eq!(v.get(b"HTTP_COOKIE"), Some(&b"c"[..]));
        assert_eq!(v.get(b"HTTP_ACCEPT"), Some(&b"*/*"[..]));
        assert_eq!(v.get(b"HTTP_ACCEPX"), None);
        assert_eq!(v.remove(b"HTTP_ACCEPT"), Some(b"*/*".to_vec()));
        assert_eq!(v.remove(b"HTTP_COOKIE"), Some(b"c".to_vec()));
        v.set(b"b", b"2");
        v.set(b"a", b"1");
        v.set(b"c", b"3");
        v.set(b"b", b"two");
        v.set_default(b"a", b"x");
        v.set_default(b"d", b"4");
        assert_eq!(v.get(b"b"), Some(&b"two"[..]));
        assert_eq!(v.remove(b"c"), Some(b"3".to_vec()));
        assert_eq!(v.remove(b"c"), None);
        let all: Vec<_> = v.iter().collect();
        assert_eq!(
            all,
            [
                (&b"a"[..], &b"1"[..]),
                (&b"b"[..], &b"two"[..]),
                (&b"d"[..], &b"4"[..])
            ]
        );
        assert!(v.contains(b"d") && !v.contains(b"c"));
    }

    #[test]
    fn many_names_sharing_filter_bits_are_each_found_and_replaced() {
        // 600 names over 256 filter bits: every bit is shared many times.
        let mut v = Vars::new();
        let names: Vec<Vec<u8>> = (0..600)
            .map(|i| format!("HTTP_X_{i}").into_bytes())
            .collect();
        for n in &names {
            v.set(n, b"1");
        }
        for n in &names {
            v.set(n, n);
        }
        assert_eq!(v.len(), names.len());
        for n in &names {
            assert_eq!(v.get(n), Some(&n[..]));
        }
        assert_eq!(v.get(b"HTTP_X_600"), None);
        assert_eq!(v.remove(b"HTTP_X_7"), Some(b"HTTP_X_7".to_vec()));
        assert!(!v.contains(b"HTTP_X_7"));
        v.set(b"HTTP_X_7", b"again");
        assert_eq!(v.get(b"HTTP_X_7"), Some(&b"again"[..]));
    }

    #[test]
    fn replacing_forever_stays_bounded() {
        let mut v = Vars::new();
        let big = vec![b'x'; 1000];
        for _ in 0..10_000 {
            v.set(b"K", &big);
        }
        assert!(v.buf.len() < 16 * 1024, "{}", v.buf.len());
        assert_eq!(v.get(b"K"), Some(&big[..]));
    }

    /// "name=value;" pairs, for the tests of `set_all_from`.
    fn semicolon_pairs(rest: &[u8]) -> PairLayout {
        let end = rest.iter().position(|&b| b == b';')?;
        let eq = rest.get(..end)?.iter().position(|&b| b == b'=')?;
        Some((0..eq, eq + 1..end, end + 1))
    }

    #[test]
    fn set_all_from_keeps_the_buffer_and_the_last_of_a_name() {
        let mut v = Vars::new();
        let spare = v.set_all_from(b"A=1;BB=22;A=3;C=;".to_vec(), semicolon_pairs);
        assert!(spare.is_empty());
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(b"A"), Some(&b"3"[..]));
        assert_eq!(v.get(b"BB"), Some(&b"22"[..]));
        assert_eq!(v.get(b"C"), Some(&b""[..]));
        // The variables live in the buffer given (no copy).
        assert_eq!(v.buf, b"A=1;BB=22;A=3;C=;");
        // Setting, replacing and removing afterwards work as usual.
        v.set(b"D", b"4");
        v.set(b"BB", b"x");
        assert_eq!(v.remove(b"A"), Some(b"3".to_vec()));
        let all: Vec<_> = v.iter().collect();
        assert_eq!(
            all,
            [
                (&b"BB"[..], &b"x"[..]),
                (&b"C"[..], &b""[..]),
                (&b"D"[..], &b"4"[..])
            ]
        );
    }

    #[test]
    fn set_all_from_copies_when_variables_are_already_set() {
        let mut v = Vars::new();
        v.set(b"A", b"0");
        v.set(b"Z", b"26");
        let given = b"A=1;B=2;".to_vec();
        let back = v.set_all_from(given, semicolon_pairs);
        assert!(
            back.is_empty() && back.capacity() >= 8,
            "the buffer given comes back"
        );
        assert_eq!(v.get(b"A"), Some(&b"1"[..]));
        assert_eq!(v.get(b"B"), Some(&b"2"[..]));
        assert_eq!(v.get(b"Z"), Some(&b"26"[..]));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn set_all_from_stops_at_an_answer_outside_the_slice() {
        let mut v = Vars::new();
        v.set_all_from(b"A=1;rest".to_vec(), semicolon_pairs);
        assert_eq!(v.len(), 1);
        let mut calls = 0;
        let mut bad = Vars::new();
        bad.set_all_from(b"abc".to_vec(), |_: &[u8]| {
            calls += 1;
            Some((0..1, 1..9, 3))
        });
        assert_eq!((bad.len(), calls), (0, 1));
        let mut stuck = Vars::new();
        stuck.set_all_from(b"abc".to_vec(), |_: &[u8]| {
            calls += 1;
            Some((0..1, 1..2, 0))
        });
        assert_eq!((stuck.len(), calls), (0, 2));
    }

    #[test]
    fn set_all_from_finds_each_of_many_names() {
        // 600 names over 256 filter bits, each twice: the second wins.
        let mut text = Vec::new();
        for round in 0..2 {
            for i in 0..600 {
                text.extend_from_slice(format!("HTTP_X_{i}={round};").as_bytes());
            }
        }
        let mut v = Vars::new();
        v.set_all_from(text, semicolon_pairs);
        assert_eq!(v.len(), 600);
        for i in 0..600 {
            assert_eq!(v.get(format!("HTTP_X_{i}").as_bytes()), Some(&b"1"[..]));
        }
    }

    #[test]
    fn buffers_are_reused_clean() {
        let mut v = Vars::new();
        v.set(b"A", b"1");
        drop(v);
        let v = Vars::new();
        assert_eq!(v.len(), 0);
        assert_eq!(v.get(b"A"), None);
    }
}
