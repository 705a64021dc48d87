//! Where users reach Portico (SPEC §1.1): the origin forms must come from
//! and the host names a request may carry. Without `PUBLIC_URL` that is every
//! loopback name and the bound address, on the port the server really got.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::vars::ConfigError;

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// The address printed and linked to.
    origin: String,
    https: bool,
    /// Host names accepted in `Host` and `Origin`, lower case, IPv6 bracketed.
    names: Vec<String>,
    /// Without `PUBLIC_URL`: the port forms and pages are served on.
    local_port: Option<u16>,
}

impl PublicUrl {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                "PUBLIC_URL",
                format!("'{value}' {why}; expected something like https://portico.example.com"),
            )
        };
        let url = url::Url::parse(value).map_err(|_| bad("is not a URL"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("must start with http:// or https://")),
        };
        let Some(host) = url.host_str() else {
            return Err(bad("has no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "has a path, query or fragment; Portico is served at the root of its \
                 address, so give the scheme, host and port only (a sub-path is not supported)",
            ));
        }
        Ok(Self {
            origin: url.origin().ascii_serialization(),
            https,
            names: vec![host.to_ascii_lowercase()],
            local_port: None,
        })
    }

    /// No `PUBLIC_URL`: the loopback names and `bound` itself, on its port.
    pub fn local(bound: SocketAddr) -> Self {
        let shown = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let shown_name = match shown {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()).collect();
        if !names.contains(&shown_name) {
            names.push(shown_name.clone());
        }
        Self {
            origin: format!("http://{shown_name}:{}", bound.port()),
            https: false,
            names,
            local_port: Some(bound.port()),
        }
    }

    /// The same set once the listener is bound: the real port replaces the
    /// configured one (`BIND=…:0`). A configured `PUBLIC_URL` stays as it is.
    pub fn with_bound(self, bound: SocketAddr) -> Self {
        match self.local_port {
            Some(_) => Self::local(bound),
            None => self,
        }
    }

    /// The address users are sent to in links and the start-up log.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn is_configured(&self) -> bool {
        self.local_port.is_none()
    }

    /// Whether a browser's `Origin` (or a `Referer`'s origin) is one forms
    /// are accepted from.
    pub fn accepts_origin(&self, origin: &str) -> bool {
        let Some(port) = self.local_port else {
            return origin == self.origin;
        };
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        url.scheme() == "http"
            && url.port_or_known_default() == Some(port)
            && url
                .host_str()
                .is_some_and(|host| self.names.iter().any(|name| *name == host))
    }

    /// Whether the name in a `Host` header is one of ours; its port is not
    /// compared, since proxies often forward the name alone.
    pub fn accepts_host(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        self.names.iter().any(|accepted| accepted == name)
    }

    /// The accepted origins in words, for messages.
    pub fn describe(&self) -> String {
        let Some(port) = self.local_port else {
            return self.origin.clone();
        };
        let origins: Vec<String> = self
            .names
            .iter()
            .map(|name| format!("http://{name}:{port}"))
            .collect();
        match origins.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => self.origin.clone(),
        }
    }

    /// The accepted names, for messages.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// `name[:port]` or `[v6][:port]` without the port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.split(':').next().unwrap_or(host)
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_public_url_every_loopback_name_on_the_bound_port_is_accepted() {
        let url = PublicUrl::local("127.0.0.1:3999".parse().unwrap());
        assert_eq!(url.origin(), "http://127.0.0.1:3999");
        for origin in [
            "http://localhost:3999",
            "http://127.0.0.1:3999",
            "http://[::1]:3999",
        ] {
            assert!(url.accepts_origin(origin), "{origin}");
        }
        for origin in [
            "http://localhost:3000",
            "https://localhost:3999",
            "http://evil.example:3999",
            "null",
        ] {
            assert!(!url.accepts_origin(origin), "{origin}");
        }
        assert!(url.accepts_host("LOCALHOST:1234"));
        assert!(url.accepts_host("[::1]:3999"));
        assert!(!url.accepts_host("rebound.example:3999"));
    }

    #[test]
    fn the_bound_address_itself_is_accepted_and_shown() {
        let url = PublicUrl::local("192.168.1.5:8080".parse().unwrap());
        assert_eq!(url.origin(), "http://192.168.1.5:8080");
        assert!(url.accepts_origin("http://192.168.1.5:8080"));
        assert!(url.accepts_host("192.168.1.5"));
        let any = PublicUrl::local("0.0.0.0:8080".parse().unwrap());
        assert_eq!(any.origin(), "http://127.0.0.1:8080");
        assert!(!any.accepts_host("0.0.0.0"));
    }

    #[test]
    fn a_configured_public_url_accepts_its_own_origin_and_name_only() {
        let url = PublicUrl::parse("https://Portico.Example.com").unwrap();
        assert!(url.accepts_origin("https://portico.example.com"));
        assert!(!url.accepts_origin("http://localhost:3000"));
        assert!(url.accepts_host("portico.example.com"));
        assert!(url.accepts_host("portico.example.com.:443"));
        assert!(!url.accepts_host("localhost"));
        let bound = url.clone().with_bound("127.0.0.1:1".parse().unwrap());
        assert_eq!(bound, url);
    }

    #[test]
    fn a_public_url_with_a_path_is_refused() {
        for value in [
            "https://example.com/portico",
            "https://example.com/?a=1",
            "https://example.com/#x",
        ] {
            let err = PublicUrl::parse(value).unwrap_err().to_string();
            assert!(err.contains("PUBLIC_URL") && err.contains("path"), "{err}");
        }
        assert!(PublicUrl::parse("https://example.com/").is_ok());
    }
}
