//! The table's host index and names: every host key and route name of a table in one string,
//! and a hash table of small slots (where a host's key is in that string, and what it leads
//! to). A map from owned keys cost each host its own allocation and a 40-byte slot; here a
//! host costs its 12-byte slot and the bytes of its key, fewer when one of its route's hosts
//! already holds them (`svc.ns` inside `svc.ns.localhost`). A lookup hashes the key and
//! compares it with the bytes its slot points at. The hash is foldhash, randomly seeded, not
//! SipHash: only configured hosts are ever inserted (a client's host is only looked up), so
//! there is no flood of chosen keys to defend against, and a routing decision costs ~170
//! fewer instructions (callgrind: 923 -> 749 for a 31-byte host).
//!
//! Each route's keys and name take one region of the text, shared with no other route. A
//! table edited route by route copies the text and the slots (plain bytes), appends the new
//! route's region and drops the old route's slots; its region stays as dead bytes until they
//! outweigh the live ones and the text is compacted (each region moved, no route compiled).

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use hashbrown::HashTable;

use super::TableError;

/// Where a host's key or a route's name is in the table's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    len: u32,
}

/// What a host leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HostEntry {
    /// A default host: the index of its route.
    Route(usize),
    /// A tag host: the index of its tag in the table's tags.
    Tag(usize),
}

/// The host keys and route names of one table.
#[derive(Clone, Debug, Default)]
pub(super) struct Hosts {
    /// Every key and name, shrunk to fit once the table is built.
    text: String,
    slots: HashTable<Slot>,
    state: RandomState,
    /// Bytes of `text` no route uses any more (regions of routes edited or removed).
    dead: usize,
}

/// One host: its key in the text, and its entry (the route's index, or a tag's with
/// [`Slot::TAG`] set).
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: Span,
    entry: u32,
}

// === impl Hosts ===

impl Hosts {
    /// The entry of the host with table key `key`.
    pub(super) fn get(&self, key: &str) -> Option<HostEntry> {
        let hash = self.state.hash_one(key);
        let bytes = self.text.as_bytes();
        self.slots.find(hash, |slot| bytes.get(slot.key.range()) == Some(key.as_bytes())).map(Slot::entry)
    }

    /// Every host key, in no particular order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|slot| self.text(slot.key))
    }

    /// The text at `span`.
    pub(super) fn text(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or_default()
    }

    /// Where the text of the route being added starts (its hosts and name share bytes only
    /// among themselves: a route's text stays its own to read).
    pub(super) fn mark(&self) -> usize {
        self.text.len()
    }

    /// `s` in the text from `from` on, appended if it is not there yet.
    pub(super) fn place(&mut self, s: &str, from: usize, route: &str) -> Result<Span, TableError> {
        let start = match self.text.get(from..).and_then(|region| region.find(s)) {
            Some(at) => from + at,
            None => {
                self.text.push_str(s);
                self.text.len() - s.len()
            }
        };
        let too_large = || TableError::TooLarge { route: route.to_string() };
        Ok(Span {
            start: u32::try_from(start).map_err(|_| too_large())?,
            len: u32::try_from(s.len()).map_err(|_| too_large())?,
        })
    }

    /// Indexes host `key` (not indexed yet) to `entry`, its text placed from `from` on.
    pub(super) fn insert(&mut self, key: &str, entry: HostEntry, from: usize, route: &str) -> Result<(), TableError> {
        let span = self.place(key, from, route)?;
        let entry = Slot::encode(entry).ok_or_else(|| TableError::TooLarge { route: route.to_string() })?;
        let Self { text, slots, state, .. } = self;
        let hash = state.hash_one(key);
        slots.insert_unique(hash, Slot { key: span, entry }, |slot| {
            state.hash_one(text.get(slot.key.range()).unwrap_or_default())
        });
        Ok(())
    }

    /// A copy to edit, with room in the text for `more` bytes.
    pub(super) fn copy(&self, more: usize) -> Self {
        let mut text = String::with_capacity(self.text.len() + more);
        text.push_str(&self.text);
        Self { text, slots: self.slots.clone(), state: self.state.clone(), dead: self.dead }
    }

    /// Gives each host the entry `f` maps its entry to, dropping the hosts it maps to None;
    /// returns the text the dropped hosts' keys span (from the first byte to the last), if any.
    pub(super) fn remap(&mut self, mut f: impl FnMut(HostEntry) -> Option<HostEntry>) -> Option<(usize, usize)> {
        let mut dropped: Option<(usize, usize)> = None;
        self.slots.retain(|slot| match f(slot.entry()).and_then(Slot::encode) {
            Some(entry) => {
                slot.entry = entry;
                true
            }
            None => {
                let range = slot.key.range();
                dropped =
                    Some(dropped.map_or((range.start, range.end), |(s, e)| (s.min(range.start), e.max(range.end))));
                false
            }
        });
        dropped
    }

    /// Counts `bytes` of the text as no longer used.
    pub(super) fn bury(&mut self, bytes: usize) {
        self.dead += bytes;
    }

    /// True when the text holds more unused bytes than used ones.
    pub(super) fn wants_compaction(&self) -> bool {
        self.dead > self.text.len() - self.dead.min(self.text.len())
    }

    /// Rewrites the text with only the used regions: `names` are the routes' names (by route
    /// index, moved with their regions) and `owner` gives the route index a host belongs to.
    pub(super) fn compact(&mut self, mut names: Vec<&mut Span>, owner: impl Fn(HostEntry) -> usize) {
        let mut regions: Vec<(u32, u32)> = names.iter().map(|n| (n.start, n.start + n.len)).collect();
        for slot in &self.slots {
            if let Some(region) = regions.get_mut(owner(slot.entry())) {
                region.0 = region.0.min(slot.key.start);
                region.1 = region.1.max(slot.key.start + slot.key.len);
            }
        }
        let mut text = String::with_capacity(self.text.len() - self.dead.min(self.text.len()));
        // Where each region starts in the new text.
        let mut moved = Vec::with_capacity(regions.len());
        for &(start, end) in &regions {
            moved.push(text.len() as u32);
            text.push_str(self.text.get(start as usize..end as usize).unwrap_or_default());
        }
        let new_start = |old: u32, route: usize| match (regions.get(route), moved.get(route)) {
            (Some(&(start, _)), Some(&to)) => old - start + to,
            _ => old,
        };
        for (route, name) in names.iter_mut().enumerate() {
            name.start = new_start(name.start, route);
        }
        for slot in self.slots.iter_mut() {
            slot.key.start = new_start(slot.key.start, owner(slot.entry()));
        }
        self.text = text;
        self.dead = 0;
    }

    /// The text's length and how much of it is dead.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.text.len(), self.dead)
    }

    /// Gives back the slots' room once they are used to less than a quarter (after many
    /// removals by edits; a whole rebuild shrinks them to fit).
    pub(super) fn shrink_if_sparse(&mut self) {
        if self.slots.len() * 4 < self.slots.capacity() {
            let Self { text, slots, state, .. } = self;
            slots.shrink_to_fit(|slot| state.hash_one(text.get(slot.key.range()).unwrap_or_default()));
        }
    }

    /// How many hosts the slots have room for.
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.slots.capacity()
    }

    /// Gives back the room the text was given beyond what it holds.
    pub(super) fn shrink_text(&mut self) {
        self.text.shrink_to_fit();
    }

    /// Gives back the room the text grew into while the table was built.
    pub(super) fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.slots.shrink_to_fit(|slot| self.state.hash_one(self.text.get(slot.key.range()).unwrap_or_default()));
    }
}

