//! The WAL writer's table of declared series: which WAL ref holds a label set, and for
//! each WAL ref how many agent refs still use it and when the last one retired.
//!
//! At a million series this table is the writer's whole memory. Two hash maps
//! (`Key128 → ref` and `ref → state`, 24- and 16-byte entries) cost 84 bytes a series
//! right after they doubled; here each series is one 32-byte entry in fixed pages (no
//! doubling slack, no copy when the table grows) found through two tables of 4-byte
//! entry numbers: about 42 bytes a series at the same moment.

use hashbrown::HashTable;
use trawl_core::labels::Key128;

/// What the writer knows of one series declared in the WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RefState {
    /// Agent refs mapped to it that are not retired: while any is, samples may still
    /// come.
    pub(super) users: u32,
    /// The segment being written when the last user retired (`u32::MAX` while used).
    pub(super) retired_at: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Key128,
    wal_ref: u64,
    st: RefState,
}

/// Entries per page (128 KiB pages: each its own mapping, returned whole when the
/// table shrinks); small in tests, so that they reach compaction.
const PAGE: usize = if cfg!(test) { 64 } else { 4096 };

/// A WAL ref's hash in the ref table (refs are sequential: mixed so that they spread).
fn ref_hash(r: u64) -> u64 {
    let z = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^ (z >> 29)
}

/// Declared series, by label key and by WAL ref.
#[derive(Debug, Default)]
pub(super) struct Declared {
    pages: Vec<Vec<Entry>>,
    /// Entry numbers given back, reused before new ones.
    free: Vec<u32>,
    /// Entries handed out, free ones included.
    high: u32,
    /// The entry that holds a label set (the newest declaration of it).
    by_key: HashTable<u32>,
    /// The entry of each WAL ref.
    by_ref: HashTable<u32>,
}

impl Declared {
    fn entry(&self, i: u32) -> &Entry {
        let i = i as usize;
        // Entry numbers in the tables are below `high`: their page exists.
        &self.pages[i / PAGE][i % PAGE]
    }

    fn entry_mut(&mut self, i: u32) -> &mut Entry {
        let i = i as usize;
        &mut self.pages[i / PAGE][i % PAGE]
    }

