//! Contract workloads' set-up, before the clock starts: the example contracts deployed,
//! and the benchmark accounts funded with tokens and their approvals given, by ordinary
//! signed transactions that must each commit and succeed.
//!
//! Bench account 0 owns what is deployed; its deployments' addresses follow from its
//! nonce (the EVM's `CREATE` rule), so the plan can name them before they exist.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ordo_cli::localnet::{BenchKey, TxFormat};
use ordo_execution::contracts::{
    add_liquidity, approve_all, collection_init_code, create_address, mint_batch, pair_init_code,
    token_init_code,
};
use ordo_types::{now_ms, Address, Payload, SignedTransaction};

use super::config::Workload;
use super::shared::Shared;
use super::verify::read_accounts;
use super::workload::{batch_body, Item};
use crate::client;
use crate::error::{Result, TestnetError};

/// Accounts funded by one `mintBatch` call, at about 26,000 gas each.
const MINT_CHUNK: usize = 200;
const MINT_GAS: u64 = 8_000_000;
const DEPLOY_GAS: u64 = 5_000_000;
const SETUP_CALL_GAS: u64 = 200_000;
/// A pair's first liquidity writes several fresh slots and takes a square root.
const LIQUIDITY_GAS: u64 = 1_000_000;
/// Gas limits sent at once: what is in flight together may land in one block, whose
/// contract transactions must fit the genesis block gas limit (default 1 billion).
const SETUP_GAS_IN_FLIGHT: u64 = 300_000_000;
/// Transactions per submission: below admission control's smallest in-flight limit.
const SUBMIT_CHUNK: usize = 500;
/// Tokens each account receives (and the pools hold): far more than a run spends.
const FUNDS: u128 = 1 << 64;
/// How long set-up may take before the benchmark gives up.
const SETUP_DEADLINE: Duration = Duration::from_secs(600);

/// What the workload's transactions call.
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    /// The ERC-20 (erc20; the pairs' first token in defi-mix).
    pub token: Address,
    /// The pairs' two tokens and the pairs (amm, defi-mix); account `a` trades on pair `a % pairs`.
    pub tokens: [Address; 2],
    pub pairs: Vec<Address>,
    /// The NFT collections (nft, defi-mix).
    pub collections: Vec<Address>,
}

/// Signs transactions for one account from its current nonce.
struct Signer {
    key: BenchKey,
    nonce: u64,
    chain_id: u64,
    expiry: u64,
}

impl Signer {
    fn sign(&mut self, payload: Payload) -> SignedTransaction {
        let tx = self
            .key
            .sign(self.chain_id, self.nonce, self.expiry, payload)
            .expect("set-up signs only calls and deployments, which both formats carry");
        self.nonce += 1;
        tx
    }

    fn deploy(&mut self, init_code: Vec<u8>) -> (SignedTransaction, Address) {
        let address = create_address(&self.key.address(), self.nonce);
        let tx = self.sign(Payload::Deploy {
            init_code,
            value: 0,
            gas_limit: DEPLOY_GAS,
        });
        (tx, address)
    }

    fn call(&mut self, to: Address, input: Vec<u8>, gas_limit: u64) -> SignedTransaction {
        self.sign(Payload::Call {
            to,
            input,
            value: 0,
            gas_limit,
        })
    }
}

/// What set-up deploys for, and on which chain.
pub struct SetUpSpec {
    pub workload: Workload,
    pub format: TxFormat,
    pub chain_id: u64,
    pub accounts: u32,
    pub pools: u32,
    pub collections: u32,
}

