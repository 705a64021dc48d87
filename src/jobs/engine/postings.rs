//! The index's postings of one file, packed: per term (ascending id) the
//! id delta and the byte length of its entry, then per block the block
//! delta shifted left (low bit set when a count other than 1 follows) and
//! that count, all LEB128 varints.

/// A term's id and the (block, count) pairs it occurs in, blocks ascending.
pub(super) type TermBlocks = (u32, Vec<(u32, u32)>);

/// Packs `postings`, sorted by term id.
pub(super) fn encode(postings: Vec<TermBlocks>) -> Vec<u8> {
    let mut packed = Vec::new();
    let mut payload = Vec::new();
    let mut previous_id = 0;
    for (id, blocks) in postings {
        payload.clear();
        let mut previous_block = 0;
        for (block, count) in blocks {
            // The low bit says whether a count follows (most are 1).
            let delta = u64::from(block - previous_block) << 1;
            if count == 1 {
                put_varint(&mut payload, delta);
            } else {
                put_varint(&mut payload, delta | 1);
                put_varint(&mut payload, u64::from(count));
            }
            previous_block = block;
        }
        put_varint(&mut packed, u64::from(id - previous_id));
        put_varint(&mut packed, payload.len() as u64);
        packed.extend_from_slice(&payload);
        previous_id = id;
    }
    packed
}

/// Appends (block, query position, count) for every wanted term's block.
pub(super) fn decode_hits(
    mut packed: &[u8],
    wanted: &[(u32, u16)],
    hits: &mut Vec<(u32, u16, u32)>,
) {
    let mut id = 0u64;
    let mut at = 0;
    while at < wanted.len() && !packed.is_empty() {
        id += get_varint(&mut packed);
        let length = (get_varint(&mut packed) as usize).min(packed.len());
        let (mut payload, rest) = packed.split_at(length);
        packed = rest;
        while at < wanted.len() && u64::from(wanted[at].0) < id {
            at += 1;
        }
        if at == wanted.len() || u64::from(wanted[at].0) != id {
            continue;
        }
        let q = wanted[at].1;
        at += 1;
        let mut block = 0u64;
        while !payload.is_empty() {
            let delta = get_varint(&mut payload);
            block += delta >> 1;
            let count = if delta & 1 == 1 {
                get_varint(&mut payload)
            } else {
                1
            };
            hits.push((block as u32, q, count as u32));
        }
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
