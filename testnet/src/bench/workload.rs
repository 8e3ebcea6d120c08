//! The benchmark's transactions, all built and signed before the clock starts.
//!
//! Senders take turns (transaction k is sent by account k mod N), so each account's
//! transactions carry consecutive nonces from its current one, and every account is
//! pinned to one submission lane (one validator): its transactions enter one mempool in
//! nonce order. Recipients, pools and collections are drawn from a seeded generator, so
//! a run is reproducible from its seed.

use ordo_cli::localnet::{BenchKey, TxFormat};
use ordo_execution::contracts::{call_data, Word};
use ordo_node::rpc::payload_hash;
use ordo_types::{Hash32, Payload, SeededRng, SignedTransaction, SwapDirection};
use rayon::prelude::*;

use super::config::{Skew, Workload};
use super::contracts::Contracts;

/// One transaction (or opaque payload) ready to go.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its canonical bytes as one element of a batch body.
    pub bytes: Box<[u8]>,
    pub hash: Hash32,
    /// The submission lane (an index into the live validators) that sends it.
    pub lane: u16,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub chain_id: u64,
    pub workload: Workload,
    pub tx_format: TxFormat,
    pub accounts: u32,
    /// Each account's next nonce when the run starts (empty for opaque payloads).
    pub start_nonces: Vec<u64>,
    pub skew: Skew,
    pub compute_iterations: u32,
    pub tx_size: usize,
    pub pools: u32,
    pub collections: u32,
    pub count: usize,
    pub lanes: usize,
    /// Unix time in milliseconds after which no block may include a transaction.
    pub expiry_ms: u64,
    pub seed: u64,
    /// What contract workloads call (deployed by set-up).
    pub contracts: Contracts,
}

/// Gas limits of the contract workloads' calls: each call's use with ample margin (a token
/// transfer takes about 35,000 to 52,000, a swap about 90,000, a mint about 75,000). The
/// sender must hold the limit's fee; it pays for what it uses.
/// Mixed into the seed that picks a defi-mix item's kind, so that the kind is independent
/// of the draws that shape the item.
const DEFI_MIX_SALT: u64 = 0xdef1_0000_0000_0000;
const TRANSFER_CALL_GAS: u64 = 100_000;
const SWAP_CALL_GAS: u64 = 200_000;
const MINT_CALL_GAS: u64 = 150_000;

/// The items, and each lane's item indices in sending order.
#[derive(Debug)]
pub struct Plan {
    pub items: Vec<Item>,
    pub lanes: Vec<Vec<u32>>,
}

/// The body of a batch request: the canonical encoding of a `Vec` whose elements are
/// already encoded (a little-endian `u64` count, then the elements).
pub fn batch_body<'a>(elements: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(elements.len() as u64).to_le_bytes());
    for e in elements {
        body.extend_from_slice(e);
    }
    body
}

