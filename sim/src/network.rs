//! The modem's network side: real HTTP over loopback, timed in virtual time.
//!
//! When the modem executes a GET it performs the request **for real and synchronously**
//! (with `ureq`, redirects not followed automatically) against whatever server the URL
//! names — normally a [`TestServer`](crate::TestServer) on 127.0.0.1. The wall-clock time
//! of that is tiny on loopback; the virtual time the transfer takes is computed from
//! [`NetworkConfig`]:
//!
//! ```text
//! first_byte = rtt × (dns + 1 TCP handshake + tls + 1 request)  + server delay
//! headers_at = first_byte + header bytes × 8 / downlink_bps      (the +QHTTPGET: result)
//! body byte i has arrived at first_byte + (header bytes + i + 1) × 8 / downlink_bps
//! ```
//!
//! The module reports the result once the header block is in and forwards the body while it
//! keeps arriving (quectel-at.md §4.6), so `AT+QHTTPREAD` never sends a byte before its
//! arrival time; at the default 5 Mbit/s the network stays ahead of any UART up to 4 Mbaud.
//!
//! * `dns` is 1 round trip for a host name, 0 for an IP literal; `tls` is
//!   [`NetworkConfig::tls_round_trips`] for `https://` (TLS 1.2 full handshake: 2).
//! * Server delay: wall-clock time the real request took beyond
//!   [`NetworkConfig::real_time_threshold`] is added (so a server that sleeps 2 s costs 2 s of
//!   virtual time, while loopback jitter of a millisecond does not make runs differ).
//! * Simulation shortcuts: there is **no TLS** — `https://` URLs are fetched as plain HTTP
//!   from the same host and port — and **no DNS**: IP literals and `localhost` resolve, other
//!   names only through [`ModemConfig::hosts`](crate::ModemConfig::hosts) (to an address and
//!   port); anything else is a DNS failure.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::modem::ModemConfig;

/// Timing of the cellular link in virtual time.
///
/// Defaults: LTE Cat-1. Round-trip time 80 ms (typical LTE user-plane RTTs are 50–100 ms);
/// downlink 5 Mbit/s, uplink 2.5 Mbit/s (half the Cat-1 peak rates of 10.3 / 5.2 Mbit/s in
/// 3GPP TS 36.306 table 4.1-1, as a typical effective rate).
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Round-trip time.
    pub rtt: Duration,
    /// Downlink rate in bit/s.
    pub downlink_bps: u64,
    /// Uplink rate in bit/s.
    pub uplink_bps: u64,
    /// Extra round trips of a TLS handshake for `https://` (not performed for real).
    pub tls_round_trips: u32,
    /// Wall-clock request time up to this much is ignored; beyond it, it is added to the
    /// virtual transfer time.
    pub real_time_threshold: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            rtt: Duration::from_millis(80),
            downlink_bps: 5_000_000,
            uplink_bps: 2_500_000,
            tls_round_trips: 2,
            real_time_threshold: Duration::from_millis(20),
        }
    }
}

impl NetworkConfig {
    /// Virtual time from the request to the first response byte, and to the end of the
    /// header block.
    pub(crate) fn timing(
        &self,
        url: &Url,
        head_len: usize,
        real: Duration,
    ) -> (Duration, Duration) {
        let mut trips = 2u32; // TCP handshake + request/response
        if url.is_name {
            trips += 1;
        }
        if url.https {
            trips += self.tls_round_trips;
        }
        let extra = real.saturating_sub(self.real_time_threshold);
        let headers = self.rtt * trips + extra;
        let bits = head_len as u64 * 8;
        let head =
            Duration::from_nanos(bits.saturating_mul(1_000_000_000) / self.downlink_bps.max(1));
        (headers, headers + head)
    }

    /// Virtual time from the request to the end of the header block, and to the end of the
    /// body (a module downloading a whole file, as FOTA does).
    pub(crate) fn download(
        &self,
        url: &Url,
        head_len: usize,
        body_len: usize,
        real: Duration,
    ) -> (Duration, Duration) {
        let (first, headers) = self.timing(url, head_len, real);
        let bits = (head_len as u64 + body_len as u64) * 8;
        let all =
            Duration::from_nanos(bits.saturating_mul(1_000_000_000) / self.downlink_bps.max(1));
        (headers, first + all)
    }
}

/// A parsed `http[s]://host[:port]/path` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    pub(crate) is_name: bool,
}

impl Url {
    /// Parses a URL; `None` if it is not `http://` / `https://` with a host.
    pub(crate) fn parse(s: &str) -> Option<Url> {
        let has = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        let (https, rest) = if has("https://") {
            (true, &s[8..])
        } else if has("http://") {
            (false, &s[7..])
        } else {
            return None;
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.is_empty() || authority.contains('@') || path.contains(' ') {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']')?;
            let host = &v6[..end];
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        };
        if host.is_empty() {
            return None;
        }
        let is_name = host.parse::<IpAddr>().is_err();
        Some(Url {
            https,
            host,
            port,
            path,
            is_name,
        })
    }

