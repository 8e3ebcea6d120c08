//! The validator network on real sockets: delivery, refusal of outsiders, garbage senders,
//! and dead or slow peers.

mod cluster;

use std::time::{Duration, Instant};

use cluster::*;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::StreamProtocol;
use ordo_network::{
    network_keypair_from_seed, network_public_key, BatchBody, Committee, LinkDelay, ValidatorInfo,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_messages_reach_one_validator_and_all() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &|_, _| {}).await;
    all_connected(&nodes, 3).await;

    assert_eq!(nodes[0].net.broadcast_consensus(b"to all".to_vec()), 3);
    for node in &mut nodes[1..] {
        let (from, bytes) = within(node.consensus.recv()).await.unwrap();
        assert_eq!(from, keys.consensus[0].public());
        assert_eq!(bytes, b"to all");
    }
    nodes[1]
        .net
        .send_consensus(&keys.consensus[2].public(), b"to two".to_vec())
        .unwrap();
    let (from, bytes) = within(nodes[2].consensus.recv()).await.unwrap();
    assert_eq!(
        (from, bytes),
        (keys.consensus[1].public(), b"to two".to_vec())
    );
    assert!(nodes[1].consensus.try_recv().is_err() && nodes[3].consensus.try_recv().is_err());
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_outside_the_validator_set_is_refused() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &|_, _| {}).await;
    all_connected(&nodes, 3).await;

    // The outsider believes it is a validator: its own committee lists it.
    let outsider_net = network_keypair_from_seed([250; 32]);
    let outsider_key = ordo_types::KeyPair::from_seed([250; 32]);
    let mut listed: Vec<ValidatorInfo> = committee.validators().to_vec();
    listed.push(
        ValidatorInfo::new(
            outsider_key.public(),
            network_public_key(&outsider_net).unwrap(),
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        )
        .unwrap(),
    );
    for (v, n) in listed.iter_mut().zip(&nodes) {
        v.address = n.net.listen_addr().clone();
    }
    let outsider_committee = std::sync::Arc::new(Committee::new(CHAIN, listed).unwrap());
    let (outsider, _inbound) = ordo_network::start(ordo_network::NetworkConfig::new(
        outsider_net,
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        outsider_committee,
    ))
    .await
    .unwrap();

    assert!(
        eventually(|| nodes.iter().all(|n| n.net.stats().refused > 0)).await,
        "no validator refused the outsider"
    );
    outsider.broadcast_consensus(b"from outsider".to_vec());
    assert!(outsider.connected().is_empty());

    // A later message from a validator arrives; nothing from the outsider came before it.
    nodes[1]
        .net
        .send_consensus(&keys.consensus[0].public(), b"marker".to_vec())
        .unwrap();
    let (from, bytes) = within(nodes[0].consensus.recv()).await.unwrap();
    assert_eq!(
        (from, bytes.as_slice()),
        (keys.consensus[1].public(), b"marker".as_slice())
    );
    assert!(nodes[0].consensus.try_recv().is_err());
    outsider.shutdown().await;
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_sending_garbage_is_dropped_and_counted_without_disturbing_the_others() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2], &|_, _| {}).await;
    all_connected(&nodes, 2).await;

    // Validator 3's identity, driven by a bare libp2p swarm that speaks garbage.
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keys.network[3].clone())
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .build();
    let mut control = swarm.behaviour().new_control();
    let target = committee.get(0).unwrap().peer_id;
    swarm.dial(nodes[0].net.listen_addr().clone()).unwrap();
    within(async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } =
                swarm.select_next_some().await
            {
                assert_eq!(peer_id, target);
                return;
            }
        }
    })
    .await;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } = swarm.select_next_some().await
            {
                let _ = closed_tx.send(peer_id);
            }
        }
    });
    let mut stream = within(control.open_stream(target, StreamProtocol::new("/ordo/batch/1")))
        .await
        .unwrap();
    let garbage = [0xffu8; 64];
    stream
        .write_all(&(garbage.len() as u32).to_le_bytes())
        .await
        .unwrap();
    stream.write_all(&garbage).await.unwrap();
    stream.flush().await.unwrap();

    assert!(
        eventually(|| nodes[0].net.stats().decode_errors[3] >= 1).await,
        "garbage not counted"
    );
    assert_eq!(
        within(closed_rx.recv()).await,
        Some(target),
        "garbage sender not disconnected"
    );
    assert_eq!(nodes[0].net.stats().peers_dropped, 1);
    assert_eq!(nodes[0].net.stats().decode_errors[..3], [0, 0, 0]);

    // The others go on: a batch from 0 still gathers its proof of availability.
    let txs = signed_txs(50, 5, 9);
    let info = nodes[0]
        .diss
        .disseminate(BatchBody::Transactions(txs))
        .await
        .unwrap();
    let available = within(nodes[0].proofs.recv()).await.unwrap();
    assert_eq!(available.proof.info, info);
    available.proof.verify(&committee).unwrap();
    driver.abort();
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_and_a_slow_peer_do_not_stall_broadcast_to_the_others() {
    let keys = keys(4);
    let committee = committee(&keys);
    // Validator 3 never starts; validator 2 never reads its consensus channel.
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2], &|net, _| {
        net.consensus_queue = 256;
        net.inbound_queue = 64;
        net.write_timeout = Duration::from_millis(500);
    })
    .await;
    all_connected(&nodes, 2).await;

    const MESSAGES: usize = 3000;
    let payload = vec![7u8; 2048];
    let mut received = 0;
    for round in 0..MESSAGES / 100 {
        for i in 0..100 {
            let mut m = payload.clone();
            m[..8].copy_from_slice(&((round * 100 + i) as u64).to_le_bytes());
            nodes[0].net.broadcast_consensus(m);
        }
        // Keep the live reader's queue from overflowing: wait for this round to arrive.
        while received < (round + 1) * 100 {
            let (_, bytes) = within(nodes[1].consensus.recv()).await.unwrap();
            assert_eq!(
                u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize,
                received
            );
            received += 1;
        }
    }
    assert_eq!(received, MESSAGES);
    let dropped = nodes[0].net.stats().sends_dropped;
    // The live peer lost nothing; the slow one lost what its bounded queue could not hold;
    // the dead one lost all but at most a queueful.
    assert_eq!(dropped[1], 0);
    assert!(dropped[2] > 0, "the slow peer's queue never filled");
    assert!(
        dropped[3] >= (MESSAGES - 256) as u64,
        "dead peer: dropped only {}",
        dropped[3]
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_requests_are_answered_by_the_node() {
    use ordo_network::{Request, Response};
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1], &|_, _| {}).await;
    all_connected(&nodes, 1).await;
    let mut requests = std::mem::replace(&mut nodes[0].requests, tokio::sync::mpsc::channel(1).1);
    let server = tokio::spawn(async move {
        let request = requests.recv().await.unwrap();
        let Request::Opaque(bytes) = &request.request else {
            panic!("not opaque")
        };
        let mut answer = bytes.clone();
        answer.reverse();
        request.respond(Response::Opaque(answer));
    });
    let response = nodes[1]
        .net
        .request(
            &keys.consensus[0].public(),
            &Request::Opaque(b"block 5".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(response, Response::Opaque(b"5 kcolb".to_vec()));
    within(server).await.unwrap();
    // A validator that is down answers nothing: the request fails within its timeout.
    assert!(nodes[1]
        .net
        .request(&keys.consensus[3].public(), &Request::Opaque(vec![1]))
        .await
        .is_err());
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A proposal that names hundreds of batches a validator lacks makes it ask the proposer
/// for all of them at once. A yamux connection that counts more than 512 open streams is
/// torn down (consensus streams with it), and a server drops request streams beyond the
/// number it serves at once: every one of these requests must still be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_to_one_peer_is_answered_and_keeps_the_connection() {
    use ordo_network::{Request, Response};
    const BURST: usize = 700;
    let keys = keys(2);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1], &|_, _| {}).await;
    all_connected(&nodes, 1).await;
    let mut requests = std::mem::replace(&mut nodes[0].requests, tokio::sync::mpsc::channel(1).1);
    // The server answers each request after a while, as a loaded validator does, so the
    // burst is in flight all at once unless the requester paces it.
    let server = tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let Request::Opaque(bytes) = &request.request else {
                    panic!("not opaque")
                };
                let answer = bytes.clone();
                request.respond(Response::Opaque(answer));
            });
        }
    });
    let to = keys.consensus[0].public();
    let burst = (0..BURST as u32).map(|i| {
        let net = nodes[1].net.clone();
        async move {
            let asked = i.to_le_bytes().to_vec();
            (
                net.request(&to, &Request::Opaque(asked.clone())).await,
                asked,
            )
        }
    });
    let answers = within(futures::future::join_all(burst)).await;
    let failed: Vec<String> = answers
        .iter()
        .filter(|(answer, asked)| !matches!(answer, Ok(Response::Opaque(b)) if b == asked))
        .map(|(answer, _)| format!("{answer:?}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {BURST} requests failed, the first: {}",
        failed.len(),
        failed[0]
    );
    // Consensus still flows between the two afterwards. (Before lanes, the failures above
    // were streams the server dropped, reported as "connection is closed".)
    nodes[1].net.send_consensus(&to, b"after".to_vec()).unwrap();
    let (_, bytes) = within(nodes[0].consensus.recv()).await.unwrap();
    assert_eq!(bytes, b"after");
    server.abort();
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_drops_traffic_both_ways_until_healed() {
    let keys = keys(3);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2], &|_, _| {}).await;
    all_connected(&nodes, 2).await;

    // 0 and 1 cut each other off (as a partition is set: on both sides, so nothing is left
    // in flight), while 2 still hears from both. An index of one's own is ignored.
    assert_eq!(nodes[0].net.set_partitioned(&[1, 0]), vec![1]);
    assert_eq!(nodes[1].net.set_partitioned(&[0]), vec![0]);
    assert_eq!(nodes[0].net.broadcast_consensus(b"split".to_vec()), 1);
    let (from, _) = within(nodes[2].consensus.recv()).await.unwrap();
    assert_eq!(from, keys.consensus[0].public());
    nodes[1]
        .net
        .send_consensus(&keys.consensus[0].public(), b"from one".to_vec())
        .unwrap();
    nodes[1]
        .net
        .send_consensus(&keys.consensus[2].public(), b"from one".to_vec())
        .unwrap();
    let (from, _) = within(nodes[2].consensus.recv()).await.unwrap();
    assert_eq!(from, keys.consensus[1].public());

    // Each direction is one ordered stream: had "split" or "from one" got through, it would
    // arrive before what is sent after healing.
    assert!(nodes[0].net.set_partitioned(&[]).is_empty());
    assert!(nodes[1].net.set_partitioned(&[]).is_empty());
    nodes[0]
        .net
        .send_consensus(&keys.consensus[1].public(), b"healed".to_vec())
        .unwrap();
    let (from, bytes) = within(nodes[1].consensus.recv()).await.unwrap();
    assert_eq!(
        (from, bytes),
        (keys.consensus[0].public(), b"healed".to_vec())
    );
    nodes[1]
        .net
        .send_consensus(&keys.consensus[0].public(), b"healed too".to_vec())
        .unwrap();
    let (from, bytes) = within(nodes[0].consensus.recv()).await.unwrap();
    assert_eq!(
        (from, bytes),
        (keys.consensus[1].public(), b"healed too".to_vec())
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_link_delay_holds_messages_for_it_in_order() {
    let keys = keys(2);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1], &|_, _| {}).await;
    all_connected(&nodes, 1).await;
    let to = keys.consensus[1].public();

    // 0 delays what it sends 1 by 150 ms, with up to 50 ms of jitter: every message takes
    // at least the delay, and jitter never reorders them.
    let delay = LinkDelay {
        one_way: Duration::from_millis(150),
        jitter: Duration::from_millis(50),
    };
    let set = nodes[0].net.set_link_delay(None, delay);
    assert_eq!(set[1], delay);
    assert!(set[0].is_none(), "its own index is left alone: {set:?}");
    let sent = Instant::now();
    for i in 0..20u8 {
        nodes[0].net.send_consensus(&to, vec![i]).unwrap();
    }
    for i in 0..20u8 {
        let (_, bytes) = within(nodes[1].consensus.recv()).await.unwrap();
        assert_eq!(bytes, vec![i], "in the order sent");
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(150),
        "{:?}",
        sent.elapsed()
    );

    // Removed, the delay is gone from every peer.
    let cleared = nodes[0].net.set_link_delay(None, LinkDelay::default());
    assert!(cleared.iter().all(LinkDelay::is_none), "{cleared:?}");
    nodes[0].net.send_consensus(&to, b"after".to_vec()).unwrap();
    let (_, bytes) = within(nodes[1].consensus.recv()).await.unwrap();
    assert_eq!(bytes, b"after");
    for n in &nodes {
        n.shutdown().await;
    }
}
