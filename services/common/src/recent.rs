//! A memo of the last few results of a pure function of a string: the route pattern of a
//! path, the parse of a URL. Bounded in entries and in key length, replaced in turn, so a
//! client sending endless distinct keys costs each of them the function again, no memory.

/// The last `capacity` keys of at most `longest_key` bytes, with their values.
pub(crate) struct Recent<V> {
    entries: Vec<(Box<str>, V)>,
    /// The entry the next new key replaces, once full.
    next: usize,
    capacity: usize,
    longest_key: usize,
}

impl<V: Clone> Recent<V> {
    pub(crate) const fn new(capacity: usize, longest_key: usize) -> Self {
        Self {
            entries: Vec::new(),
            next: 0,
            capacity,
            longest_key,
        }
    }

    /// The value remembered for `key`, or `make()`'s, remembered when the key is short enough.
    pub(crate) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> V {
        if let Some((_, value)) = self.entries.iter().find(|(seen, _)| **seen == *key) {
            return value.clone();
        }
        let value = make();
        if key.len() <= self.longest_key && self.capacity > 0 {
            let entry = (Box::from(key), value.clone());
            if self.entries.len() < self.capacity {
                self.entries.push(entry);
            } else {
                self.entries[self.next] = entry;
                self.next = (self.next + 1) % self.capacity;
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_keys_up_to_its_bounds() {
        let mut recent = Recent::new(2, 4);
        let mut calls = 0;
        let mut get = |recent: &mut Recent<usize>, key: &str| {
            recent.get_or_insert_with(key, || {
                calls += 1;
                key.len()
            })
        };
        assert_eq!(get(&mut recent, "a"), 1);
        assert_eq!(get(&mut recent, "a"), 1);
        assert_eq!(get(&mut recent, "bb"), 2);
        assert_eq!(get(&mut recent, "ccc"), 3); // replaces "a"
        assert_eq!(get(&mut recent, "bb"), 2);
        assert_eq!(get(&mut recent, "a"), 1); // made again, replaces "bb"
        assert_eq!(get(&mut recent, "toolong"), 7);
        assert_eq!(get(&mut recent, "toolong"), 7); // never remembered
        assert_eq!(calls, 6);
        assert_eq!(recent.entries.len(), 2);
    }
}
