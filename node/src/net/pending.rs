//! A bound on incoming connections still in their handshake, per remote IP address.
//!
//! Until pnet, noise and yamux are through, an incoming connection holds one of the
//! swarm's pending slots. Without a per-address bound, one host holding a few dozen raw
//! TCP sockets open (sending nothing) takes every slot and locks real peers out for as
//! long as it likes. With it, one address gets at most [`MAX_PENDING_PER_IP`] slots,
//! and the handshake deadline (see [`super::transport`]) frees them soon.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionEstablished, ListenFailure};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Most incoming connections in their handshake from one IP address.
pub const MAX_PENDING_PER_IP: usize = 4;

/// The denial, as logged by the swarm.
#[derive(Debug)]
pub struct TooManyFromAddress(pub IpAddr);

impl std::fmt::Display for TooManyFromAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} already has {MAX_PENDING_PER_IP} connections in their handshake",
            self.0
        )
    }
}

impl std::error::Error for TooManyFromAddress {}

/// Counts pending incoming connections by remote IP and denies those over the bound.
#[derive(Debug, Default)]
pub struct PendingPerIp {
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl PendingPerIp {
    fn done(&mut self, id: &ConnectionId) {
        if let Some(ip) = self.pending.remove(id) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

impl NetworkBehaviour for PendingPerIp {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_default();
        if *n >= MAX_PENDING_PER_IP {
            return Err(ConnectionDenied::new(TooManyFromAddress(ip)));
        }
        *n += 1;
        self.pending.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.done(&connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
            | FromSwarm::ConnectionEstablished(ConnectionEstablished { connection_id, .. }) => {
                self.done(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