/// Item `k`'s own stream under `seed`: items are built in parallel, in any order, so each
/// draws from a generator of its own rather than from one shared sequence. (An odd
/// multiplier keeps the streams' seeds distinct.)
fn item_rng(seed: u64, k: u64) -> SeededRng {
    SeededRng::new(seed ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// A uniform float in [0, 1).
fn unit(word: u64) -> f64 {
    (word >> 11) as f64 / (1u64 << 53) as f64
}

/// Draws recipients.
struct Recipients {
    skew: Skew,
    accounts: u32,
    /// Cumulative Zipf weights, for `Skew::Zipf`.
    cdf: Vec<f64>,
}

impl Recipients {
    fn new(skew: Skew, accounts: u32) -> Self {
        let cdf = match skew {
            Skew::Zipf { exponent } => {
                let mut total = 0.0;
                let mut cdf: Vec<f64> = (1..=accounts)
                    .map(|rank| {
                        total += 1.0 / f64::from(rank).powf(exponent);
                        total
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= total;
                }
                cdf
            }
            _ => Vec::new(),
        };
        Recipients {
            skew,
            accounts,
            cdf,
        }
    }

    fn draw(&self, a: u64, b: u64) -> u32 {
        match self.skew {
            Skew::Uniform => (a % u64::from(self.accounts)) as u32,
            Skew::Hot { accounts, share } => {
                if unit(b) < share {
                    (a % u64::from(accounts)) as u32
                } else {
                    (a % u64::from(self.accounts)) as u32
                }
            }
            Skew::Zipf { .. } => {
                let u = unit(a);
                (self.cdf.partition_point(|c| *c <= u) as u32).min(self.accounts - 1)
            }
        }
    }
}

fn payload(spec: &PlanSpec, recipients: &Recipients, keys: &[BenchKey], k: u64) -> Payload {
    let kind = match spec.workload {
        Workload::Mixed => [
            Workload::Transfer,
            Workload::Swap,
            Workload::Mint,
            Workload::Compute,
        ][(k % 4) as usize],
        // Item k's sender is account k % accounts, so each account runs the same mix.
        Workload::DefiMix => match item_rng(spec.seed ^ DEFI_MIX_SALT, k).next_u64() % 10 {
            0..=3 => Workload::Erc20,
            4..=6 => Workload::Amm,
            7..=8 => Workload::Nft,
            _ => Workload::Transfer,
        },
        w => w,
    };
    let mut rng = item_rng(spec.seed, k);
    let (r1, r2) = (rng.next_u64(), rng.next_u64());
    let c = &spec.contracts;
    let call = |to, input, gas_limit| Payload::Call {
        to,
        input,
        value: 0,
        gas_limit,
    };
    match kind {
        Workload::Erc20 => {
            let to = keys[recipients.draw(r1, r2) as usize].address();
            let input = call_data(
                "transfer(address,uint256)",
                &[Word::Address(to), Word::Uint(1)],
            );
            call(c.token, input, TRANSFER_CALL_GAS)
        }
        Workload::Amm => {
            let account = k % u64::from(spec.accounts.max(1));
            let pair = c.pairs[(account % c.pairs.len() as u64) as usize];
            let token_in = c.tokens[(r2 & 1) as usize];
            let input = call_data(
                "swap(address,uint256,uint256)",
                &[Word::Address(token_in), Word::Uint(1_000), Word::Uint(0)],
            );
            call(pair, input, SWAP_CALL_GAS)
        }
        Workload::Nft => {
            let collection = c.collections[(r1 % c.collections.len() as u64) as usize];
            call(collection, call_data("mint()", &[]), MINT_CALL_GAS)
        }
        Workload::Swap => Payload::Swap {
            pool: (r1 % u64::from(spec.pools.max(1))) as u32,
            amount_in: 1_000,
            min_out: 0,
            direction: if r2 & 1 == 0 {
                SwapDirection::AToB
            } else {
                SwapDirection::BToA
            },
        },
        Workload::Mint => Payload::Mint {
            collection: (r1 % u64::from(spec.collections.max(1))) as u32,
        },
        Workload::Compute => Payload::Compute {
            iterations: spec.compute_iterations,
        },
        _ => Payload::Transfer {
            to: keys[recipients.draw(r1, r2) as usize].address(),
            amount: 1,
        },
    }
}

fn opaque(spec: &PlanSpec, k: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(spec.tx_size);
    // The index first: payloads of one run never collide.
    bytes.extend_from_slice(&k.to_le_bytes());
    let mut rng = item_rng(spec.seed, k);
    while bytes.len() < spec.tx_size {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(spec.tx_size);
    bytes
}

/// Builds and signs every item on all cores.
pub fn build(spec: &PlanSpec) -> Plan {
    let lanes = spec.lanes.max(1);
    let items: Vec<Item> = if spec.workload == Workload::Opaque {
        (0..spec.count as u64)
            .into_par_iter()
            .map(|k| {
                let payload = opaque(spec, k);
                Item {
                    hash: payload_hash(&payload),
                    bytes: ordo_types::codec::encode(&payload).into_boxed_slice(),
                    lane: (k % lanes as u64) as u16,
                }
            })
            .collect()
    } else {
        let keys: Vec<BenchKey> = (0..spec.accounts)
            .into_par_iter()
            .map(|i| BenchKey::new(spec.chain_id, i, spec.tx_format))
            .collect();
        let recipients = Recipients::new(spec.skew, spec.accounts);
        let n = u64::from(spec.accounts);
        (0..spec.count as u64)
            .into_par_iter()
            .map(|k| {
                let account = (k % n) as usize;
                let signed: SignedTransaction = keys[account]
                    .sign(
                        spec.chain_id,
                        spec.start_nonces[account] + k / n,
                        spec.expiry_ms,
                        payload(spec, &recipients, &keys, k),
                    )
                    .expect("the configuration refuses native-only workloads in eth format");
                Item {
                    hash: signed.hash(),
                    bytes: signed.encode().into_boxed_slice(),
                    lane: (account % lanes) as u16,
                }
            })
            .collect()
    };
    let mut by_lane = vec![Vec::new(); lanes];
    for (i, item) in items.iter().enumerate() {
        by_lane[usize::from(item.lane)].push(i as u32);
    }
    Plan {
        items,
        lanes: by_lane,
    }
}

#[cfg(test)]
mod tests {
    use ordo_types::codec;

    use super::*;

    fn spec(workload: Workload, count: usize) -> PlanSpec {
        PlanSpec {
            chain_id: 7,
            workload,
            tx_format: TxFormat::Ordo,
            accounts: 10,
            start_nonces: (0..10).map(|i| i * 3).collect(),
            skew: Skew::Uniform,
            compute_iterations: 10,
            tx_size: 100,
            pools: 4,
            collections: 4,
            count,
            lanes: 3,
            expiry_ms: 1_000,
            seed: 1,
            contracts: Contracts::default(),
        }
    }

    #[test]
    fn batch_bodies_are_the_canonical_encoding_of_the_vec() {
        let plan = build(&spec(Workload::Mixed, 25));
        let body = batch_body(plan.items.iter().map(|i| &i.bytes[..]));
        let txs: Vec<SignedTransaction> =
            codec::decode::<Vec<SignedTransaction>, { 1 << 20 }>(&body).unwrap();
        assert_eq!(txs.len(), 25);
        assert_eq!(codec::encode(&txs), body);
        SignedTransaction::verify_many(&txs).unwrap();

        let plan = build(&spec(Workload::Opaque, 5));
        let body = batch_body(plan.items.iter().map(|i| &i.bytes[..]));
        let payloads: Vec<Vec<u8>> = codec::decode::<Vec<Vec<u8>>, { 1 << 20 }>(&body).unwrap();
        assert!(payloads.iter().all(|p| p.len() == 100));
        assert_eq!(plan.items[2].hash, payload_hash(&payloads[2]));
    }

    #[test]
    fn each_account_has_consecutive_nonces_on_one_lane() {
        let s = spec(Workload::Transfer, 95);
        let plan = build(&s);
        let mut next: Vec<Option<(u64, u16)>> = vec![None; 10];
        for lane in &plan.lanes {
            for &i in lane {
                let item = &plan.items[i as usize];
                let tx = SignedTransaction::decode(&item.bytes).unwrap();
                let a = (0..10)
                    .find(|&a| ordo_cli::localnet::bench_key(7, a).address() == tx.sender_address())
                    .unwrap() as usize;
                let expected = next[a].map_or(s.start_nonces[a], |(n, _)| n + 1);
                assert_eq!(tx.nonce(), expected);
                if let Some((_, l)) = next[a] {
                    assert_eq!(l, item.lane);
                }
                next[a] = Some((tx.nonce(), item.lane));
                assert_eq!(tx.hash(), item.hash);
            }
        }
    }

    #[test]
    fn hot_and_zipf_skews_concentrate_recipients() {
        let hot = Recipients::new(
            Skew::Hot {
                accounts: 2,
                share: 0.9,
            },
            1000,
        );
        let zipf = Recipients::new(Skew::Zipf { exponent: 1.2 }, 1000);
        let uniform = Recipients::new(Skew::Uniform, 1000);
        let count = |r: &Recipients| {
            (0..10_000u64)
                .filter(|&k| {
                    let mut rng = item_rng(3, k);
                    r.draw(rng.next_u64(), rng.next_u64()) < 2
                })
                .count()
        };
        assert!(count(&hot) > 8_500, "{}", count(&hot));
        assert!(count(&zipf) > 3_000, "{}", count(&zipf));
        assert!(count(&uniform) < 100, "{}", count(&uniform));
    }
}