/// Deploys and funds what `workload` calls, through `addr`; `None` for native workloads.
pub fn set_up(
    spec: &SetUpSpec,
    addr: SocketAddr,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Contracts>> {
    let SetUpSpec {
        workload,
        format,
        chain_id,
        accounts,
        pools,
        collections,
    } = *spec;
    if !workload.is_contract() {
        return Ok(None);
    }
    let keys: Vec<BenchKey> = (0..accounts)
        .map(|i| BenchKey::new(chain_id, i, format))
        .collect();
    let addresses: Vec<Address> = keys.iter().map(BenchKey::address).collect();
    let nonces = read_accounts(addr, chain_id, accounts, format)?;
    let expiry = now_ms() + SETUP_DEADLINE.as_millis() as u64;
    let mut signers: Vec<Signer> = keys
        .into_iter()
        .zip(&nonces)
        .map(|(key, (_, nonce))| Signer {
            key,
            nonce: *nonce,
            chain_id,
            expiry,
        })
        .collect();
    let mut contracts = Contracts::default();
    // Rounds of transactions: each round commits before the next is sent, so that what
    // a round calls exists.
    let mut rounds: Vec<Vec<SignedTransaction>> = Vec::new();
    let owner = &mut signers[0];
    match workload {
        Workload::Erc20 => {
            let (tx, token) = owner.deploy(token_init_code("Bench", "BEN", FUNDS));
            contracts.token = token;
            let mints = addresses
                .chunks(MINT_CHUNK)
                .map(|chunk| owner.call(token, mint_batch(chunk, FUNDS), MINT_GAS));
            rounds.push(std::iter::once(tx).chain(mints).collect());
        }
        Workload::Nft => {
            rounds.push(collection_deploys(owner, collections, &mut contracts));
        }
        Workload::Amm => {
            rounds = amm(&mut signers, &addresses, pools, &mut contracts);
        }
        Workload::DefiMix => {
            // The collections first: the AMM's last round holds account 0's approvals, so
            // nothing account 0 signs may come after them in an earlier round.
            rounds.push(collection_deploys(owner, collections, &mut contracts));
            rounds.extend(amm(&mut signers, &addresses, pools, &mut contracts));
            // ERC-20 transfers move the pairs' first token, which every account holds.
            contracts.token = contracts.tokens[0];
        }
        _ => unreachable!("native workloads return above"),
    }
    let deadline = Instant::now() + SETUP_DEADLINE;
    for (r, txs) in rounds.iter().enumerate() {
        progress(&format!(
            "setting up the {} workload: {} transactions (round {} of {})",
            workload.name(),
            txs.len(),
            r + 1,
            rounds.len()
        ));
        for part in by_gas(txs) {
            submit(addr, part, deadline)?;
            for tx in part {
                await_success(addr, tx, deadline)?;
            }
        }
    }
    Ok(Some(contracts))
}

/// `collections` (at least one) NFT collections, deployed by `owner`.
fn collection_deploys(
    owner: &mut Signer,
    collections: u32,
    contracts: &mut Contracts,
) -> Vec<SignedTransaction> {
    let init = collection_init_code();
    (0..collections.max(1))
        .map(|_| {
            let (tx, address) = owner.deploy(init.clone());
            contracts.collections.push(address);
            tx
        })
        .collect()
}

/// The AMM's rounds: two tokens and `pools` (at least one) pairs deployed by account 0,
/// liquidity in every pair, both tokens minted to every account; then each account
/// approves its pair (`account % pairs`) for both tokens.
fn amm(
    signers: &mut [Signer],
    addresses: &[Address],
    pools: u32,
    contracts: &mut Contracts,
) -> Vec<Vec<SignedTransaction>> {
    let owner = &mut signers[0];
    let mut first = Vec::new();
    let (tx_a, a) = owner.deploy(token_init_code("A", "A", FUNDS));
    let (tx_b, b) = owner.deploy(token_init_code("B", "B", FUNDS));
    first.extend([tx_a, tx_b]);
    contracts.tokens = [a, b];
    for _ in 0..pools.max(1) {
        let (tx, address) = owner.deploy(pair_init_code(a, b));
        first.push(tx);
        contracts.pairs.push(address);
    }
    let liquidity = FUNDS / (4 * contracts.pairs.len() as u128);
    for &p in &contracts.pairs {
        for token in [a, b] {
            first.push(owner.call(token, approve_all(p), SETUP_CALL_GAS));
        }
        let add = add_liquidity(liquidity, liquidity);
        first.push(owner.call(p, add, LIQUIDITY_GAS));
    }
    for token in [a, b] {
        for chunk in addresses.chunks(MINT_CHUNK) {
            first.push(owner.call(token, mint_batch(chunk, FUNDS), MINT_GAS));
        }
    }
    let mut approvals = Vec::new();
    for (i, signer) in signers.iter_mut().enumerate() {
        let p = contracts.pairs[i % contracts.pairs.len()];
        for token in [a, b] {
            approvals.push(signer.call(token, approve_all(p), SETUP_CALL_GAS));
        }
    }
    vec![first, approvals]
}

/// Consecutive runs of `txs` whose gas limits add up to at most [`SETUP_GAS_IN_FLIGHT`].
fn by_gas(txs: &[SignedTransaction]) -> Vec<&[SignedTransaction]> {
    let mut parts = Vec::new();
    let (mut start, mut gas) = (0, 0u64);
    for (i, tx) in txs.iter().enumerate() {
        let limit = tx.payload().gas_limit();
        if gas + limit > SETUP_GAS_IN_FLIGHT && i > start {
            parts.push(&txs[start..i]);
            (start, gas) = (i, 0);
        }
        gas += limit;
    }
    if start < txs.len() {
        parts.push(&txs[start..]);
    }
    parts
}

/// Submits `txs` in order, a chunk at a time, waiting out `busy` answers.
fn submit(addr: SocketAddr, txs: &[SignedTransaction], deadline: Instant) -> Result<()> {
    for chunk in txs.chunks(SUBMIT_CHUNK) {
        let encoded: Vec<Vec<u8>> = chunk.iter().map(SignedTransaction::encode).collect();
        let body = batch_body(encoded.iter().map(Vec::as_slice));
        loop {
            let response = client::request(
                addr,
                "POST",
                "/v1/transactions/batch",
                &[("content-type", "application/octet-stream")],
                &body,
                Duration::from_secs(30),
            )
            .map_err(|e| TestnetError::rpc(addr, format!("submitting set-up transactions: {e}")))?;
            if response.status == 503 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            if response.status != 200 {
                return Err(TestnetError::rpc(
                    addr,
                    format!(
                        "set-up transactions refused ({}): {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    ),
                ));
            }
            // A batch answers 200 with an error per refused item: set-up needs them all.
            let answer = response.json().unwrap_or_default();
            let refused = answer["errors"]
                .as_array()
                .map(|errors| errors.iter().enumerate().find(|(_, e)| !e.is_null()));
            if let Some(Some((i, error))) = refused {
                return Err(TestnetError::rpc(
                    addr,
                    format!(
                        "set-up transaction {} (nonce {}) refused: {error}",
                        chunk[i].hash(),
                        chunk[i].nonce()
                    ),
                ));
            }
            break;
        }
    }
    Ok(())
}

/// Waits until `tx` is committed, and fails unless it succeeded.
fn await_success(addr: SocketAddr, tx: &SignedTransaction, deadline: Instant) -> Result<()> {
    let hash = tx.hash();
    loop {
        let path = format!("/v1/transactions/{hash}?wait_ms=5000");
        let status = client::request(addr, "GET", &path, &[], &[], Duration::from_secs(15))
            .ok()
            .and_then(|r| r.json());
        let Some(status) = status else {
            // No answer (a connection refused or cut): the long poll did not wait, so the
            // next try does, briefly.
            if Instant::now() >= deadline {
                return Err(TestnetError::rpc(
                    addr,
                    format!("no answer about set-up transaction {hash}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        match status["status"].as_str() {
            Some("committed") if status["execution_status"] == "success" => return Ok(()),
            Some("committed") | Some("expired") => {
                return Err(TestnetError::Usage(format!(
                    "a set-up transaction of the contract workload failed: {status}"
                )))
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(TestnetError::Usage(format!(
                "set-up transaction {hash} did not commit within {} s",
                SETUP_DEADLINE.as_secs()
            )));
        }
    }
}

/// Contract calls sampled for their outcome after a run.
const OUTCOME_SAMPLE: usize = 200;

/// Reads the outcome of up to [`OUTCOME_SAMPLE`] of the run's committed items, spread
/// over the run: a contract call can be committed and still revert, which the committed
/// rate alone would hide.
pub fn sample_outcomes(shared: &Shared, addr: SocketAddr) -> String {
    let committed: Vec<&Item> = shared
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| shared.seen_us[*i].load(std::sync::atomic::Ordering::Relaxed) > 0)
        .map(|(_, item)| item)
        .collect();
    let step = (committed.len() / OUTCOME_SAMPLE).max(1);
    let (mut sampled, mut succeeded, mut first_failure) = (0, 0, None);
    for item in committed.iter().step_by(step).take(OUTCOME_SAMPLE) {
        let path = format!("/v1/transactions/{}", item.hash);
        let Some(status) = client::request(addr, "GET", &path, &[], &[], Duration::from_secs(5))
            .ok()
            .and_then(|r| r.json())
        else {
            continue;
        };
        if status["status"] != "committed" {
            continue;
        }
        sampled += 1;
        if status["execution_status"] == "success" {
            succeeded += 1;
        } else if first_failure.is_none() {
            first_failure = Some(status.to_string());
        }
    }
    match first_failure {
        None => format!("contract calls: {succeeded} of {sampled} sampled committed calls succeeded"),
        Some(failure) => format!(
            "contract calls: only {succeeded} of {sampled} sampled committed calls succeeded; first failure: {failure}"
        ),
    }
}