    /// Series declared and not yet forgotten.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_ref.len()
    }

    /// The WAL ref that holds label set `key`.
    pub(super) fn ref_of(&self, key: Key128) -> Option<u64> {
        let pages = &self.pages;
        self.by_key
            .find(key.0, |&i| {
                let i = i as usize;
                pages[i / PAGE][i % PAGE].key == key
            })
            .map(|&i| self.entry(i).wal_ref)
    }

    fn find_ref(&self, r: u64) -> Option<u32> {
        let pages = &self.pages;
        self.by_ref
            .find(ref_hash(r), |&i| {
                let i = i as usize;
                pages[i / PAGE][i % PAGE].wal_ref == r
            })
            .copied()
    }

    /// The state of WAL ref `r`.
    pub(super) fn state(&self, r: u64) -> Option<RefState> {
        self.find_ref(r).map(|i| self.entry(i).st)
    }

    /// The state of WAL ref `r`, to change.
    pub(super) fn state_mut(&mut self, r: u64) -> Option<&mut RefState> {
        let i = self.find_ref(r)?;
        Some(&mut self.entry_mut(i).st)
    }

    /// Declares label set `key` under WAL ref `r` (which becomes the ref `key` maps
    /// to; a ref declared before is replaced).
    pub(super) fn insert(&mut self, key: Key128, r: u64, st: RefState) {
        self.put(key, r, st, true);
    }

    /// [`Declared::insert`], where `link` says whether `key` maps to the entry.
    fn put(&mut self, key: Key128, r: u64, st: RefState, link: bool) {
        if let Some(i) = self.find_ref(r) {
            self.unlink(i);
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = self.high;
                if i as usize / PAGE == self.pages.len() {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                self.high += 1;
                i
            }
        };
        let e = Entry {
            key,
            wal_ref: r,
            st,
        };
        let page = &mut self.pages[i as usize / PAGE];
        if page.len() == i as usize % PAGE {
            page.push(e);
        } else {
            page[i as usize % PAGE] = e;
        }
        let pages = &self.pages;
        let at = |j: u32| &pages[j as usize / PAGE][j as usize % PAGE];
        if link {
            match self.by_key.find_entry(key.0, |&j| at(j).key == key) {
                Ok(mut o) => *o.get_mut() = i,
                Err(_) => {
                    self.by_key.insert_unique(key.0, i, |&j| at(j).key.0);
                }
            }
        }
        self.by_ref
            .insert_unique(ref_hash(r), i, |&j| ref_hash(at(j).wal_ref));
    }

    /// Takes entry `i` out of both tables and frees it.
    fn unlink(&mut self, i: u32) {
        let Entry { key, wal_ref, .. } = *self.entry(i);
        if let Ok(o) = self.by_ref.find_entry(ref_hash(wal_ref), |&j| j == i) {
            o.remove();
        }
        if let Ok(o) = self.by_key.find_entry(key.0, |&j| j == i) {
            o.remove();
        }
        self.free.push(i);
    }

    /// Keeps the refs whose state passes `keep`, forgetting the others (and their label
    /// sets, where they were the newest declaration). Empty pages at the end are given
    /// back.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&RefState) -> bool) {
        let gone: Vec<u32> = self
            .by_ref
            .iter()
            .copied()
            .filter(|&i| !keep(&self.entry(i).st))
            .collect();
        for i in gone {
            self.unlink(i);
        }
        self.compact();
    }

    /// Moves the live entries into the lowest numbers when at least a page could be
    /// returned, and returns the pages past them.
    fn compact(&mut self) {
        let live = self.by_ref.len();
        if (self.high as usize).saturating_sub(live) < PAGE {
            return;
        }
        let mut entries: Vec<Entry> = self.by_ref.iter().map(|&i| *self.entry(i)).collect();
        // The table's order is its hash order, not insertion: sorting by ref gives
        // the same layout for the same series, whatever the history.
        entries.sort_unstable_by_key(|e| e.wal_ref);
        // Whether a label set maps to the entry (not when a newer declaration of it
        // replaced it, or that one was forgotten).
        let linked: Vec<bool> = entries
            .iter()
            .map(|e| self.ref_of(e.key) == Some(e.wal_ref))
            .collect();
        *self = Declared::default();
        for (e, link) in entries.into_iter().zip(linked) {
            self.put(e.key, e.wal_ref, e.st, link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The two maps the table replaces, with the same rules.
    #[derive(Default)]
    struct Model {
        index: HashMap<Key128, u64>,
        refs: HashMap<u64, (Key128, RefState)>,
    }

    impl Model {
        fn forget(&mut self, r: u64) {
            if let Some((k, _)) = self.refs.remove(&r)
                && self.index.get(&k) == Some(&r)
            {
                self.index.remove(&k);
            }
        }
        fn insert(&mut self, k: Key128, r: u64, st: RefState) {
            self.forget(r);
            self.refs.insert(r, (k, st));
            self.index.insert(k, r);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u16, u32),
        Retire(u16, u32),
        Retain(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Checkpoints are rare: between two, enough retires pile up to compact.
            100 => (0u8..40, 0u16..1500, 0u32..2).prop_map(|(k, r, u)| Op::Insert(k, r, u)),
            99 => (0u16..1500, 0u32..20).prop_map(|(r, s)| Op::Retire(r, s)),
            1 => (0u32..20).prop_map(Op::Retain),
        ]
    }

    fn key(k: u8) -> Key128 {
        Key128(
            u64::from(k).wrapping_mul(0xA24B_AED4_963E_E407),
            u64::from(k),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the mix of declarations (new label sets, label sets declared again
        /// under new refs, refs declared again), retirements and checkpoint-style
        /// forgetting (which compacts the pages), the table answers as the two maps do.
        #[test]
        fn answers_as_two_maps(ops in proptest::collection::vec(op(), 1..6_000)) {
            let mut t = Declared::default();
            let mut m = Model::default();
            for o in ops {
                match o {
                    Op::Insert(k, r, users) => {
                        let st = RefState { users, retired_at: if users > 0 { u32::MAX } else { 5 } };
                        t.insert(key(k), u64::from(r), st);
                        m.insert(key(k), u64::from(r), st);
                    }
                    Op::Retire(r, seg) => {
                        let r = u64::from(r);
                        let a = t.state_mut(r).map(|s| { s.users = s.users.saturating_sub(1); s.retired_at = seg; *s });
                        let b = m.refs.get_mut(&r).map(|(_, s)| { s.users = s.users.saturating_sub(1); s.retired_at = seg; *s });
                        prop_assert_eq!(a, b);
                    }
                    Op::Retain(n) => {
                        let keep = |s: &RefState| s.users > 0 || s.retired_at > n;
                        t.retain(keep);
                        let gone: Vec<u64> = m.refs.iter().filter(|(_, (_, s))| !keep(s)).map(|(r, _)| *r).collect();
                        for r in gone { m.forget(r); }
                        for k in 0..40u8 {
                            prop_assert_eq!(t.ref_of(key(k)), m.index.get(&key(k)).copied());
                        }
                    }
                }
                prop_assert_eq!(t.len(), m.refs.len());
            }
            for k in 0..40u8 {
                prop_assert_eq!(t.ref_of(key(k)), m.index.get(&key(k)).copied());
            }
            for r in 0..1500u64 {
                prop_assert_eq!(t.state(r), m.refs.get(&r).map(|(_, s)| *s));
            }
        }
    }

    /// Forgetting most series gives their pages back.
    #[test]
    fn forgetting_returns_pages() {
        let mut t = Declared::default();
        let used = RefState {
            users: 1,
            retired_at: u32::MAX,
        };
        for r in 0..10 * PAGE as u64 {
            t.insert(Key128(r.wrapping_mul(0x9E37_79B9_7F4A_7C15), r), r, used);
        }
        assert_eq!(t.pages.len(), 10);
        for r in 0..10 * PAGE as u64 {
            if r % 10 != 0 {
                t.state_mut(r).expect("declared above").users = 0;
            }
        }
        t.retain(|s| s.users > 0);
        assert_eq!(t.len(), PAGE);
        assert_eq!(t.pages.len(), 1);
        for r in (0..10 * PAGE as u64).step_by(10) {
            assert_eq!(
                t.ref_of(Key128(r.wrapping_mul(0x9E37_79B9_7F4A_7C15), r)),
                Some(r)
            );
        }
    }
}
