//! LAN discovery with mDNS (mdns-sd): advertise `_aidmesh._tcp.local.` with our peer id,
//! port and community tag on every interface, browse for the same, and hand what is
//! found to the network task to dial. Linux loopback carries no multicast, so loopback
//! tests use static peers; mDNS is exercised in the network-namespace test bed.

use std::net::IpAddr;

use libp2p::{Multiaddr, PeerId};
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{nearby, Command};

/// The DNS-SD service type.
pub const SERVICE: &str = "_aidmesh._tcp.local.";

/// Running discovery; stops when dropped.
pub struct Discovery {
    daemon: ServiceDaemon,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Starts browsing, and advertising unless `advertise` is false: a node listening on
/// loopback only would advertise the computer's LAN addresses, where it does not
/// listen, and every other hub's dial there would fail (issue 29). It still finds the
/// others and dials them.
pub fn start(
    peer: PeerId,
    port: u16,
    tag: String,
    community: &str,
    passphrase: &str,
    advertise: bool,
    commands: mpsc::Sender<Command>,
) -> Result<Discovery, mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    let me = peer.to_string();
    let host = format!("aidmesh-{}.local.", &me[me.len().saturating_sub(12)..]);
    let name_tag = nearby::name_tag(community);
    let passphrase = passphrase.to_string();
    let rx = daemon.browse(SERVICE)?;
    if !advertise {
        info!(
            "mDNS: looking for other nodes, not advertising this one (it listens on loopback only)"
        );
    }
    let registrar = daemon.clone();
    tokio::spawn(async move {
        // The words tag costs one Argon2id (as the community key): off the runtime,
        // before the advert goes out.
        let words_tag = tokio::task::spawn_blocking(move || nearby::words_tag(&passphrase))
            .await
            .unwrap_or_default();
        let ours = nearby::Tags {
            key: tag.clone(),
            name: name_tag,
            words: words_tag,
        };
        if advertise {
            let props = [
                ("p", me.as_str()),
                ("c", ours.key.as_str()),
                ("n", ours.name.as_str()),
                ("w", ours.words.as_str()),
            ];
            match ServiceInfo::new(SERVICE, &me, &host, "", port, &props[..])
                .map(ServiceInfo::enable_addr_auto)
                .and_then(|info| registrar.register(info))
            {
                Ok(()) => info!(port, "mDNS: advertising {SERVICE}"),
                Err(e) => {
                    warn!(error = %e, "mDNS: cannot advertise this node; others will not find it by mDNS")
                }
            }
        }
        // Drain promptly: mdns-sd closes a subscription that falls behind.
        while let Ok(ev) = rx.recv_async().await {
            let ServiceEvent::ServiceResolved(svc) = ev else {
                continue;
            };
            let Some(peer_s) = svc.get_property_val_str("p").map(str::to_string) else {
                continue;
            };
            if peer_s == me {
                continue;
            }
            let Ok(peer_id) = peer_s.parse::<PeerId>() else {
                debug!(peer = %peer_s, "mDNS: ignoring an advertisement with a bad peer id");
                continue;
            };
            if let Some(differs) = ours.judge(
                svc.get_property_val_str("c"),
                svc.get_property_val_str("n"),
                svc.get_property_val_str("w"),
            ) {
                let Some(ip) = svc
                    .addresses
                    .iter()
                    .map(|a| a.to_ip_addr())
                    .find(|ip| !ip.is_loopback() && !is_link_local_v6(ip))
                else {
                    continue;
                };
                debug!(peer = %peer_s, %ip, ?differs, "mDNS: found a node of another community; not connecting");
                let heard = Command::OtherCommunity {
                    peer: peer_s,
                    ip: ip.to_string(),
                    differs,
                };
                if commands.send(heard).await.is_err() {
                    return;
                }
                continue;
            }
            for ip in svc.addresses.iter().map(|a| a.to_ip_addr()) {
                if ip.is_loopback() || is_link_local_v6(&ip) {
                    continue;
                }
                let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
                let Ok(addr) =
                    format!("/{proto}/{ip}/tcp/{}/p2p/{peer_id}", svc.port).parse::<Multiaddr>()
                else {
                    continue;
                };
                debug!(%addr, "mDNS: found a peer");
                if commands.send(Command::Dial(addr)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Discovery { daemon })
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}
