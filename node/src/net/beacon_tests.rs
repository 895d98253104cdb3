//! Tests of `beacon`.

use super::*;

fn key() -> BeaconKey {
    BeaconKey::of(&[7; 32])
}

fn beacon() -> Beacon {
    Beacon {
        peer: PeerId::random(),
        port: 4610,
        addr: Ipv4Addr::new(10, 1, 2, 3),
        boot: 0x0102_0304_0506_0708,
        seq: 1,
        time_ms: 1_765_000_000_000,
    }
}

fn from() -> SocketAddr {
    "10.1.2.3:4612".parse().unwrap()
}

#[test]
fn a_beacon_round_trips_under_its_key_and_carries_no_community_tag() {
    let b = beacon();
    let bytes = b.encode(&key());
    assert_eq!(bytes.len(), HEAD + b.peer.to_bytes().len() + MAC_LEN);
    assert!((MIN_BEACON..=MAX_BEACON).contains(&bytes.len()));
    assert_eq!(Beacon::decode(&bytes, &key()), Ok(b.clone()));
    // The old format's tag (key_tag of the community key) is nowhere in it.
    let tag = tag_of(&[7; 32]);
    assert!(!bytes.windows(8).any(|w| w == tag));
    // Another community's key does not confirm it.
    assert_eq!(
        Beacon::decode(&bytes, &BeaconKey::of(&[8; 32])),
        Err(BeaconError::Mac)
    );
}

fn tag_of(k: &[u8; 32]) -> Vec<u8> {
    hex::decode(aidmesh_protocol::community::key_tag(k)).unwrap()
}

#[test]
fn the_beacon_is_the_test_vector_of_protocol_md() {
    // docs/protocol.md 9.1, computed from the spec with Python's blake3.
    let community: [u8; 32] = std::array::from_fn(|i| i as u8);
    let b = Beacon {
        peer: "12D3KooWFe1tHkzdbVqvZwZpWNFigXWvPC4E6MaefTQdqhhSwZ3N"
            .parse()
            .unwrap(),
        port: 4610,
        addr: Ipv4Addr::new(192, 168, 1, 20),
        boot: 0x0123_4567_89ab_cdef,
        seq: 1,
        time_ms: 1_790_000_000_000,
    };
    let key = BeaconKey::of(&community);
    assert_eq!(
        hex::encode(key.0),
        "f4353f69c1a2e371667ce98e7f0afa4844ce18d9afe5a36b358c08c488923a3b"
    );
    let want = "414d42321202c0a801140123456789abcdef0000000000000001000001a0c4506c00\
                26002408011220567f60ecc56be878a7723fd0d7a8e4ac3562b894290c202100b27e\
                193891450986e64eedf91aacf294795f1952d43428";
    assert_eq!(hex::encode(b.encode(&key)), want);
    assert_eq!(Beacon::decode(&hex::decode(want).unwrap(), &key), Ok(b));
}

#[test]
fn any_changed_byte_fails_the_mac_before_any_field_is_read() {
    let good = beacon().encode(&key());
    for i in 4..good.len() {
        for flip in [1u8, 0x80, 0xff] {
            let mut x = good.clone();
            x[i] ^= flip;
            assert_eq!(
                Beacon::decode(&x, &key()),
                Err(BeaconError::Mac),
                "byte {i} ^ {flip:#x}"
            );
        }
    }
    // A forged port 0 or bad peer id is a MAC failure, not a field error...
    let mut p = good.clone();
    p[4] = 0;
    p[5] = 0;
    assert_eq!(Beacon::decode(&p, &key()), Err(BeaconError::Mac));
    // ...while the same fields signed with the key are refused by name.
    let mut zero = beacon();
    zero.port = 0;
    assert_eq!(
        Beacon::decode(&zero.encode(&key()), &key()),
        Err(BeaconError::Port)
    );
}

