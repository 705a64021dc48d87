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

fn contains(networks: &[IpNetwork], ip: IpAddr) -> bool {
    networks.iter().any(|network| network.contains(ip))
}

/// `ALLOWED_IPS`: who may call the API at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowlist {
    /// `None` allows every address.
    networks: Option<Vec<IpNetwork>>,
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
        Ok(Self {
            networks: Some(entries.into_iter().flatten().collect()),
        })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match &self.networks {
            None => true,
            Some(networks) => contains(networks, ip.to_canonical()),
        }
    }

    pub fn allows_all(&self) -> bool {
        self.networks.is_none()
    }
}

/// `TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` / `X-Real-IP` count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNetwork>,
}

impl TrustedProxies {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn parse(value: &str) -> Result<Self, ListError> {
        let networks = parse_list(value, false)?.into_iter().flatten().collect();
        Ok(Self { networks })
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        contains(&self.networks, ip.to_canonical())
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
