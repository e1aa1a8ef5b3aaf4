//! A Connect service's base URL (`https://host[:port]` or `http://host[:port]`), parsed once
//! for every transport: the HTTP/2 and HTTP/1.1 crates both dial it and send its authority.

/// Where a Connect service lives: TLS or cleartext, host and port. Paths, user info and
/// queries are refused, because a Connect method path is appended to the base as is.
///
/// ```
/// use cursor_connect_frame::BaseUrl;
/// let url = BaseUrl::parse("https://[::1]:8443/")?;
/// assert!(url.is_tls());
/// assert_eq!(url.host(), "::1");
/// assert_eq!(url.authority(), "[::1]:8443");
/// assert_eq!(BaseUrl::parse("http://localhost")?.port(), 80);
/// assert!(BaseUrl::parse("ftp://example.com").is_err());
/// # Ok::<(), cursor_connect_frame::InvalidBaseUrl>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    host: String,
    port: u16,
    tls: bool,
}

/// A base URL or authority that [`BaseUrl`] cannot use, with the input and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid base url {input:?}: {reason}")]
pub struct InvalidBaseUrl {
    input: String,
    reason: &'static str,
}

impl InvalidBaseUrl {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            reason,
        }
    }

    /// What was refused, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl BaseUrl {
    /// Parses `https://host[:port]` (TLS, default port 443) or `http://host[:port]`
    /// (cleartext, default port 80); one trailing `/` is accepted.
    pub fn parse(url: &str) -> Result<Self, InvalidBaseUrl> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(InvalidBaseUrl::new(url, "scheme must be https or http"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        Self::from_authority(authority, tls).map_err(|e| InvalidBaseUrl::new(url, e.reason))
    }

    /// `host[:port]` or `[v6]:port` with the scheme given apart (default port 443 with TLS,
    /// else 80).
    pub fn from_authority(authority: &str, tls: bool) -> Result<Self, InvalidBaseUrl> {
        let bad = |reason| InvalidBaseUrl::new(authority, reason);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains(['/', '@', '?', '#']) {
            return Err(bad("only scheme, host and port are allowed"));
        }
        let default_port = if tls { 443 } else { 80 };
        let parse_port = |p: &str| p.parse::<u16>().map_err(|_| bad("port is not 0-65535"));
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, parse_port(port)?),
                None if after.is_empty() => (host, default_port),
                None => return Err(bad("junk after ']'")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some(("", _)) => return Err(bad("no host")),
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("an IPv6 host needs brackets"));
                }
                Some((host, port)) => (host, parse_port(port)?),
                None => (authority, default_port),
            }
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// The host, without brackets for IPv6 (as a TLS server name or a socket address wants).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the service is reached over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// `host:port` (`[v6]:port`), as sent in `:authority` or `Host`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hosts_ports_and_v6() {
        let url = BaseUrl::parse("https://api2.cursor.sh").unwrap();
        assert_eq!(
            (url.host(), url.port(), url.scheme()),
            ("api2.cursor.sh", 443, "https")
        );
        let url = BaseUrl::parse("http://127.0.0.1:4000/").unwrap();
        assert_eq!(url.authority(), "127.0.0.1:4000");
        let url = BaseUrl::from_authority("[::1]", false).unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 80));
    }

    #[test]
    fn refuses_with_a_reason() {
        for (input, reason) in [
            ("ftp://h", "scheme must be https or http"),
            ("https://", "no host"),
            ("https://h/v1", "only scheme, host and port are allowed"),
            ("https://u@h", "only scheme, host and port are allowed"),
            ("https://h:99999", "port is not 0-65535"),
            ("https://::1", "an IPv6 host needs brackets"),
            ("https://[::1", "unclosed '[' in host"),
            ("https://[::1]x", "junk after ']'"),
            ("https://:443", "no host"),
        ] {
            let error = BaseUrl::parse(input).unwrap_err();
            assert_eq!(error.reason(), reason, "{input}");
            assert!(error.to_string().contains(input), "{error}");
        }
    }
}