#[test]
fn every_malformed_datagram_is_refused_not_panicked_on() {
    let k = key();
    let good = beacon().encode(&k);
    assert_eq!(Beacon::decode(&[], &k), Err(BeaconError::Length(0)));
    assert_eq!(
        Beacon::decode(&[0; MAX_BEACON + 1], &k),
        Err(BeaconError::Length(MAX_BEACON + 1))
    );
    let mut m = good.clone();
    m[0] = b'X';
    assert_eq!(Beacon::decode(&m, &k), Err(BeaconError::Magic));
    let mut old = good.clone();
    old[3] = b'1';
    assert_eq!(Beacon::decode(&old, &k), Err(BeaconError::Magic));
    // A peer id length that does not match, re-signed so that the MAC passes.
    let resign = |mut body: Vec<u8>| {
        let mac = k.mac(&body);
        body.extend_from_slice(&mac);
        body
    };
    let body = good[..good.len() - MAC_LEN].to_vec();
    let mut l = body.clone();
    l[34] += 1;
    assert_eq!(Beacon::decode(&resign(l), &k), Err(BeaconError::PeerLength));
    let mut extra = body.clone();
    extra.push(0);
    assert_eq!(
        Beacon::decode(&resign(extra), &k),
        Err(BeaconError::PeerLength)
    );
    let mut id = body.clone();
    id[HEAD] = 0xff;
    assert_eq!(Beacon::decode(&resign(id), &k), Err(BeaconError::PeerId));
    // Every truncation and every single-byte change, signed or not: an answer.
    for n in 0..good.len() {
        let _ = Beacon::decode(&good[..n], &k);
        let _ = Beacon::decode(&resign(body[..n.min(body.len())].to_vec()), &k);
        for v in [0u8, 1, 0x7f, 0xff] {
            let mut x = body.clone();
            if n < x.len() {
                x[n] = v;
            }
            let _ = Beacon::decode(&resign(x), &k);
        }
    }
}

#[test]
fn only_a_fresh_beacon_of_our_community_from_its_own_address_is_dialled() {
    let (me, k, t0) = (PeerId::random(), key(), Instant::now());
    let mut fresh = Freshness::default();
    let b = beacon();
    let want: Multiaddr = format!("/ip4/10.1.2.3/tcp/4610/p2p/{}", b.peer)
        .parse()
        .unwrap();
    let at: SocketAddr = "10.1.2.3:4610".parse().unwrap();
    // Re-sent from another host: dropped, and it does not use up the real one.
    let elsewhere: SocketAddr = "10.1.2.99:4612".parse().unwrap();
    assert_eq!(
        hear(&b.encode(&k), elsewhere, &me, &k, &mut fresh, t0),
        Heard::Moved { claimed: b.addr }
    );
    assert_eq!(
        hear(&b.encode(&k), from(), &me, &k, &mut fresh, t0),
        Heard::Dial(want, at)
    );
    // The same datagram again (a replay from its own address): stale.
    assert_eq!(
        hear(&b.encode(&k), from(), &me, &k, &mut fresh, t0),
        Heard::Stale
    );
    assert_eq!(
        hear(
            &b.encode(&BeaconKey::of(&[8; 32])),
            from(),
            &me,
            &k,
            &mut fresh,
            t0
        ),
        Heard::Bad(BeaconError::Mac)
    );
    let mut own = beacon();
    own.peer = me;
    assert_eq!(
        hear(&own.encode(&k), from(), &me, &k, &mut fresh, t0),
        Heard::Own
    );
    assert_eq!(
        hear(b"hello", from(), &me, &k, &mut fresh, t0),
        Heard::Bad(BeaconError::Length(5))
    );
}

#[test]
fn replays_are_dropped_and_a_restarted_node_is_taken_whatever_its_clock() {
    let t0 = Instant::now();
    let mut f = Freshness::default();
    let b = beacon();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let with = |boot: u64, seq: u64, time_ms: u64| Beacon {
        boot,
        seq,
        time_ms,
        ..b.clone()
    };
    let day = 86_400_000;
    assert!(f.take(&with(1, 1, 100 * day), at(0)), "a new peer");
    assert!(!f.take(&with(1, 1, 100 * day), at(1)), "the same again");
    assert!(f.take(&with(1, 5, 100 * day), at(2)), "a later one");
    assert!(!f.take(&with(1, 3, 100 * day + 9), at(3)), "an earlier one");
    // The sequence number decides within a boot, not the clock.
    assert!(f.take(&with(1, 6, 0), at(4)));
    // A restart with a clock that moved on: taken at once.
    assert!(f.take(&with(2, 1, 100 * day + 60_000), at(5)));
    // A replay of the older boot, later in time: never while boot 2 speaks.
    assert!(!f.take(&with(1, 7, 100 * day), at(6)));
    assert!(f.take(&with(2, 2, 100 * day + 90_000), at(30)));
    assert!(!f.take(
        &with(1, 8, 100 * day),
        at(30 + NEW_BOOT_GRACE.as_secs() - 1)
    ));
    // A Raspberry Pi that restarted without a real-time clock says 1970: taken
    // once its old boot has been silent for the grace (it has stopped), not before.
    let pi = with(3, 1, 5_000);
    assert!(!f.take(&pi, at(40)));
    assert!(f.take(&with(3, 4, 35_000), at(30 + NEW_BOOT_GRACE.as_secs())));
    assert!(f.take(&with(3, 5, 65_000), at(30 + NEW_BOOT_GRACE.as_secs() + 30)));
}