// === impl Span ===

impl Span {
    /// Where it starts in the text.
    pub(super) fn start(self) -> usize {
        self.start as usize
    }

    /// Its length in bytes.
    pub(super) fn len(self) -> usize {
        self.len as usize
    }

    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

// === impl Slot ===

impl Slot {
    /// Set in `entry` for a tag.
    const TAG: u32 = 1 << 31;

    /// None when the index does not fit beside the tag bit.
    fn encode(entry: HostEntry) -> Option<u32> {
        let (index, bit) = match entry {
            HostEntry::Route(i) => (i, 0),
            HostEntry::Tag(i) => (i, Self::TAG),
        };
        u32::try_from(index).ok().filter(|i| i & Self::TAG == 0).map(|i| i | bit)
    }

    fn entry(&self) -> HostEntry {
        let index = (self.entry & !Self::TAG) as usize;
        if self.entry & Self::TAG == 0 { HostEntry::Route(index) } else { HostEntry::Tag(index) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_found_by_their_keys_and_share_their_route_s_bytes() {
        let mut hosts = Hosts::default();
        let from = hosts.mark();
        let name = hosts.place("default/hello", from, "default/hello").expect("placed");
        hosts.insert("hello.default.localhost", HostEntry::Route(0), from, "default/hello").expect("indexed");
        hosts.insert("hello.default", HostEntry::Route(0), from, "default/hello").expect("indexed");
        let text_before = hosts.text.len();
        hosts.insert("default", HostEntry::Tag(3), from, "default/hello").expect("indexed");
        assert_eq!(hosts.text.len(), text_before, "inside bytes already placed");
        let from = hosts.mark();
        hosts.insert("hello", HostEntry::Route(1), from, "default/other").expect("indexed");
        assert_eq!(hosts.text.len(), text_before + 5, "another route's bytes are not shared");
        hosts.shrink();
        assert_eq!(hosts.get("hello.default"), Some(HostEntry::Route(0)));
        assert_eq!(hosts.get("default"), Some(HostEntry::Tag(3)));
        assert_eq!(hosts.get("hello"), Some(HostEntry::Route(1)));
        assert_eq!(hosts.get("hello.default.localhos"), None);
        assert_eq!(hosts.text(name), "default/hello");
        let mut keys: Vec<&str> = hosts.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["default", "hello", "hello.default", "hello.default.localhost"]);
    }

    #[test]
    fn entries_keep_their_kind_and_index() {
        for entry in [HostEntry::Route(0), HostEntry::Route(7), HostEntry::Tag(0), HostEntry::Tag((1 << 31) - 1)] {
            let slot = Slot { key: Span::default(), entry: Slot::encode(entry).expect("fits") };
            assert_eq!(slot.entry(), entry);
        }
        assert_eq!(Slot::encode(HostEntry::Route(1 << 31)), None);
    }

    #[test]
    fn a_slot_is_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 12);
    }
}
