//! One term's postings in the index, packed: per file that holds the term
//! (ascending id) the id delta, then per block the block delta shifted
//! left by two (bit 1 set when a count other than 1 follows, bit 0 set
//! when another block of the same file follows) and that count, all
//! LEB128 varints. Files are only ever appended with a higher id, so a
//! refresh appends and never rewrites.

/// The packed postings of one term.
#[derive(Default)]
pub(super) struct Postings {
    packed: Vec<u8>,
    last_doc: u32,
}

impl Postings {
    /// Appends `doc`'s (block, count) pairs, blocks ascending, at least
    /// one; `doc` is above every doc appended before.
    pub(super) fn push(&mut self, doc: u32, blocks: &[(u32, u32)]) {
        debug_assert!(!blocks.is_empty());
        debug_assert!(self.packed.is_empty() || doc > self.last_doc);
        // Grow by a quarter, not double: the slack is held at peak.
        let most = 5 + 10 * blocks.len();
        if self.packed.capacity() - self.packed.len() < most {
            self.packed
                .reserve_exact(most.max(self.packed.len() / 4).max(16));
        }
        put_varint(&mut self.packed, u64::from(doc - self.last_doc));
        self.last_doc = doc;
        let mut previous = 0;
        for (i, (block, count)) in blocks.iter().enumerate() {
            let more = u64::from(i + 1 < blocks.len());
            let delta = u64::from(block - previous) << 2 | more;
            previous = *block;
            if *count == 1 {
                put_varint(&mut self.packed, delta);
            } else {
                put_varint(&mut self.packed, delta | 2);
                put_varint(&mut self.packed, u64::from(*count));
            }
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.packed.capacity()
    }

    pub(super) fn shrink(&mut self) {
        self.packed.shrink_to_fit();
    }

    pub(super) fn cursor(&self) -> Cursor<'_> {
        let mut cursor = Cursor {
            rest: &self.packed,
            doc: None,
            previous: 0,
        };
        cursor.next_doc();
        cursor
    }
}

/// Reads one term's postings file by file.
pub(super) struct Cursor<'a> {
    rest: &'a [u8],
    /// The file whose blocks come next, None when all were read.
    doc: Option<u32>,
    previous: u32,
}

impl Cursor<'_> {
    pub(super) fn doc(&self) -> Option<u32> {
        self.doc
    }

    fn next_doc(&mut self) {
        self.doc = if self.rest.is_empty() {
            None
        } else {
            self.previous += get_varint(&mut self.rest) as u32;
            Some(self.previous)
        };
    }

    /// Appends the current file's (block, `q`, count) and moves on.
    pub(super) fn take_blocks(&mut self, q: u16, hits: &mut Vec<(u32, u16, u32)>) {
        let mut block = 0u32;
        while !self.rest.is_empty() {
            let value = get_varint(&mut self.rest);
            block += (value >> 2) as u32;
            let count = if value & 2 == 2 {
                get_varint(&mut self.rest) as u32
            } else {
                1
            };
            hits.push((block, q, count));
            if value & 1 == 0 {
                break;
            }
        }
        self.next_doc();
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(input: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some((&byte, rest)) = input.split_first() {
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_read_back_as_written_whatever_the_gaps_and_counts() {
        let written: Vec<(u32, Vec<(u32, u32)>)> = vec![
            (0, vec![(0, 1)]),
            (3, vec![(0, 2), (1, 1), (900, 70_000)]),
            (200_000, vec![(5, 1)]),
            (200_001, vec![(0, 1), (1, 300)]),
        ];
        let mut postings = Postings::default();
        for (doc, blocks) in &written {
            postings.push(*doc, blocks);
        }
        let mut cursor = postings.cursor();
        let mut read = Vec::new();
        while let Some(doc) = cursor.doc() {
            let mut hits = Vec::new();
            cursor.take_blocks(7, &mut hits);
            assert!(hits.iter().all(|(_, q, _)| *q == 7));
            read.push((doc, hits.iter().map(|(b, _, c)| (*b, *c)).collect()));
        }
        assert_eq!(read, written);
        assert!(Postings::default().cursor().doc().is_none());
    }
}
