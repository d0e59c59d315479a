//! A whole stream's entries in one arena: their IDs, and every field and
//! value end to end in one buffer. DUMP and RESTORE of a big stream then
//! allocate a few growing vectors instead of one vector per field (which
//! was half of their time).

use super::StreamId;

/// One entry, owned: its ID and its field, value, field, value ... (to
/// build or inspect a stream; [`Entries`] stores them packed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeEntry {
    pub id: StreamId,
    pub fields: Vec<Vec<u8>>,
}

/// Entries in ID order, packed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    ids: Vec<StreamId>,
    /// Per entry: one past its last field's index in `ends`.
    entry_ends: Vec<usize>,
    /// Per field: where it ends in `bytes` (it starts where the one
    /// before it ends).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

/// One entry of [`Entries`], borrowed.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    entries: &'a Entries,
    /// Its fields' indices in `ends`.
    first: usize,
    end: usize,
}

impl<'a> EntryRef<'a> {
    /// Fields and values counted together.
    pub fn len(&self) -> usize {
        self.end - self.first
    }

    pub fn is_empty(&self) -> bool {
        self.first == self.end
    }

    /// Field or value `i`.
    pub fn field(&self, i: usize) -> &'a [u8] {
        self.entries.field(self.first + i)
    }

    /// Field, value, field, value ...
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let entries = self.entries;
        (self.first..self.end).map(move |k| entries.field(k))
    }
}

impl Entries {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &[StreamId] {
        &self.ids
    }

    fn field(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.bytes[start..self.ends[k]]
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> EntryRef<'_> {
        EntryRef {
            id: self.ids[i],
            entries: self,
            first: if i == 0 { 0 } else { self.entry_ends[i - 1] },
            end: self.entry_ends[i],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Adds a field or value to the entry being added.
    pub fn add_field(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
    }

    /// Adds the decimal text of `n` as a field or value of the entry
    /// being added.
    pub fn add_int_field(&mut self, n: i64) {
        self.add_field(crate::decimal::i64_text(n, &mut [0; 20]));
    }

    /// Ends the entry being added, `id`: the fields added since the last.
    pub fn end_entry(&mut self, id: StreamId) {
        self.ids.push(id);
        self.entry_ends.push(self.ends.len());
    }

    /// Adds entry `id` with `fields`.
    pub fn push<'f>(&mut self, id: StreamId, fields: impl IntoIterator<Item = &'f [u8]>) {
        for f in fields {
            self.add_field(f);
        }
        self.end_entry(id);
    }

    /// The entries, owned.
    pub fn to_vec(&self) -> Vec<WholeEntry> {
        self.iter()
            .map(|e| WholeEntry {
                id: e.id,
                fields: e.fields().map(<[u8]>::to_vec).collect(),
            })
            .collect()
    }
}

impl From<&[WholeEntry]> for Entries {
    fn from(entries: &[WholeEntry]) -> Entries {
        let mut out = Entries::default();
        for e in entries {
            out.push(e.id, e.fields.iter().map(Vec::as_slice));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_pack_and_read_back() {
        let owned = vec![
            WholeEntry {
                id: StreamId::new(1, 0),
                fields: vec![b"f".to_vec(), b"".to_vec()],
            },
            WholeEntry {
                id: StreamId::new(1, 1),
                fields: vec![b"a".to_vec(), b"-5".to_vec(), b"".to_vec(), b"zz".to_vec()],
            },
        ];
        let mut packed = Entries::from(&owned[..]);
        assert_eq!(packed.to_vec(), owned);
        assert_eq!(packed.get(1).field(3), b"zz");
        assert_eq!(packed.get(1).len(), 4);
        packed.add_field(b"n");
        packed.add_int_field(-5);
        packed.end_entry(StreamId::new(2, 0));
        assert_eq!(
            packed.get(2).fields().collect::<Vec<_>>(),
            [&b"n"[..], b"-5"]
        );
        assert_eq!(
            packed.ids(),
            &[
                StreamId::new(1, 0),
                StreamId::new(1, 1),
                StreamId::new(2, 0)
            ]
        );
    }
}
