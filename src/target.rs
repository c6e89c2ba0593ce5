//! Where operations go: the target (sandbox, production, emulator), an endpoint override, and
//! the ledger they make together — the one definition of "pays into the same account".

use std::fmt;

/// The platform environment a batch runs in. Part of every request token, so that a sandbox
/// rehearsal never collides with production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Sandbox,
    Production,
    Emulator,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Sandbox => "sandbox",
            Target::Production => "production",
            Target::Emulator => "emulator",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "sandbox" => Some(Target::Sandbox),
            "production" => Some(Target::Production),
            "emulator" => Some(Target::Emulator),
            _ => None,
        }
    }

    /// How the target appears in banners.
    pub fn banner(self) -> &'static str {
        match self {
            Target::Sandbox => "SANDBOX",
            Target::Production => "PRODUCTION",
            Target::Emulator => "EMULATOR",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.banner())
    }
}

/// An endpoint URL as payout stores and prints it: `http(s)://host[:port][/path]`, with any
/// `user:password@` removed and no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

/// Why a text is not an endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    #[error("contains a space or a control character")]
    BadChar,
    #[error("has a port that is not a number from 1 to 65535")]
    BadPort,
    #[error("has a host that is not a name, an IPv4 address or an IPv6 address in brackets")]
    BadHost,
}

/// Whether `host` (without its port) can be reached as written: a bracketed IPv6 literal, or a
/// name or IPv4 address of letters, digits, dots, hyphens and underscores. Anything else would
/// only fail later, once per retry, as "cannot connect".
fn host_ok(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Endpoint {
    /// Checks the shape of an endpoint URL and strips credentials from it.
    ///
    /// ```
    /// use payout::target::Endpoint;
    /// let e = Endpoint::parse("http://user:secret@127.0.0.1:8080/").unwrap();
    /// assert_eq!(e.as_str(), "http://127.0.0.1:8080");
    /// assert!(Endpoint::parse("not a url").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let text = text.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EndpointError::BadChar);
        }
        let (scheme, rest) = if let Some(r) = text.strip_prefix("http://") {
            ("http://", r)
        } else if let Some(r) = text.strip_prefix("https://") {
            ("https://", r)
        } else {
            return Err(EndpointError::Scheme);
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(EndpointError::NoHost);
        }
        // A port, if any, follows the last colon outside an IPv6 literal's brackets.
        let after_bracket = host_port.rfind(']').map_or(0, |i| i + 1);
        let host = match host_port[after_bracket..].rfind(':') {
            Some(i) => {
                let port = &host_port[after_bracket + i + 1..];
                if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
                    return Err(EndpointError::BadPort);
                }
                &host_port[..after_bracket + i]
            }
            None => host_port,
        };
        if !host_ok(host) {
            return Err(EndpointError::BadHost);
        }
        let path = path.trim_end_matches('/');
        Ok(Endpoint(format!("{scheme}{host_port}{path}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An endpoint read back from a journal as it was stored, without checking it again.
    pub(crate) fn raw(text: String) -> Endpoint {
        Endpoint(text)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ledger a batch pays into: its target, and the endpoint when one replaced the target's
/// own. Batches on one ledger see each other's payments; batches on two never do.
pub fn ledger(target: Target, endpoint: Option<&Endpoint>) -> String {
    match endpoint {
        None => target.as_str().to_owned(),
        Some(e) => format!("{}@{}", target.as_str(), e.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_stripped_of_credentials() {
        let ok = |s: &str| Endpoint::parse(s).unwrap().as_str().to_owned();
        assert_eq!(ok("http://127.0.0.1:1234"), "http://127.0.0.1:1234");
        assert_eq!(ok("https://a:b@example.com/x/"), "https://example.com/x");
        assert_eq!(ok("http://[::1]:80"), "http://[::1]:80");
        assert_eq!(Endpoint::parse("not a url"), Err(EndpointError::BadChar));
        assert_eq!(Endpoint::parse("ftp://x"), Err(EndpointError::Scheme));
        assert_eq!(Endpoint::parse("127.0.0.1:80"), Err(EndpointError::Scheme));
        assert_eq!(Endpoint::parse("http://"), Err(EndpointError::NoHost));
        assert_eq!(Endpoint::parse("http://h:0"), Err(EndpointError::BadPort));
        assert_eq!(
            Endpoint::parse("http://h:99999"),
            Err(EndpointError::BadPort)
        );
        for bad in [
            "http://[::1",
            "http://[::1:80",
            "http://[nothost]:8",
            "http://a[b]",
        ] {
            assert_eq!(Endpoint::parse(bad), Err(EndpointError::BadHost), "{bad}");
        }
        assert_eq!(ok("http://[fe80::1]"), "http://[fe80::1]");
        assert_eq!(ok("http://my_host-1.local:9"), "http://my_host-1.local:9");
    }

    #[test]
    fn the_ledger_is_the_target_and_any_endpoint() {
        assert_eq!(ledger(Target::Production, None), "production");
        let e = Endpoint::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(
            ledger(Target::Sandbox, Some(&e)),
            "sandbox@http://127.0.0.1:9"
        );
    }
}
