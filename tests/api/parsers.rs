//! Property tests for the parsers that read untrusted input: forwarding
//! hops, the client-address walk and the two address lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use portico::auth::api_key::ApiKey;
use portico::core::address::{
    address_text, client_address, parse_forwarded_hop, walk_forwarded, IpAllowlist, TrustedProxies,
};
use proptest::prelude::*;

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

fn forwarded_headers(xff: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(xff) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    headers
}

proptest! {
    #[test]
    fn any_text_is_parsed_as_a_hop_without_panicking(text in "\\PC{0,64}") {
        let _ = parse_forwarded_hop(&text);
    }

    #[test]
    fn every_address_form_of_a_hop_parses_to_its_address(ip in any_ip(), port in any::<u16>()) {
        let canonical = ip.to_canonical();
        prop_assert_eq!(parse_forwarded_hop(&ip.to_string()), Some(canonical));
        prop_assert_eq!(parse_forwarded_hop(&format!(" {ip} ")), Some(canonical));
        prop_assert_eq!(parse_forwarded_hop(&SocketAddr::new(ip, port).to_string()), Some(canonical));
        if let IpAddr::V6(v6) = ip {
            prop_assert_eq!(parse_forwarded_hop(&format!("[{v6}]")), Some(canonical));
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards(
        peer in any_ip(), prefix in "[ -~]{0,120}", last in any_ip(), port in any::<u16>(), form in 0..3u8,
        real_ip in any_ip(), trusted in proptest::collection::vec(any_ip(), 0..4),
    ) {
        let peer = peer.to_canonical();
        let list = trusted.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let proxies = if list.is_empty() { TrustedProxies::none() } else { TrustedProxies::parse(&list).unwrap() };
        prop_assume!(!proxies.trusts(peer));
        // The chain ends in a hop that parses, so believing it would name
        // another client: the answer below differs from the believed one.
        let hop = match (form, last) {
            (1, _) => SocketAddr::new(last, port).to_string(),
            (2, IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => last.to_string(),
        };
        let believed = last.to_canonical();
        prop_assume!(believed != peer && !proxies.trusts(believed) && real_ip.to_canonical() != peer);
        let forwarded = format!("{prefix},{hop}");
        prop_assert_eq!(walk_forwarded(peer, forwarded.rsplit(','), &proxies), believed);
        let mut headers = forwarded_headers(&forwarded);
        prop_assert_eq!(headers.len(), 1, "the generated chain is a valid header");
        headers.insert(HeaderName::from_static("x-real-ip"), HeaderValue::from_str(&real_ip.to_string()).unwrap());
        let resolved = client_address(Some(SocketAddr::new(peer, 1234)), &headers, &proxies);
        prop_assert_eq!(resolved, peer);
        headers.remove("x-forwarded-for");
        let resolved = client_address(Some(SocketAddr::new(peer, 1234)), &headers, &proxies);
        prop_assert_eq!(resolved, peer, "X-Real-IP alone");
    }

    #[test]
    fn the_walk_returns_the_first_untrusted_hop_from_the_right(
        hops in proptest::collection::vec((any::<[u8; 4]>(), any::<bool>()), 1..12),
    ) {
        // Trusted hops are drawn from 10.0.0.0/8, untrusted ones from 100.64.0.0/10.
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let chain: Vec<IpAddr> = hops.iter().map(|(o, trusted)| {
            if *trusted { IpAddr::from([10, o[1], o[2], o[3]]) } else { IpAddr::from([100, 64 | (o[1] & 63), o[2], o[3]]) }
        }).collect();
        let texts: Vec<String> = chain.iter().map(ToString::to_string).collect();
        let expected = chain.iter().rev().find(|ip| !proxies.trusts(**ip)).copied().unwrap_or(chain[0]);
        let peer = IpAddr::from([10, 0, 0, 1]);
        prop_assert_eq!(walk_forwarded(peer, texts.iter().rev().map(String::as_str), &proxies), expected);
        let header = texts.join(", ");
        prop_assert_eq!(client_address(Some(SocketAddr::new(peer, 80)), &forwarded_headers(&header), &proxies), expected);
    }

    #[test]
    fn addresses_are_written_for_logs_as_display_writes_them(ip in any_ip()) {
        let mut buffer = [0u8; 45];
        prop_assert_eq!(address_text(ip, &mut buffer), ip.to_string());
    }

    #[test]
    fn address_lists_parse_any_text_without_panicking(text in "\\PC{0,100}") {
        let _ = IpAllowlist::parse(&text);
        let _ = TrustedProxies::parse(&text);
    }

    #[test]
    fn an_allowlist_allows_its_own_entries_and_their_blocks(
        entries in proptest::collection::vec((any::<[u8; 4]>(), 8u8..=32), 1..20), probe in any::<[u8; 4]>(),
    ) {
        let text = entries.iter().map(|(o, prefix)| format!("{}/{prefix}", Ipv4Addr::from(*o))).collect::<Vec<_>>().join(" , ");
        let list = IpAllowlist::parse(&text).unwrap();
        for (octets, prefix) in &entries {
            prop_assert!(list.allows(IpAddr::from(*octets)));
            let mask = u32::MAX << (32 - u32::from(*prefix));
            let inside = (u32::from_be_bytes(*octets) & mask) | (u32::from_be_bytes(probe) & !mask);
            prop_assert!(list.allows(IpAddr::from(Ipv4Addr::from(inside))));
        }
        let probe_ip = IpAddr::from(probe);
        let covered = entries.iter().any(|(o, prefix)| {
            let mask = u32::MAX << (32 - u32::from(*prefix));
            u32::from_be_bytes(*o) & mask == u32::from_be_bytes(probe) & mask
        });
        prop_assert_eq!(list.allows(probe_ip), covered);
    }

    #[test]
    fn an_ipv6_allowlist_matches_exactly_the_addresses_in_its_blocks(
        entries in proptest::collection::vec((any::<u128>(), 0u8..=128), 1..12), probe in any::<u128>(),
    ) {
        let text = entries.iter().map(|(ip, prefix)| format!("{}/{prefix}", Ipv6Addr::from(*ip))).collect::<Vec<_>>().join(",");
        let list = IpAllowlist::parse(&text).unwrap();
        let mask = |prefix: u8| if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
        let covered = |ip: u128| entries.iter().any(|(net, prefix)| net & mask(*prefix) == ip & mask(*prefix));
        for (net, _) in &entries {
            prop_assert!(list.allows(IpAddr::V6(Ipv6Addr::from(*net))) || Ipv6Addr::from(*net).to_ipv4_mapped().is_some());
        }
        let probe_ip = Ipv6Addr::from(probe);
        prop_assume!(probe_ip.to_ipv4_mapped().is_none());
        prop_assert_eq!(list.allows(IpAddr::V6(probe_ip)), covered(probe));
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_entry(octets in any::<[u8; 4]>()) {
        let v4 = Ipv4Addr::from(octets);
        let list = IpAllowlist::parse(&v4.to_string()).unwrap();
        prop_assert!(list.allows(IpAddr::V6(v4.to_ipv6_mapped())));
    }

    #[test]
    fn only_visible_ascii_up_to_512_bytes_is_a_key(text in "\\PC{0,600}") {
        let trimmed = text.trim();
        let valid = !trimmed.is_empty() && trimmed.len() <= 512 && trimmed.bytes().all(|b| b.is_ascii_graphic());
        prop_assert_eq!(ApiKey::parse(&text).is_ok(), valid);
    }
}

#[test]
fn a_wildcard_anywhere_allows_everyone() {
    let list = IpAllowlist::parse("10.0.0.1, *").unwrap();
    assert!(list.allows(IpAddr::from([192, 0, 2, 1])));
}

#[test]
fn garbage_in_the_chain_stops_the_walk_at_the_nearest_verified_hop() {
    let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    let peer = IpAddr::from([10, 0, 0, 1]);
    let headers = forwarded_headers("198.51.100.1, not-an-ip, 10.2.2.2");
    assert_eq!(
        client_address(Some(SocketAddr::new(peer, 1)), &headers, &proxies),
        IpAddr::from([10, 2, 2, 2])
    );
}
