//! Batch dissemination across real sockets: proofs of availability, rejection of bad
//! batches, and a restarted validator that reconnects and fetches what it missed.

mod cluster;

use std::time::Duration;

use cluster::*;
use ordo_network::BatchBody;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_reach_every_validator_and_proofs_of_availability_form() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &|_, d| {
        d.max_batch_txs = 100;
    })
    .await;
    all_connected(&nodes, 3).await;

    const TXS: usize = 1000;
    let results = nodes[0]
        .diss
        .mempool()
        .insert_many(signed_txs(TXS, 50, 1), |_| 0, now_ms());
    assert!(results.iter().all(Result::is_ok));
    let mut proven = 0;
    let mut digests = Vec::new();
    while proven < TXS {
        let available = within(nodes[0].proofs.recv()).await.unwrap();
        available.proof.verify(&committee).unwrap();
        assert!(available.proof.signatures.len() >= committee.availability_threshold());
        proven += available.proof.info.num_txs as usize;
        digests.push(available.proof.info.digest);
    }
    assert_eq!(proven, TXS);
    assert!(digests.len() >= TXS / 100);
    // Admission control counts own items without a proof; each batch's count was given
    // back when its proof formed, before the proof came out.
    assert_eq!(nodes[0].diss.unproven_items(), 0);
    for node in &nodes {
        for d in &digests {
            assert!(
                node.diss.store().wait_for(d, WAIT).await,
                "validator {} lacks a batch",
                node.index
            );
        }
    }
    // Each signature was verified once per receiving validator; the author's mempool
    // verified its own at ingress, so its batches were not checked again.
    for node in &nodes[1..] {
        assert!(eventually(|| node.diss.stats().signatures_verified == TXS as u64).await);
        // One acknowledgement per batch, more if the author pushed a slow one again.
        assert!(
            eventually(|| node.diss.stats().batches_acknowledged as usize >= digests.len()).await
        );
    }
    assert_eq!(nodes[0].diss.stats().signatures_verified, 0);
    // Every receiver announces each pushed batch once, as stored (for the node to offer
    // to consensus); the author announces none of its own.
    for node in &mut nodes[1..] {
        let mut announced = std::collections::HashSet::new();
        while announced.len() < digests.len() {
            let info = within(node.stored.recv()).await.unwrap();
            assert_eq!(info.author, keys.consensus[0].public());
            assert!(digests.contains(&info.digest));
            assert!(announced.insert(info.digest), "announced twice");
        }
    }
    assert!(nodes[0].stored.try_recv().is_err());
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_signature_is_rejected_and_not_acknowledged() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &|_, _| {}).await;
    all_connected(&nodes, 3).await;

    let mut bad = signed_txs(200, 20, 2);
    bad[137].as_ordo_mut().unwrap().signature.0[5] ^= 0x40;
    let bad_info = nodes[0]
        .diss
        .disseminate(BatchBody::Transactions(bad))
        .await
        .unwrap();
    for node in &nodes[1..] {
        assert!(
            eventually(|| node.diss.stats().batches_rejected == 1).await,
            "validator {} did not reject",
            node.index
        );
        assert!(!node.diss.store().contains(&bad_info.digest));
        assert_eq!(node.diss.stats().batches_acknowledged, 0);
    }
    // The bad batch never gets a proof: the next proof is the good batch's.
    let good_info = nodes[0]
        .diss
        .disseminate(BatchBody::Transactions(signed_txs(200, 20, 3)))
        .await
        .unwrap();
    let available = within(nodes[0].proofs.recv()).await.unwrap();
    assert_eq!(available.proof.info, good_info);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_batches_are_refused_unless_configured() {
    let keys = keys(4);
    let committee = committee(&keys);
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &|_, _| {}).await;
    all_connected(&nodes, 3).await;
    nodes[0]
        .diss
        .disseminate(BatchBody::Opaque(vec![vec![1; 512]; 10]))
        .await
        .unwrap();
    for node in &nodes[1..] {
        assert!(eventually(|| node.diss.stats().batches_rejected == 1).await);
    }
    assert!(nodes[0].proofs.try_recv().is_err());
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_reconnects_and_fetches_what_it_missed() {
    let keys = keys(4);
    let committee = committee(&keys);
    let tweak = |n: &mut ordo_network::NetworkConfig, d: &mut ordo_network::DisseminationConfig| {
        n.batch_queue = 1;
        d.max_batch_txs = 50;
        d.max_batch_delay = Duration::from_millis(5);
        // No second push to a validator that has not acknowledged (within the test).
        d.resend_interval = Duration::from_secs(3600);
    };
    let mut nodes = start_cluster(&keys, &committee, &[0, 1, 2, 3], &tweak).await;
    all_connected(&nodes, 3).await;

    let down = nodes.pop().unwrap();
    let address = down.net.listen_addr().clone();
    down.shutdown().await;
    for n in &nodes {
        assert!(n.net.wait_connected(WAIT, |s| !s.contains(&3)).await);
        // What is sent to 3 while it is down is lost, as it would be on a real outage;
        // without this, a batch still in a writer's queue when 3 comes back would reach it
        // by push, and how many do is a matter of timing.
        n.net.set_partitioned(&[3]);
    }

    // While 3 is down, 0 and 1 make batches; 0, 1 and 2 form their proofs.
    let mut proofs = Vec::new();
    for (author, seed) in [(0usize, 10u8), (1, 11)] {
        let results =
            nodes[author]
                .diss
                .mempool()
                .insert_many(signed_txs(200, 20, seed), |_| 0, now_ms());
        assert!(results.iter().all(Result::is_ok));
        let mut proven = 0;
        while proven < 200 {
            let available = within(nodes[author].proofs.recv()).await.unwrap();
            proven += available.proof.info.num_txs as usize;
            proofs.push(available.proof);
        }
    }

    // 3 comes back on its old address; the others dial it again.
    for n in &nodes {
        n.net.set_partitioned(&[]);
    }
    let restarted = start_node(&keys, &committee, 3, address, &tweak).await;
    for n in &nodes {
        let key = committee.get(n.index).unwrap().consensus_key;
        restarted
            .net
            .set_peer_address(&key, n.net.listen_addr().clone())
            .unwrap();
    }
    assert!(
        restarted.net.wait_connected(WAIT, |s| s.len() == 3).await,
        "restarted validator not reconnected"
    );
    for n in &nodes {
        assert!(n.net.wait_connected(WAIT, |s| s.contains(&3)).await);
    }

    // Nothing it missed is pushed to it again: it fetches every batch from the validators
    // that acknowledged it, and verifies each signature once.
    for proof in &proofs {
        let batch = within(restarted.diss.fetch(proof)).await.unwrap();
        assert_eq!(batch.digest(), proof.info.digest);
        assert!(restarted.diss.store().contains(&proof.info.digest));
    }
    let stats = restarted.diss.stats();
    assert_eq!(stats.batches_acknowledged, 0, "nothing was pushed to it");
    assert_eq!(stats.batches_fetched as usize, proofs.len());
    assert_eq!(stats.signatures_verified, 400);

    // And it takes part again: a new batch from 0 reaches it.
    let info = nodes[0]
        .diss
        .disseminate(BatchBody::Transactions(signed_txs(10, 5, 12)))
        .await
        .unwrap();
    assert!(restarted.diss.store().wait_for(&info.digest, WAIT).await);
    restarted.shutdown().await;
    for n in &nodes {
        n.shutdown().await;
    }
}
