//! The job's download URL (spec §3 "Download": an OSS pre-signed URL,
//! `https://<bucket>.oss-<region>.aliyuncs.com/<object>?Expires=..&OSSAccessKeyId=..&Signature=..`),
//! split into what the board needs to open a stream (scheme, host, port) and what goes on the
//! request line (path and query, verbatim: the signature covers them byte for byte).
//!
//! Only what such a URL can be is taken: `http` or `https` (any case), a host name or IPv4
//! address, an optional port (default 80 / 443), an absolute path with an optional query. A
//! fragment is dropped (it is never sent). Refused with a [`UrlError`] that says why: other
//! schemes, user info (`user@`), bracketed IPv6 hosts (the board's `Network::connect` takes a
//! host name), an empty or out-of-range port, a query without a path, and any space, control
//! or non-ASCII byte (a request line cannot carry them, and OSS percent-encodes its URLs).
//!
//! The query holds the signature, which is as good as a download credential until `Expires`:
//! [`Url`]'s `Debug` and [`Url::redacted`] print it as `?…`, and nothing here logs it.
//!
//! Hand-written rather than `url` (WHATWG, needs `std`/IDNA tables) or `http::Uri` (`std`):
//! what is needed is a split at three delimiters with strict checks, borrowing from the job.

use core::fmt;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP (port 80 by default).
    Http,
    /// TLS (port 443 by default).
    Https,
}

/// A download URL, borrowed from the job's `url`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Url<'a> {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IPv4 address, as written (for `Network::connect` and the `Host` header).
    pub host: &'a str,
    /// The port, or the scheme's default.
    pub port: u16,
    /// Host and port as written (`host` or `host:port`): the `Host` header (RFC 9110 §7.2).
    pub authority: &'a str,
    /// Path and query (`/object?Expires=..`), verbatim; `/` when the URL has no path.
    pub target: &'a str,
}

/// Why a URL is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http://` or `https://`.
    Scheme,
    /// User info (`user:pass@host`) is not taken.
    UserInfo,
    /// A bracketed IPv6 host (`[::1]`) is not supported.
    Ipv6,
    /// The host is empty, too long (over 253 bytes) or has characters a host name cannot.
    Host,
    /// The port is empty, not a number or not in 1..=65535.
    Port,
    /// A query without a path (`http://host?x`), or a space, control or non-ASCII byte in
    /// the path or query.
    Target,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "not an http:// or https:// URL",
            UrlError::UserInfo => "user info in the URL is not supported",
            UrlError::Ipv6 => "IPv6 hosts are not supported",
            UrlError::Host => "bad host",
            UrlError::Port => "bad port",
            UrlError::Target => "bad path or query",
        })
    }
}

/// Longest host name (RFC 1035: 253 characters written out).
const MAX_HOST: usize = 253;

impl<'a> Url<'a> {
    /// Parses `url` as the module doc says.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(url, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        // The fragment is not part of the request.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at_checked(authority_end).ok_or(UrlError::Host)?;
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        if authority.starts_with('[') {
            return Err(UrlError::Ipv6);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(parse_port(port)?)),
            None => (authority, None),
        };
        if host.is_empty() || host.len() > MAX_HOST || !host.bytes().all(is_host_byte) {
            return Err(UrlError::Host);
        }
        let target = match target {
            "" => "/",
            t if t.starts_with('/') && t.bytes().all(|b| b.is_ascii_graphic()) => t,
            _ => return Err(UrlError::Target),
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        Ok(Self {
            scheme,
            host,
            port: port.unwrap_or(default_port),
            authority,
            target,
        })
    }

    /// Whether the stream must be TLS.
    pub fn tls(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The path, without the query.
    pub fn path(&self) -> &'a str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }

    /// The URL for a log line: the query (the signature) shown as `?…`.
    pub fn redacted(&self) -> Redacted<'_, 'a> {
        Redacted(self)
    }
}

/// [`Url::redacted`]: displays the URL without its query.
pub struct Redacted<'u, 'a>(&'u Url<'a>);

impl fmt::Display for Redacted<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        let scheme = match url.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}:{}{}", url.host, url.port, url.path())?;
        if url.target.contains('?') {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({})", self.redacted())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Port);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::Port),
        Ok(p) => Ok(p),
    }
}

/// Letters, digits, `-`, `.`, `_` (seen in some internal names): host names and IPv4.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

#[cfg(test)]
mod tests;
