//! The swarm driver: the one task that owns the libp2p [`Swarm`]. It listens, dials the
//! other validators, bans misbehaving ones on [`Command::Ban`], and publishes which
//! validators are connected.
//!
//! Invariants:
//! - Only peers whose libp2p identity is in the committee get a connection: the allow list
//!   denies everyone else right after the noise handshake.
//! - A validator that is not connected is dialled again with exponential back-off, so a
//!   restarted validator is reconnected.
//! - A banned validator is disconnected and neither dialled nor accepted until its ban
//!   ends; then the back-off dialling resumes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, noise, tcp, yamux, Multiaddr, Swarm};
use libp2p_stream::Control;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use tracing::{debug, warn};

use super::config::NetworkConfig;
use crate::committee::Committee;
use crate::error::Error;
use crate::stats::NetworkStats;

/// What the rest of the endpoint asks of the driver.
pub(super) enum Command {
    /// Disconnect and refuse this validator for the ban duration.
    Ban(usize),
    /// Dial this validator at another address from now on.
    Address(usize, Multiaddr),
}

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    stream: libp2p_stream::Behaviour,
}

/// Builds the swarm, allows every validator, and listens; returns once the listening
/// address is known.
pub(super) async fn listen(
    config: &NetworkConfig,
    local_index: Option<usize>,
) -> Result<(Swarm<Behaviour>, Multiaddr), Error> {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        // `/dns/NAME/tcp/PORT` peer addresses, resolved at every dial: a peer whose name
        // moves to another address is found there on the next reconnect.
        .with_dns()
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|_| Behaviour {
            allow: Default::default(),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        // Validators stay connected: the long-lived streams keep connections busy, and an
        // idle one costs little next to a redial.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();

    for (i, v) in config.committee.validators().iter().enumerate() {
        swarm.behaviour_mut().allow.allow_peer(v.peer_id);
        if Some(i) != local_index {
            swarm.add_peer_address(v.peer_id, v.address.clone());
        }
    }

    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|e| Error::Listen {
            addr: config.listen_addr.to_string(),
            reason: e.to_string(),
        })?;
    let listen_addr = timeout(Duration::from_secs(10), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { reason: Err(e), .. } => return Err(e.to_string()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| "no listening address within 10 s".to_string())
    .and_then(|r| r)
    .map_err(|reason| Error::Listen {
        addr: config.listen_addr.to_string(),
        reason,
    })?;
    Ok((swarm, listen_addr))
}

/// A handle for opening and accepting streams on the swarm, for the writers, the accept
/// loops and requests.
pub(super) fn control(swarm: &Swarm<Behaviour>) -> Control {
    swarm.behaviour().stream.new_control()
}

pub(super) struct SwarmDriver {
    swarm: Swarm<Behaviour>,
    committee: Arc<Committee>,
    local_index: Option<usize>,
    stats: Arc<NetworkStats>,
    connected_tx: watch::Sender<HashSet<usize>>,
    addresses: Vec<Multiaddr>,
    connections: Vec<u32>,
    next_dial: Vec<Instant>,
    backoff: Vec<Duration>,
    banned_until: Vec<Option<Instant>>,
    backoff_min: Duration,
    backoff_max: Duration,
    ban_duration: Duration,
}

impl SwarmDriver {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        config: &NetworkConfig,
        local_index: Option<usize>,
        stats: Arc<NetworkStats>,
        connected_tx: watch::Sender<HashSet<usize>>,
    ) -> SwarmDriver {
        let committee = config.committee.clone();
        SwarmDriver {
            swarm,
            local_index,
            stats,
            connected_tx,
            addresses: committee
                .validators()
                .iter()
                .map(|v| v.address.clone())
                .collect(),
            connections: vec![0; committee.size()],
            next_dial: vec![Instant::now(); committee.size()],
            backoff: vec![config.dial_backoff_min; committee.size()],
            banned_until: vec![None; committee.size()],
            backoff_min: config.dial_backoff_min,
            backoff_max: config.dial_backoff_max,
            ban_duration: config.ban_duration,
            committee,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.backoff_min.min(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => match command {
                    Command::Ban(i) => self.ban(i),
                    Command::Address(i, addr) => self.set_address(i, addr),
                },
                _ = tick.tick() => self.dial_due(),
                _ = shutdown.changed() => break,
            }
        }
        debug!("network driver stopped");
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.committee.size() {
            if Some(i) == self.local_index {
                continue;
            }
            let Some(v) = self.committee.get(i) else {
                continue;
            };
            if let Some(until) = self.banned_until[i] {
                if until > now {
                    continue;
                }
                self.banned_until[i] = None;
                self.swarm.behaviour_mut().allow.allow_peer(v.peer_id);
            }
            if self.connections[i] > 0 || self.next_dial[i] > now {
                continue;
            }
            let opts = DialOpts::peer_id(v.peer_id)
                .addresses(vec![self.addresses[i].clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(peer = i, error = %e, "dial not started");
            }
            self.next_dial[i] = now + self.backoff[i];
            self.backoff[i] = (self.backoff[i] * 2).min(self.backoff_max);
        }
    }

    fn set_address(&mut self, i: usize, addr: Multiaddr) {
        let Some(v) = self.committee.get(i) else {
            return;
        };
        self.swarm.add_peer_address(v.peer_id, addr.clone());
        self.addresses[i] = addr;
        self.backoff[i] = self.backoff_min;
        self.next_dial[i] = Instant::now();
    }

    fn ban(&mut self, i: usize) {
        let Some(v) = self.committee.get(i) else {
            return;
        };
        warn!(peer = i, "dropping validator that sent undecodable data");
        self.stats.peer_dropped();
        self.banned_until[i] = Some(Instant::now() + self.ban_duration);
        self.swarm.behaviour_mut().allow.disallow_peer(v.peer_id);
    }

    fn publish_connected(&self) {
        let set: HashSet<usize> = (0..self.connections.len())
            .filter(|&i| self.connections[i] > 0)
            .collect();
        self.stats.set_connected(set.len());
        self.connected_tx.send_replace(set);
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                match self.committee.index_of_peer(&peer_id) {
                    Some(i) => {
                        self.connections[i] += 1;
                        self.backoff[i] = self.backoff_min;
                        debug!(peer = i, "connected");
                        self.publish_connected();
                    }
                    None => {
                        // The allow list should have denied it already.
                        self.stats.refused();
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                    }
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(i) = self.committee.index_of_peer(&peer_id) {
                    self.connections[i] = self.connections[i].saturating_sub(1);
                    if self.connections[i] == 0 {
                        debug!(peer = i, "disconnected");
                        self.next_dial[i] = Instant::now() + self.backoff[i];
                        self.publish_connected();
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    debug!(%send_back_addr, "refused a peer outside the validator set");
                    self.stats.refused();
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }
}
