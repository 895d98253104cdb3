//! This computer's addresses on the local network, for what people read and phones
//! open (issue 29): a node listening on every interface (`0.0.0.0`) must print, and
//! encode in the printed board's QR code, an address a phone can reach, never
//! `http://0.0.0.0:PORT/`.

use std::net::{IpAddr, SocketAddr};

/// The IPv4 addresses of the interfaces that are up and not loopback, Wi-Fi and
/// Ethernet first ([`rank`]). IPv6 is left out: a phone on a hub's Wi-Fi always has IPv4, and
/// a link-local IPv6 address cannot be typed or put in a link without its zone.
pub fn lan_ips() -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut found: Vec<(u8, IpAddr)> = ifaces
        .iter()
        .filter(|i| !i.is_loopback() && i.oper_status != if_addrs::IfOperStatus::Down)
        .map(|i| (rank(&i.name), i.ip()))
        .filter(|(_, ip)| ip.is_ipv4() && !ip.is_unspecified())
        .collect();
    // Stable: in the system's order within a rank.
    found.sort_by_key(|(r, _)| *r);
    let mut ips: Vec<IpAddr> = found.into_iter().map(|(_, ip)| ip).collect();
    ips.dedup();
    ips
}

/// Which interface a phone most likely shares: Wi-Fi (`wl…`) first, then Ethernet
/// (`en…`, `eth…`), then the rest; virtual bridges of containers and VMs last.
fn rank(name: &str) -> u8 {
    if name.starts_with("wl") {
        0
    } else if name.starts_with("en") || name.starts_with("eth") {
        1
    } else if ["docker", "br-", "veth", "virbr", "lxc", "tun", "tap", "wg"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        3
    } else {
        2
    }
}

/// The web page's addresses for `api`: itself, unless it is the unspecified address
/// (every interface), which no browser can open: then one per address of [`lan_ips`]
/// (none where the computer has no network yet).
pub fn page_addrs(api: SocketAddr) -> Vec<SocketAddr> {
    if !api.ip().is_unspecified() {
        return vec![api];
    }
    lan_ips()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, api.port()))
        .collect()
}

/// A `Host` header (`0.0.0.0:4611`, `[::]:4611`) with an unspecified address replaced
/// by this computer's first LAN address, port kept; any other is returned unchanged.
/// `None`: an unspecified host and no LAN address to put instead.
pub fn reachable_host(host: &str) -> Option<String> {
    let Ok(addr) = host.parse::<SocketAddr>() else {
        return match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => lan_ips().first().map(ToString::to_string),
            _ => Some(host.to_string()),
        };
    };
    if !addr.ip().is_unspecified() {
        return Some(host.to_string());
    }
    page_addrs(addr).first().map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wifi_and_ethernet_come_before_container_bridges() {
        let mut names = ["docker0", "br-1a2b", "wlp2s0", "enp3s0", "usb0"];
        names.sort_by_key(|n| rank(n));
        assert_eq!(names, ["wlp2s0", "enp3s0", "usb0", "docker0", "br-1a2b"]);
    }

    #[test]
    fn a_specific_address_is_kept() {
        let a: SocketAddr = "192.168.1.5:4611".parse().unwrap();
        assert_eq!(page_addrs(a), vec![a]);
        assert_eq!(
            reachable_host("192.168.1.5:4611").as_deref(),
            Some("192.168.1.5:4611")
        );
        assert_eq!(
            reachable_host("hub.local:4611").as_deref(),
            Some("hub.local:4611")
        );
    }

    #[test]
    fn the_unspecified_address_is_never_given() {
        let a: SocketAddr = "0.0.0.0:4611".parse().unwrap();
        for p in page_addrs(a) {
            assert!(!p.ip().is_unspecified() && !p.ip().is_loopback(), "{p}");
            assert_eq!(p.port(), 4611);
        }
        for h in ["0.0.0.0:4611", "[::]:4611", "0.0.0.0"] {
            if let Some(r) = reachable_host(h) {
                assert!(
                    !r.starts_with("0.0.0.0") && !r.starts_with("[::]"),
                    "{h} → {r}"
                );
            }
        }
    }
}
