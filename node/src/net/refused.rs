//! Nodes of another community (another passphrase or name) that tried to connect:
//! the private-network handshake makes their connection fail, and the user should see
//! that in `status` and on the page, not only in the log. A small bounded record by IP.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

/// At most this many addresses are remembered; the oldest is forgotten first.
const MAX_ADDRESSES: usize = 16;

/// One address that failed the community handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The remote IP address.
    pub ip: String,
    /// Failed attempts from it.
    pub attempts: u64,
    /// Wall-clock ms of the last attempt.
    pub last_ms: u64,
}

/// The record kept by the network task.
#[derive(Debug, Default)]
pub struct RefusedLog {
    by_ip: HashMap<IpAddr, Refused>,
}

impl RefusedLog {
    /// Notes a failed attempt from `ip` at wall-clock `now_ms`.
    pub fn note(&mut self, ip: IpAddr, now_ms: u64) {
        if !self.by_ip.contains_key(&ip) && self.by_ip.len() >= MAX_ADDRESSES {
            if let Some(oldest) = self
                .by_ip
                .iter()
                .min_by_key(|(_, r)| r.last_ms)
                .map(|(ip, _)| *ip)
            {
                self.by_ip.remove(&oldest);
            }
        }
        let r = self.by_ip.entry(ip).or_insert_with(|| Refused {
            ip: ip.to_canonical().to_string(),
            attempts: 0,
            last_ms: now_ms,
        });
        r.attempts += 1;
        r.last_ms = now_ms;
    }

    /// Every address, most recent first.
    pub fn list(&self) -> Vec<Refused> {
        let mut v: Vec<Refused> = self.by_ip.values().cloned().collect();
        v.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then_with(|| a.ip.cmp(&b.ip)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_stays_bounded() {
        let mut log = RefusedLog::default();
        let a: IpAddr = "10.0.0.7".parse().unwrap();
        log.note(a, 1);
        log.note(a, 5);
        assert_eq!(
            log.list(),
            vec![Refused {
                ip: "10.0.0.7".into(),
                attempts: 2,
                last_ms: 5
            }]
        );
        for i in 0..40u8 {
            log.note(IpAddr::from([10, 1, 0, i]), 10 + u64::from(i));
        }
        let l = log.list();
        assert_eq!(l.len(), MAX_ADDRESSES);
        assert_eq!(l[0].ip, "10.1.0.39");
        assert!(
            l.iter().all(|r| r.ip != "10.0.0.7"),
            "the oldest went first"
        );
    }
}