#[test]
fn what_is_remembered_is_bounded() {
    let t0 = Instant::now();
    let mut f = Freshness::default();
    let mut m = DialMemo::default();
    for i in 0..(3 * MAX_REMEMBERED as u64) {
        let mut b = beacon();
        b.peer = PeerId::random();
        let now = t0 + Duration::from_millis(i);
        assert!(f.take(&b, now));
        let a = SocketAddr::from(([10, 9, (i / 250) as u8, (i % 250) as u8], 4610));
        assert!(m.allow(a, now));
    }
    assert!(f.last.len() <= MAX_REMEMBERED);
    assert!(m.at.len() <= MAX_REMEMBERED);
}

#[test]
fn an_address_is_dialled_because_of_a_beacon_at_most_once_a_minute() {
    let t0 = Instant::now();
    let mut m = DialMemo::default();
    let a: SocketAddr = "10.1.2.3:4610".parse().unwrap();
    let other_port: SocketAddr = "10.1.2.3:4611".parse().unwrap();
    assert!(m.allow(a, t0));
    assert!(!m.allow(a, t0 + DIAL_EVERY - Duration::from_millis(1)));
    assert!(m.allow(other_port, t0), "per address and port");
    assert!(m.allow(a, t0 + DIAL_EVERY));
}

#[test]
fn beacons_burst_at_start_then_every_thirty_seconds_jittered() {
    assert_eq!(next_after(1, 0), Duration::from_secs(1));
    assert_eq!(next_after(2, 0), Duration::from_secs(2));
    let waits: Vec<Duration> = (0..1000u64)
        .map(|j| next_after(3, j.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let (lo, hi) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
    assert!(*lo >= Duration::from_secs(24) && *hi <= Duration::from_secs(36));
    assert!(*hi - *lo > Duration::from_secs(10), "the wait is jittered");
}

#[test]
fn a_flood_of_beacons_is_cut_to_the_rate_limit_each_second() {
    let t0 = Instant::now();
    let mut l = RateLimit::new(MAX_HEARD_PER_SEC);
    let allowed = (0..1000).filter(|_| l.allow(t0)).count();
    assert_eq!(allowed, MAX_HEARD_PER_SEC as usize);
    assert!(!l.allow(t0 + Duration::from_millis(999)));
    assert!(
        l.allow(t0 + Duration::from_secs(1)),
        "a new second, a new budget"
    );
}

#[test]
fn the_beacon_key_is_derived_not_the_community_key_itself() {
    let k = BeaconKey::of(&[7; 32]);
    assert_ne!(k.0, [7; 32]);
    assert_ne!(k.0, BeaconKey::of(&[8; 32]).0);
    assert_eq!(format!("{k:?}"), "BeaconKey(..)", "never printed");
}

fn iface(name: &str, ip: &str, mask: &str, brd: Option<&str>) -> if_addrs::Interface {
    if_addrs::Interface {
        name: name.into(),
        addr: if_addrs::IfAddr::V4(if_addrs::Ifv4Addr {
            ip: ip.parse().unwrap(),
            netmask: mask.parse().unwrap(),
            prefixlen: 24,
            broadcast: brd.map(|b| b.parse().unwrap()),
        }),
        index: None,
        oper_status: if_addrs::IfOperStatus::Up,
        is_p2p: false,
    }
}

#[test]
fn targets_are_each_interface_broadcast_and_the_limited_broadcast() {
    let t = targets(&[
        iface("lo", "127.0.0.1", "255.0.0.0", None),
        iface("eth0", "10.0.1.5", "255.255.255.0", Some("10.0.1.255")),
        iface("eth1", "10.0.2.5", "255.255.254.0", None),
    ]);
    let want: Vec<Ipv4Addr> = ["10.0.1.255", "10.0.3.255", "255.255.255.255"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(t, want);
}

#[test]
fn an_address_added_without_brd_gets_its_broadcast_computed_never_0_0_0_0() {
    // `ip addr add 10.0.0.5/24 dev wlan0` (no `brd`) reports broadcast 0.0.0.0, or
    // the address itself, or nothing, depending on the C library.
    let want: Vec<Ipv4Addr> = ["10.0.0.255", "255.255.255.255"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for reported in [Some("0.0.0.0"), Some("10.0.0.5"), None, Some("10.9.9.255")] {
        let t = targets(&[iface("wlan0", "10.0.0.5", "255.255.255.0", reported)]);
        assert_eq!(t, want, "broadcast reported as {reported:?}");
    }
    // With `brd +` the set one is used as it is.
    let t = targets(&[iface(
        "wlan0",
        "10.0.0.5",
        "255.255.255.0",
        Some("10.0.0.255"),
    )]);
    assert_eq!(t, want);
}
