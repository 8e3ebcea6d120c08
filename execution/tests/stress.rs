//! The worst case for a parallel executor: 100 chained blocks of 10,000 transactions over
//! two accounts, every transaction conflicting with its neighbours. The engine is forced on
//! (no fallback to the sequential loop) and must match the sequential executor block after
//! block, and the chained incremental root must match a recomputation at the end.
//!
//! `ORDO_STRESS_BLOCKS` changes the block count (default 100).

use ordo_execution::workload::{account_key, bench_config, GENESIS_BALANCE};
use ordo_execution::{
    genesis, Executor, GenesisSpec, MemoryState, ParallelExecutor, ParallelOptions, Pool,
    SequentialExecutor, Strategy,
};
use ordo_types::{Payload, Signature, SignedTransaction, SwapDirection, Transaction};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TXS: usize = 10_000;

#[test]
fn hundred_blocks_over_two_accounts() {
    let blocks: u64 = std::env::var("ORDO_STRESS_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let config = bench_config();
    let keys = [account_key(0), account_key(1)];
    let spec = GenesisSpec {
        accounts: keys
            .iter()
            .map(|k| (k.address(), GENESIS_BALANCE))
            .collect(),
        pools: vec![(
            0,
            Pool {
                reserve_a: 1 << 40,
                reserve_b: 1 << 40,
            },
        )],
        collections: vec![0],
    };
    let genesis = genesis(&spec).unwrap();
    let mut state = MemoryState::from_genesis(&genesis);
    let mut accumulator = genesis.accumulator.clone();
    let sequential = SequentialExecutor::new(config.clone());
    let engines: Vec<ParallelExecutor> = [(2, true), (2, false), (4, true)]
        .into_iter()
        .map(|(threads, preseed)| {
            let mut options = ParallelOptions::new(threads);
            options.strategy = Strategy::AlwaysParallel;
            options.preseed_estimates = preseed;
            ParallelExecutor::new(config.clone(), options).unwrap()
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(11);
    let mut nonces = [0u64; 2];
    let mut reexecutions = 0;
    for height in 1..=blocks {
        let txs: Vec<SignedTransaction> = (0..TXS)
            .map(|_| {
                let s = rng.gen_range(0..2);
                let payload = match rng.gen_range(0..10) {
                    0..=6 => Payload::Transfer {
                        to: keys[1 - s].address(),
                        amount: rng.gen_range(0..1_000),
                    },
                    7 => Payload::Swap {
                        pool: 0,
                        amount_in: rng.gen_range(0..1_000),
                        min_out: 0,
                        direction: SwapDirection::AToB,
                    },
                    8 => Payload::Mint { collection: 0 },
                    _ => Payload::Compute { iterations: 2 },
                };
                // Roughly one in a hundred carries a stale nonce.
                let nonce = if rng.gen_bool(0.01) {
                    nonces[s].saturating_sub(1)
                } else {
                    nonces[s] += 1;
                    nonces[s] - 1
                };
                SignedTransaction::Ordo(ordo_types::OrdoTransaction {
                    tx: Transaction {
                        chain_id: config.chain_id,
                        sender: keys[s],
                        nonce,
                        expiry: u64::MAX,
                        payload,
                    },
                    signature: Signature([0; 64]),
                })
            })
            .collect();
        let block = ordo_execution::BlockContext {
            height,
            timestamp_ms: height * 1_000,
        };
        let reference = sequential
            .execute_block(&state, &block, &txs, &accumulator)
            .unwrap();
        // One engine per block keeps the test's length bounded while covering each mode.
        let engine = &engines[(height as usize) % engines.len()];
        let out = engine
            .execute_block(&state, &block, &txs, &accumulator)
            .unwrap();
        assert!(out.stats.parallel, "the engine was forced on");
        assert_eq!(
            out.receipts, reference.receipts,
            "receipts at height {height}"
        );
        assert_eq!(
            out.write_set, reference.write_set,
            "writes at height {height}"
        );
        assert_eq!(
            out.state_root, reference.state_root,
            "root at height {height}"
        );
        reexecutions += out.stats.reexecutions;
        state.apply(&reference.write_set);
        accumulator = reference.accumulator;
    }
    assert_eq!(state.accumulator(), accumulator);
    eprintln!("{blocks} blocks, {reexecutions} re-executions");
}
