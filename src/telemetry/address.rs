//! A client address's text for the authentication line, written straight
//! into the line without `fmt`: byte for byte what `IpAddr`'s `Display`
//! writes (the tests compare, over every octet and random IPv6 addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Per octet, its digits and a dot, and how many bytes of that to keep.
static OCTETS: [([u8; 4], usize); 256] = {
    let mut table = [([0u8; 4], 0usize); 256];
    let mut octet = 0;
    while octet < 256 {
        let n = octet as u8;
        table[octet] = if octet >= 100 {
            ([b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, b'.'], 4)
        } else if octet >= 10 {
            ([b'0' + n / 10, b'0' + n % 10, b'.', 0], 3)
        } else {
            ([b'0' + n, b'.', 0, 0], 2)
        };
        octet += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
pub(super) fn push_address(line: &mut Vec<u8>, client: IpAddr) {
    match client {
        IpAddr::V4(v4) => push_ipv4(line, v4),
        IpAddr::V6(v6) => push_ipv6(line, v6),
    }
}

#[inline]
fn push_ipv4(line: &mut Vec<u8>, v4: Ipv4Addr) {
    let mut text = [0u8; 16];
    let mut len = 0;
    for octet in v4.octets() {
        let (digits, used) = &OCTETS[usize::from(octet)];
        text[len..len + 4].copy_from_slice(digits);
        len += used;
    }
    // Without the last octet's dot.
    line.extend_from_slice(&text[..len - 1]);
}

/// RFC 5952 as `Ipv6Addr`'s `Display` writes it: lowercase hexadecimal
/// without leading zeros, the first longest run of two or more zero groups
/// as `::`, and an IPv4-mapped address as `::ffff:a.b.c.d`.
#[inline(never)]
fn push_ipv6(line: &mut Vec<u8>, v6: Ipv6Addr) {
    if let Some(v4) = v6.to_ipv4_mapped() {
        line.extend_from_slice(b"::ffff:");
        return push_ipv4(line, v4);
    }
    let groups = v6.segments();
    let (mut zeros_at, mut zeros_len) = (0, 0);
    let mut run_at = 0;
    for (at, &group) in groups.iter().enumerate() {
        if group != 0 {
            run_at = at + 1;
        } else if at + 1 - run_at > zeros_len {
            (zeros_at, zeros_len) = (run_at, at + 1 - run_at);
        }
    }
    let mut text = [0u8; 40];
    let mut len = 0;
    let mut at = 0;
    while at < groups.len() {
        if zeros_len > 1 && at == zeros_at {
            text[len..len + 2].copy_from_slice(b"::");
            len += 2;
            at += zeros_len;
            continue;
        }
        if at > 0 && !(zeros_len > 1 && at == zeros_at + zeros_len) {
            text[len] = b':';
            len += 1;
        }
        let group = groups[at];
        let digits = (16 - group.leading_zeros() as usize).div_ceil(4).max(1);
        for shift in (0..digits).rev() {
            text[len] = HEX[usize::from(group >> (4 * shift) & 0xf)];
            len += 1;
        }
        at += 1;
    }
    line.extend_from_slice(&text[..len]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn written(client: IpAddr) -> String {
        let mut line = Vec::new();
        push_address(&mut line, client);
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn every_ipv4_octet_is_written_as_display_writes_it() {
        for octet in 0..=255u8 {
            for client in [
                Ipv4Addr::new(octet, 0, 255, octet),
                Ipv4Addr::new(9, octet, octet, 10),
            ] {
                assert_eq!(written(client.into()), client.to_string());
            }
        }
    }

    #[test]
    fn ipv6_special_forms_are_written_as_display_writes_them() {
        for text in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:1:1:1:1:1",
            "2001:0:0:1:0:0:0:1",
            "0:0:1:0:0:1:0:0",
            "::ffff:192.0.2.128",
            "::192.0.2.128",
            "64:ff9b::192.0.2.33",
            "fe80::1:2:3:4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let client: Ipv6Addr = text.parse().unwrap();
            assert_eq!(written(client.into()), client.to_string(), "{text}");
        }
    }

    /// Groups drawn mostly from zero and small values, so runs of zeros
    /// of every length and position come up.
    fn group() -> impl Strategy<Value = u16> {
        prop_oneof![Just(0u16), Just(0xffff), 0u16..0x10, any::<u16>()]
    }

    proptest! {
        #[test]
        fn any_ipv6_address_is_written_as_display_writes_it(groups in proptest::array::uniform8(group())) {
            let client = Ipv6Addr::from(groups);
            prop_assert_eq!(written(client.into()), client.to_string());
        }
    }
}
