//! Who may talk to the API at all, checked once for every request before any handler
//! runs (see docs/security.md, "A web page anywhere"):
//!
//! - **Host**: only names this node is reached by are served: `localhost` (and
//!   `*.localhost`), loopback addresses, and the address the API listens on (with a
//!   wildcard listen address, any address of this machine). A DNS-rebinding page
//!   (`attacker.example` resolving to 127.0.0.1) sends its own name and is refused.
//! - **Writes** (POST): a browser's cross-site or same-site request is refused
//!   (`Sec-Fetch-Site`, and an `Origin` other than the Host served), and the body must
//!   be JSON, which a plain HTML form cannot send: so no other page can make the
//!   browser write.
//!
//! Also here: [`is_local`], the one test of "the hub computer itself".

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Whether a request comes from the hub computer itself. An IPv4 client of an API
/// listening on `[::]` arrives as `::ffff:127.0.0.1`, which is loopback too.
pub fn is_local(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The peer address of a request (`ConnectInfo`, inserted by the server for every
/// connection); unspecified (so: not local) if missing.
pub(super) fn peer(parts: &axum::http::Extensions) -> SocketAddr {
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// The Host values this node answers to.
pub struct Hosts {
    bound: SocketAddr,
    /// Addresses found to belong to this machine (listening on a wildcard address).
    own: Mutex<HashSet<IpAddr>>,
}

impl Hosts {
    /// For an API listening on `bound`.
    pub fn new(bound: SocketAddr) -> Arc<Self> {
        Arc::new(Hosts {
            bound,
            own: Mutex::default(),
        })
    }

    /// Whether `host` (a Host header value, with or without port) names this node.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        let Ok(ip) = name.parse::<IpAddr>() else {
            return false;
        };
        let ip = ip.to_canonical();
        if ip.is_loopback() || ip == self.bound.ip().to_canonical() {
            return true;
        }
        self.bound.ip().is_unspecified() && self.is_own(ip)
    }

    /// Whether `ip` is an address of this machine: only then can a socket be bound
    /// to it. Answers are cached (the set is as small as the machine's addresses).
    fn is_own(&self, ip: IpAddr) -> bool {
        let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        if own.contains(&ip) {
            return true;
        }
        let yes = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok();
        if yes {
            own.insert(ip);
        }
        yes
    }
}

/// The host part of a Host header value: `[::1]:80` → `::1`, `a.b:80` → `a.b`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        // One colon: name:port. More: a bare IPv6 address (not valid in Host, but
        // harmless to read as an address).
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

fn refuse(status: StatusCode, error: &'static str, detail: String) -> Response {
    ApiError::new(status, error, detail).into_response()
}

/// Why a write from a browser is refused, if it is.
fn cross_site(headers: &HeaderMap, host: &str) -> Option<String> {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return Some(format!(
                "a {site} request cannot change anything here: only this node's own page, the aidmesh command and scripts on this computer can"
            ));
        }
    }
    if let Some(origin) = get(header::ORIGIN) {
        let own = ["http://", "https://"]
            .iter()
            .any(|s| origin.eq_ignore_ascii_case(&format!("{s}{host}")));
        if !own {
            return Some(format!(
                "a page from {origin} cannot change anything here: only this node's own page, the aidmesh command and scripts on this computer can"
            ));
        }
    }
    None
}

/// Whether the request body is declared JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a write takes a file rather than JSON: a bundle (`application/octet-stream`)
/// or a CAP alert (`application/xml`, `text/xml`). None of these types is one a
/// cross-site form can send without a preflight, so the JSON rule's protection holds.
fn raw_body_allowed(path: &str, headers: &HeaderMap) -> bool {
    let ty = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match path {
        "/api/v1/bundle" => ty == "application/octet-stream",
        "/api/v1/alerts/import" => ty == "application/xml" || ty == "text/xml",
        _ => false,
    }
}

/// The middleware: Host for every request, origin and JSON for writes.
pub(super) async fn check(State(hosts): State<Arc<Hosts>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !hosts.allows(&host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "unknown_host",
            format!(
                "this node answers only to its own addresses (localhost, its IP addresses), not to '{host}'; open it by IP address, e.g. http://{}/",
                hosts.bound
            ),
        );
    }
    if req.method() == Method::POST {
        if let Some(why) = cross_site(req.headers(), &host) {
            return refuse(StatusCode::FORBIDDEN, "cross_site", why);
        }
        if !is_json(req.headers()) && !raw_body_allowed(req.uri().path(), req.headers()) {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_json",
                "Expected request with `Content-Type: application/json`".into(),
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("localhost:4611"), "localhost");
        assert_eq!(host_name("[::1]:4611"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("192.168.1.5"), "192.168.1.5");
        assert_eq!(host_name("::1"), "::1");
    }

    #[test]
    fn only_own_names_are_served() {
        let h = Hosts::new("127.0.0.1:4611".parse().unwrap());
        for ok in [
            "127.0.0.1:4611",
            "localhost:4611",
            "LocalHost.:4611",
            "app.localhost",
            "[::1]:4611",
            "[::ffff:127.0.0.1]:4611",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "",
            "attacker.example:4611",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:4611",
            "192.0.2.77:4611",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        // Listening on one LAN address: that address too.
        let h = Hosts::new("192.0.2.77:4611".parse().unwrap());
        assert!(h.allows("192.0.2.77:4611"));
        assert!(!h.allows("192.0.2.78:4611"));
        // Listening everywhere: any address of this machine, nothing else.
        let h = Hosts::new("0.0.0.0:4611".parse().unwrap());
        assert!(h.allows("127.0.0.1:4611"));
        assert!(!h.allows("198.51.100.200:4611"), "not an address of ours");
    }

    #[test]
    fn writes_from_other_sites_are_refused() {
        let hm = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        let host = "192.168.1.5:4611";
        assert!(cross_site(&hm(&[]), host).is_none(), "CLI, curl");
        assert!(cross_site(
            &hm(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://192.168.1.5:4611")
            ]),
            host
        )
        .is_none());
        for bad in [
            hm(&[("sec-fetch-site", "cross-site")]),
            hm(&[("sec-fetch-site", "same-site")]),
            hm(&[("origin", "http://evil.example")]),
            hm(&[("origin", "null")]),
            hm(&[("origin", "http://192.168.1.5:9999")]),
        ] {
            assert!(cross_site(&bad, host).is_some(), "{bad:?}");
        }
        assert!(is_json(&hm(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json(&hm(&[("content-type", "text/plain")])));
        assert!(!is_json(&hm(&[])));
    }
}