    /// Whether a `Location` value is an absolute `http[s]://` URL (the only form an ASR
    /// module follows, §4.9).
    pub(crate) fn is_absolute(location: &str) -> bool {
        let l = location.trim().to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://")
    }
}

/// Why a fetch failed before a response arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The host name does not resolve.
    Dns,
    /// The TCP connection failed.
    Connect,
    /// No response within the response time.
    Timeout,
    /// The server's answer was not HTTP.
    Protocol,
}

/// A response, with its whole body.
#[derive(Clone, Debug)]
pub(crate) struct Fetched {
    pub(crate) status: u16,
    /// The raw header block as the modem would show it (`responseheader` = 1).
    pub(crate) head: Vec<u8>,
    pub(crate) location: Option<String>,
    pub(crate) content_length: Option<u64>,
    pub(crate) body: Vec<u8>,
    /// The connection ended before `content_length` bytes arrived.
    pub(crate) truncated: bool,
    /// Wall-clock time of the request.
    pub(crate) real: Duration,
}

/// The modem's HTTP client.
pub(crate) struct Network {
    agent: ureq::Agent,
    hosts: Vec<(String, SocketAddr)>,
    pub(crate) cfg: NetworkConfig,
    /// Response body bytes the servers sent, over all requests.
    pub(crate) body_bytes: std::cell::Cell<u64>,
}

impl Network {
    pub(crate) fn new(modem: &ModemConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent("QUECTEL_MODULE")
            // A new TCP connection per request, as the module opens one per GET.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .new_agent();
        Network {
            agent,
            hosts: modem.hosts.clone(),
            cfg: modem.network.clone(),
            body_bytes: std::cell::Cell::new(0),
        }
    }

    fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, port));
        }
        if let Some((_, addr)) = self
            .hosts
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
        {
            return Some(*addr);
        }
        if host.eq_ignore_ascii_case("localhost") {
            return Some(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port));
        }
        None
    }

    /// GETs `url` with extra request headers; waits at most `timeout` (wall clock) for the
    /// response headers.
    pub(crate) fn get(
        &self,
        url: &Url,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let addr = self.resolve(&url.host, url.port).ok_or(FetchError::Dns)?;
        let target = format!("http://{addr}{}", url.path);
        let started = Instant::now();
        let mut req = self.agent.get(&target);
        for (name, value) in headers {
            let lname = name.to_ascii_lowercase();
            if matches!(
                lname.as_str(),
                "host" | "connection" | "content-length" | "transfer-encoding"
            ) {
                continue;
            }
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req
            .config()
            .timeout_recv_response(Some(timeout))
            .timeout_connect(Some(timeout))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .build()
            .call();
        let resp = match resp {
            Ok(r) => r,
            Err(ureq::Error::Timeout(_)) => return Err(FetchError::Timeout),
            Err(ureq::Error::HostNotFound) => return Err(FetchError::Dns),
            Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(FetchError::Timeout);
            }
            Err(ureq::Error::Io(_)) | Err(ureq::Error::ConnectionFailed) => {
                return Err(FetchError::Connect);
            }
            Err(_) => return Err(FetchError::Protocol),
        };
        let (parts, body) = resp.into_parts();
        let status = parts.status.as_u16();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status,
            parts.status.canonical_reason().unwrap_or("")
        )
        .into_bytes();
        for (name, value) in &parts.headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let chunked = parts
            .headers
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let content_length = if chunked {
            None
        } else {
            parts
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let location = parts
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut reader = body.into_reader();
        let mut data = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut truncated = false;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    truncated = true;
                    break;
                }
            }
        }
        if let Some(len) = content_length
            && (data.len() as u64) < len
        {
            truncated = true;
        }
        self.body_bytes
            .set(self.body_bytes.get() + data.len() as u64);
        Ok(Fetched {
            status,
            head,
            location,
            content_length,
            body: data,
            truncated,
            real: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    #[test]
    fn urls() {
        let u = Url::parse("HTTP://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(
            (u.https, u.port, u.path.as_str(), u.is_name),
            (false, 8080, "/a/b?x=1", false)
        );
        let u = Url::parse("https://example.com").unwrap();
        assert_eq!(
            (u.https, u.port, u.path.as_str(), u.is_name),
            (true, 443, "/", true)
        );
        assert_eq!(Url::parse("http://[::1]:81/x").unwrap().host, "::1");
        for bad in [
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:x/",
            "http://u@h/",
            "htt",
        ] {
            assert!(Url::parse(bad).is_none(), "{bad}");
        }
        assert!(Url::is_absolute("http://x/"));
        assert!(!Url::is_absolute("/x"));
    }
}
