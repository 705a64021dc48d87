//! The client address (SPEC §4) and the two address lists that decide about
//! it: the `ALLOWED_IPS` allowlist and the `TRUSTED_PROXIES` whose forwarding
//! headers are believed. Nothing else in Portico reads forwarding headers.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use ipnetwork::IpNetwork;

/// Why an address list did not parse; entries are counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    Empty { entry: usize },
    Invalid { entry: usize, text: String },
}

fn parse_entry(text: &str) -> Option<IpNetwork> {
    let network = IpNetwork::from_str(text).ok()?;
    match network {
        // An IPv4-mapped IPv6 address is the IPv4 client it stands for.
        IpNetwork::V6(v6) if v6.prefix() == 128 => {
            Some(IpNetwork::from(IpAddr::V6(v6.ip()).to_canonical()))
        }
        other => Some(other),
    }
}

/// Parses a comma-separated list of addresses and CIDR blocks; `wildcard`
/// entries (`*`) are passed through as `None`.
fn parse_list(value: &str, allow_wildcard: bool) -> Result<Vec<Option<IpNetwork>>, ListError> {
    value
        .split(',')
        .enumerate()
        .map(|(index, raw)| {
            let entry = index + 1;
            let text = raw.trim();
            if text.is_empty() {
                return Err(ListError::Empty { entry });
            }
            if allow_wildcard && text == "*" {
                return Ok(None);
            }
            parse_entry(text)
                .map(Some)
                .ok_or_else(|| ListError::Invalid {
                    entry,
                    text: text.to_owned(),
                })
        })
        .collect()
}

/// Address blocks as sorted, merged ranges: a look-up is a binary search,
/// however many blocks are configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NetworkSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

fn merge<T: Ord + Copy>(mut ranges: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some((_, last_end)) if next(*last_end).is_none_or(|after| start <= after) => {
                *last_end = (*last_end).max(end);
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], value: T) -> bool {
    let after = ranges.partition_point(|(start, _)| *start <= value);
    after > 0 && value <= ranges[after - 1].1
}

impl NetworkSet {
    fn new(networks: &[IpNetwork]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for network in networks {
            match network {
                IpNetwork::V4(net) => {
                    v4.push((u32::from(net.network()), u32::from(net.broadcast())))
                }
                IpNetwork::V6(net) => {
                    let host_bits = 128 - u32::from(net.prefix());
                    let mask = if host_bits == 128 {
                        u128::MAX
                    } else {
                        (1u128 << host_bits) - 1
                    };
                    let start = u128::from(net.ip()) & !mask;
                    v6.push((start, start | mask));
                }
            }
        }
        Self {
            v4: merge(v4, |end: u32| end.checked_add(1)),
            v6: merge(v6, |end: u128| end.checked_add(1)),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(v4) => in_ranges(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => in_ranges(&self.v6, u128::from(v6)),
        }
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// `ALLOWED_IPS`: who may call the API at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowlist {
    /// `None` allows every address.
    networks: Option<NetworkSet>,
}

impl IpAllowlist {
    pub fn allow_all() -> Self {
        Self { networks: None }
    }

    pub fn parse(value: &str) -> Result<Self, ListError> {
        let entries = parse_list(value, true)?;
        if entries.iter().any(Option::is_none) {
            return Ok(Self::allow_all());
        }
        let networks: Vec<IpNetwork> = entries.into_iter().flatten().collect();
        Ok(Self {
            networks: Some(NetworkSet::new(&networks)),
        })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match &self.networks {
            None => true,
            Some(networks) => networks.contains(ip),
        }
    }

    pub fn allows_all(&self) -> bool {
        self.networks.is_none()
    }
}

/// `TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` / `X-Real-IP` count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: NetworkSet,
}

impl TrustedProxies {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn parse(value: &str) -> Result<Self, ListError> {
        let networks: Vec<IpNetwork> = parse_list(value, false)?.into_iter().flatten().collect();
        Ok(Self {
            networks: NetworkSet::new(&networks),
        })
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.contains(ip)
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// One hop of a forwarding header: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`.
pub fn parse_forwarded_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = if let Ok(ip) = IpAddr::from_str(text) {
        ip
    } else if let Ok(socket) = SocketAddr::from_str(text) {
        socket.ip()
    } else {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse().ok()?)
    };
    Some(ip.to_canonical())
}

/// The client address: the TCP peer, unless the peer is a trusted proxy;
/// then `X-Forwarded-For` is walked right to left past trusted hops and the
/// first untrusted hop is the client (`X-Real-IP` when there is no
/// `X-Forwarded-For`). A hop that does not parse ends the walk at the nearest
/// address that could be verified, since nothing left of it can be believed.
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip().to_canonical());
    if !trusted.trusts(peer) {
        return peer;
    }
    let mut forwarded = headers.get_all("x-forwarded-for").peekable();
    if forwarded.peek().is_some() {
        let hops: Vec<&str> = forwarded
            .flat_map(|value| value.to_str().unwrap_or("").split(','))
            .collect();
        return walk_forwarded(peer, hops.iter().rev().copied(), trusted);
    }
    let mut real_ip = headers.get_all("x-real-ip");
    match (real_ip.next(), real_ip.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(parse_forwarded_hop)
            .unwrap_or(peer),
        _ => peer,
    }
}

/// Walks hops nearest first, starting from a trusted `peer`.
pub fn walk_forwarded<'a>(
    peer: IpAddr,
    hops_nearest_first: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut nearest = peer;
    for hop in hops_nearest_first {
        match parse_forwarded_hop(hop) {
            Some(ip) if trusted.trusts(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// An address written for a log line without the formatting machinery
/// (IPv4, the common case) into `buffer`.
pub fn address_text(ip: IpAddr, buffer: &mut [u8; 45]) -> &str {
    use std::io::Write;
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut at = 0;
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    buffer[at] = b'.';
                    at += 1;
                }
                if octet >= 100 {
                    buffer[at] = b'0' + octet / 100;
                    at += 1;
                }
                if octet >= 10 {
                    buffer[at] = b'0' + octet / 10 % 10;
                    at += 1;
                }
                buffer[at] = b'0' + octet % 10;
                at += 1;
            }
            at
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buffer[..]);
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    };
    std::str::from_utf8(&buffer[..len]).unwrap_or("?")
}
