//! Contract transactions, with the Solidity examples compiled in `contracts/build`:
//! semantics (deploy, calls, value, reverts, halts, hostile contracts), and the
//! determinism property over random contract workloads: the parallel engine equals the
//! sequential loop byte for byte at every thread count, and both equal plain revm over an
//! in-memory database.

use std::collections::BTreeMap;

use ordo_execution::contracts;
use ordo_execution::{
    genesis, Account, BlockContext, BlockOutput, ChainConfig, EvmHalt, EvmInvalid, Executor,
    GenesisSpec, MemoryState, ParallelExecutor, ParallelOptions, Receipt, SequentialExecutor,
    StateKey, StateValue, Strategy, TxStatus, DEFAULT_BLOCK_GAS_LIMIT,
};
use ordo_types::ethereum::{eip1559, eip1559_of};
use ordo_types::{
    Address, Amount, EthKey, EthTransaction, KeyPair, Payload, SignedTransaction, StateAccumulator,
    Transaction,
};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use revm::primitives::{keccak256, U256};

const CHAIN: u64 = 9;
const NOW: u64 = 1_000_000;
/// What each account of the random blocks holds: more than a u64 can (10^24).
const FUNDS: Amount = 1_000_000_000_000_000_000_000_000;
/// An amount wider than a u64 (10^20), sent now and then in the random blocks.
const WIDE: Amount = 100_000_000_000_000_000_000;

/// A compiled example's init code, from the committed build output.
fn init_code(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../contracts/build/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("build output is JSON");
    let hex_code = json["bytecode"].as_str().expect("bytecode");
    decode_hex(hex_code)
}

fn decode_hex(text: &str) -> Vec<u8> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// ABI words for static arguments.
enum Arg {
    Uint(u128),
    Addr(Address),
}

fn word(arg: &Arg) -> [u8; 32] {
    match arg {
        Arg::Uint(v) => U256::from(*v).to_be_bytes(),
        Arg::Addr(a) => {
            let mut w = [0; 32];
            w[12..].copy_from_slice(&a.0);
            w
        }
    }
}

fn call_data(signature: &str, args: &[Arg]) -> Vec<u8> {
    let mut data = keccak256(signature.as_bytes())[..4].to_vec();
    for arg in args {
        data.extend_from_slice(&word(arg));
    }
    data
}

/// Token's constructor arguments: (string name, string symbol, uint256 supply).
fn token_init(supply: u128) -> Vec<u8> {
    let mut code = init_code("Token");
    let string = |s: &str| {
        let mut out = U256::from(s.len()).to_be_bytes::<32>().to_vec();
        let mut padded = [0u8; 32];
        padded[..s.len()].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&padded);
        out
    };
    code.extend_from_slice(&U256::from(0x60).to_be_bytes::<32>());
    code.extend_from_slice(&U256::from(0xa0).to_be_bytes::<32>());
    code.extend_from_slice(&U256::from(supply).to_be_bytes::<32>());
    code.extend(string("Ordo Token"));
    code.extend(string("ORD"));
    code
}

/// The address the EVM's CREATE gives the `nonce`-th transaction of `sender`.
fn created(sender: Address, nonce: u64) -> Address {
    let a = revm::primitives::Address::from(sender.0).create(nonce);
    Address(a.0 .0)
}

fn key(i: usize) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    KeyPair::from_seed(seed)
}

/// The secp256k1 key of Ethereum account `i` (funded beside `key(i)`).
fn eth_key(i: usize) -> EthKey {
    EthKey::from_seed(&(i as u64).to_le_bytes())
}

/// `tx`'s payload and nonce, sent as an EIP-1559 transaction from `key` with fee cap `cap`.
/// A native transfer becomes a call with the value and no input, as a wallet sends one.
fn as_ethereum(tx: &SignedTransaction, key: &EthKey, cap: u128) -> SignedTransaction {
    let eth = eip1559_of(CHAIN, tx.nonce(), tx.payload().clone(), cap)
        .unwrap_or_else(|| panic!("no Ethereum form for {:?}", tx.payload()));
    key.sign(eth).into()
}

fn sign(k: &KeyPair, nonce: u64, payload: Payload) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        sender: k.public(),
        nonce,
        expiry: u64::MAX,
        payload,
    }
    .sign(k)
}

fn deploy(k: &KeyPair, nonce: u64, init_code: Vec<u8>, value: Amount) -> SignedTransaction {
    sign(
        k,
        nonce,
        Payload::Deploy {
            init_code,
            value,
            gas_limit: 3_000_000,
        },
    )
}

fn call(
    k: &KeyPair,
    nonce: u64,
    to: Address,
    input: Vec<u8>,
    value: Amount,
    gas: u64,
) -> SignedTransaction {
    sign(
        k,
        nonce,
        Payload::Call {
            to,
            input,
            value,
            gas_limit: gas,
        },
    )
}

fn config(gas_price: u64) -> ChainConfig {
    ChainConfig {
        chain_id: CHAIN,
        gas_price,
        fee_sink: Address([0xfe; 20]),
        block_gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
    }
}

struct Chain {
    config: ChainConfig,
    state: MemoryState,
    acc: StateAccumulator,
    height: u64,
}

impl Chain {
    fn new(accounts: usize, balance: Amount, gas_price: u64) -> Self {
        let spec = GenesisSpec {
            accounts: (0..accounts)
                .flat_map(|i| [(key(i).address(), balance), (eth_key(i).address(), balance)])
                .collect(),
            ..GenesisSpec::default()
        };
        let g = genesis(&spec).expect("genesis");
        Chain {
            config: config(gas_price),
            state: MemoryState::from_genesis(&g),
            acc: g.accumulator,
            height: 0,
        }
    }

    fn context(&self) -> BlockContext {
        BlockContext {
            height: self.height + 1,
            timestamp_ms: NOW,
        }
    }

    /// Executes a block sequentially and on the engine, checks they agree, and applies it.
    fn run(&mut self, txs: &[SignedTransaction]) -> Vec<Receipt> {
        let block = self.context();
        let seq = SequentialExecutor::new(self.config.clone())
            .execute_block(&self.state, &block, txs, &self.acc)
            .expect("sequential");
        let mut options = ParallelOptions::new(2);
        options.strategy = Strategy::AlwaysParallel;
        let par = ParallelExecutor::new(self.config.clone(), options)
            .expect("pool")
            .execute_block(&self.state, &block, txs, &self.acc)
            .expect("parallel");
        assert_same(&seq, &par);
        self.state.apply(&seq.write_set);
        self.acc = seq.accumulator;
        self.height += 1;
        seq.receipts
    }

    fn account(&self, a: Address) -> Account {
        match read(&self.state, &StateKey::Account(a)) {
            Some(StateValue::Account(a)) => a,
            _ => Account::default(),
        }
    }
}

fn read(state: &MemoryState, key: &StateKey) -> Option<StateValue> {
    use ordo_types::StateView;
    state
        .get(&key.to_bytes())
        .expect("read")
        .map(|v| key.decode_value(&v).expect("decode"))
}

fn assert_same(a: &BlockOutput, b: &BlockOutput) {
    assert_eq!(a.receipts, b.receipts, "receipts differ");
    assert_eq!(a.write_set, b.write_set, "write sets differ");
    assert_eq!(a.state_root, b.state_root, "roots differ");
}

fn output_u256(r: &Receipt) -> U256 {
    let out = &r.evm.as_ref().expect("evm outcome").output;
    U256::from_be_slice(&out[..32])
}

#[test]
fn a_token_is_deployed_called_and_charged_for_gas() {
    let mut chain = Chain::new(3, 1_000_000_000_000, 2);
    let (owner, alice) = (key(0), key(1));
    let token = created(owner.address(), 0);
    let before = chain.account(owner.address());
    let receipts = chain.run(&[
        deploy(&owner, 0, token_init(1_000_000), 0),
        // Created and called in the same block.
        call(
            &owner,
            1,
            token,
            call_data(
                "transfer(address,uint256)",
                &[Arg::Addr(alice.address()), Arg::Uint(250)],
            ),
            0,
            100_000,
        ),
        call(
            &owner,
            2,
            token,
            call_data("balanceOf(address)", &[Arg::Addr(alice.address())]),
            0,
            100_000,
        ),
        // More than alice holds: a revert, with its reason, charged.
        call(
            &alice,
            0,
            token,
            call_data(
                "transfer(address,uint256)",
                &[Arg::Addr(owner.address()), Arg::Uint(251)],
            ),
            0,
            100_000,
        ),
    ]);
    assert_eq!(receipts[0].status, TxStatus::Success);
    assert_eq!(receipts[0].evm.as_ref().unwrap().created, Some(token));
    assert!(matches!(
        read(&chain.state, &StateKey::Code(token)),
        Some(StateValue::Code(_))
    ));
    assert_eq!(receipts[1].status, TxStatus::Success);
    let logs = &receipts[1].evm.as_ref().unwrap().logs;
    assert_eq!(logs.len(), 1, "one Transfer event");
    assert_eq!(logs[0].address, token);
    assert_eq!(
        logs[0].topics[0],
        keccak256(b"Transfer(address,address,uint256)").0
    );
    assert_eq!(output_u256(&receipts[2]), U256::from(250));
    assert_eq!(receipts[3].status, TxStatus::Reverted);
    let revert = &receipts[3].evm.as_ref().unwrap().output;
    assert!(
        String::from_utf8_lossy(revert).contains("insufficient balance"),
        "revert data names the reason: {revert:?}"
    );
    for r in &receipts {
        assert!(
            r.gas_used > 21_000 && r.fee == 2 * Amount::from(r.gas_used),
            "{r:?}"
        );
    }
    let after = chain.account(owner.address());
    let paid: Amount = receipts[..3].iter().map(|r| r.fee).sum();
    assert_eq!(after.balance, before.balance - paid);
    assert_eq!(after.nonce, 3);
    assert_eq!(chain.account(alice.address()).nonce, 1);
    let sink = chain.account(chain.config.fee_sink);
    assert_eq!(sink.balance, receipts.iter().map(|r| r.fee).sum::<Amount>());
}

#[test]
fn contracts_hold_receive_and_send_the_native_coin() {
    // In base units, and in units of 10^18 (Ethereum's ether), where every amount is wider
    // than a u64: the EVM's 256-bit balances and Ordo's 128-bit ones agree exactly.
    for unit in [1, 1_000_000_000_000_000_000] {
        native_coin_round_trip(unit);
    }
}

fn native_coin_round_trip(unit: Amount) {
    let mut chain = Chain::new(2, 1_000_000_000 * unit, 1);
    let user = key(0);
    let counter = created(user.address(), 0);
    let start = chain.account(user.address()).balance;
    let receipts = chain.run(&[
        deploy(&user, 0, init_code("Counter"), 0),
        call(
            &user,
            1,
            counter,
            call_data("deposit()", &[]),
            5_000 * unit,
            100_000,
        ),
        call(
            &user,
            2,
            counter,
            call_data("withdraw(uint256)", &[Arg::Uint(2_000 * unit)]),
            0,
            100_000,
        ),
        // More than deposited: reverted, and the value stays where it was.
        call(
            &user,
            3,
            counter,
            call_data("withdraw(uint256)", &[Arg::Uint(9_000 * unit)]),
            0,
            100_000,
        ),
        // A native transfer to a contract credits it without running its code.
        sign(
            &user,
            4,
            Payload::Transfer {
                to: counter,
                amount: 7 * unit,
            },
        ),
    ]);
    let statuses: Vec<_> = receipts.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            TxStatus::Success,
            TxStatus::Success,
            TxStatus::Success,
            TxStatus::Reverted,
            TxStatus::Success
        ]
    );
    assert_eq!(chain.account(counter).balance, 3_007 * unit);
    let fees: Amount = receipts.iter().map(|r| r.fee).sum();
    assert_eq!(
        chain.account(user.address()).balance,
        start - 3_007 * unit - fees
    );
}

/// An Ethereum account (secp256k1, EIP-1559 transactions) deploys a contract, pays it more
/// than a u64 holds, and pays an externally owned account, charged the chain's gas price for
/// what it used; a transaction whose fee cap is below that price changes nothing.
#[test]
fn ethereum_transactions_deploy_call_and_pay() {
    const ETHER: Amount = 1_000_000_000_000_000_000;
    let mut chain = Chain::new(1, 1_000 * ETHER, 2);
    let user = eth_key(0);
    let counter = created(user.address(), 0);
    let friend = Address([0x42; 20]);
    let start = chain.account(user.address()).balance;
    let send = |nonce, to, value, input: Vec<u8>, gas, cap| -> SignedTransaction {
        user.sign(eip1559(CHAIN, nonce, to, value, input, gas, cap))
            .into()
    };
    let receipts = chain.run(&[
        send(0, None, 0, init_code("Counter"), 3_000_000, 2),
        send(
            1,
            Some(counter),
            100 * ETHER,
            call_data("deposit()", &[]),
            100_000,
            5,
        ),
        send(2, Some(friend), 3 * ETHER, vec![], 21_000, 2),
        // Below the chain's price of 2: refused, uncharged, the nonce not used.
        send(3, Some(friend), ETHER, vec![], 21_000, 1),
    ]);
    let statuses: Vec<_> = receipts.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            TxStatus::Success,
            TxStatus::Success,
            TxStatus::Success,
            TxStatus::EvmInvalid(EvmInvalid::FeeCapTooLow)
        ]
    );
    assert_eq!(receipts[3].fee, 0);
    for r in &receipts[..3] {
        // The chain's price, not the higher cap of the second.
        assert_eq!(r.fee, 2 * Amount::from(r.gas_used), "{r:?}");
    }
    assert_eq!(receipts[2].gas_used, 21_000);
    assert_eq!(chain.account(counter).balance, 100 * ETHER);
    assert_eq!(chain.account(friend).balance, 3 * ETHER);
    let fees: Amount = receipts.iter().map(|r| r.fee).sum();
    let user_after = chain.account(user.address());
    assert_eq!(user_after.balance, start - 103 * ETHER - fees);
    assert_eq!(user_after.nonce, 3);
}

/// An Ethereum transaction whose signature recovers no sender (verification keeps such out
/// of batches) is refused by execution all the same, uncharged, by every executor.
#[test]
fn an_ethereum_transaction_without_a_sender_is_refused() {
    let mut chain = Chain::new(1, 1_000_000_000_000, 1);
    let raw = eth_key(0).sign_raw(eip1559(
        CHAIN,
        0,
        Some(Address([1; 20])),
        1,
        vec![],
        21_000,
        1,
    ));
    // Bytes near the end are the signature's; some changes there leave no valid key.
    let unrecoverable = (1..=64)
        .flat_map(|back| (0..8).map(move |bit| (back, bit)))
        .find_map(|(back, bit)| {
            let mut bytes = raw.clone();
            let i = bytes.len() - back;
            bytes[i] ^= 1 << bit;
            EthTransaction::from_raw(bytes)
                .ok()
                .filter(|tx| tx.sender().is_err())
        })
        .expect("some change of the signature recovers no key");
    let receipts = chain.run(&[SignedTransaction::from(unrecoverable)]);
    assert_eq!(
        receipts[0].status,
        TxStatus::EvmInvalid(EvmInvalid::InvalidSignature)
    );
    assert_eq!(receipts[0].fee, 0);
}

#[test]
fn hostile_contracts_are_bounded_by_gas_and_agree() {
    let mut chain = Chain::new(2, 1_000_000_000_000, 1);
    let user = key(0);
    let names = [
        "Looper",
        "MemoryHog",
        "Recurser",
        "SelfDestructor",
        "Reverter",
        "Thrower",
    ];
    let deploys: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| deploy(&user, i as u64, init_code(name), 0))
        .collect();
    let receipts = chain.run(&deploys);
    assert!(
        receipts.iter().all(|r| r.status == TxStatus::Success),
        "{receipts:?}"
    );
    let at = |i: u64| created(user.address(), i);
    let n = names.len() as u64;
    let receipts = chain.run(&[
        call(&user, n, at(0), call_data("spin()", &[]), 0, 1_000_000),
        call(
            &user,
            n + 1,
            at(1),
            call_data("expand(uint256)", &[Arg::Uint(1 << 40)]),
            0,
            1_000_000,
        ),
        call(
            &user,
            n + 2,
            at(2),
            call_data("recurse(uint256)", &[Arg::Uint(0)]),
            0,
            29_000_000,
        ),
        call(
            &user,
            n + 3,
            at(3),
            call_data("destroy(address)", &[Arg::Addr(key(1).address())]),
            0,
            100_000,
        ),
        call(&user, n + 4, at(4), call_data("fail()", &[]), 0, 100_000),
        call(&user, n + 5, at(5), call_data("invalid()", &[]), 0, 100_000),
        // Init code that returns more than EIP-170 allows: 0x6000 (size) ... RETURN.
        sign(
            &user,
            n + 6,
            Payload::Deploy {
                // PUSH3 0x006001 (24,577) PUSH1 0 RETURN
                init_code: vec![0x62, 0x00, 0x60, 0x01, 0x60, 0x00, 0xf3],
                value: 0,
                gas_limit: 10_000_000,
            },
        ),
        call(&user, n + 7, at(0), call_data("spin()", &[]), 0, 40_000_000),
    ]);
    let statuses: Vec<_> = receipts.iter().map(|r| r.status).collect();
    assert_eq!(statuses[0], TxStatus::Halted(EvmHalt::OutOfGas));
    assert_eq!(statuses[1], TxStatus::Halted(EvmHalt::OutOfGas));
    // Deep recursion: the inner calls fail at depth 1,024 or run out of gas; either way
    // the outermost frame reverts or halts, is charged, and every executor agrees.
    assert!(
        matches!(statuses[2], TxStatus::Reverted | TxStatus::Halted(_)),
        "{:?}",
        statuses[2]
    );
    // Self-destruct of a contract not created in this transaction only moves its balance.
    assert_eq!(statuses[3], TxStatus::Success);
    assert!(read(&chain.state, &StateKey::Code(at(3))).is_some());
    assert_eq!(statuses[4], TxStatus::Reverted);
    assert_eq!(statuses[5], TxStatus::Halted(EvmHalt::InvalidOpcode));
    assert_eq!(statuses[6], TxStatus::Halted(EvmHalt::CodeSizeLimit));
    assert_eq!(
        statuses[7],
        TxStatus::EvmInvalid(EvmInvalid::GasLimitTooHigh)
    );
    for r in &receipts[..7] {
        assert!(r.fee > 0 && r.status.charged(), "{r:?}");
    }
    assert_eq!(receipts[7].fee, 0);
    // Halts charge the whole gas limit.
    assert_eq!(receipts[0].gas_used, 1_000_000);
}

#[test]
fn a_reentrant_call_into_the_amm_reverts_on_its_lock() {
    let mut chain = Chain::new(1, 1_000_000_000_000, 1);
    let owner = key(0);
    let token = created(owner.address(), 0);
    let reenterer = created(owner.address(), 1);
    let pair = created(owner.address(), 2);
    // The pair's init code and calls from the crate's encoder; the test's own encoder
    // builds everything else, so the two are checked against each other.
    let pair_init = contracts::pair_init_code(token, reenterer);
    let approve = contracts::approve_all(pair);
    let add = contracts::add_liquidity(100_000, 100_000);
    let attack = call_data(
        "attack(address,address,uint256)",
        &[Arg::Addr(pair), Arg::Addr(reenterer), Arg::Uint(1_000)],
    );
    let receipts = chain.run(&[
        deploy(&owner, 0, token_init(1_000_000), 0),
        deploy(&owner, 1, init_code("Reenterer"), 0),
        deploy(&owner, 2, pair_init, 0),
        call(&owner, 3, token, approve, 0, 100_000),
        call(&owner, 4, pair, add, 0, 1_000_000),
        call(&owner, 5, reenterer, attack, 0, 1_000_000),
    ]);
    for r in &receipts[..5] {
        assert_eq!(r.status, TxStatus::Success, "{r:?}");
    }
    assert_eq!(receipts[5].status, TxStatus::Reverted, "{:?}", receipts[5]);
    let revert = &receipts[5].evm.as_ref().unwrap().output;
    assert!(
        String::from_utf8_lossy(revert).contains("locked"),
        "{revert:?}"
    );
    // The reserves are as liquidity left them: the attack changed nothing.
    let reserves = chain.run(&[call(
        &owner,
        6,
        pair,
        call_data("getReserves()", &[]),
        0,
        100_000,
    )]);
    let out = &reserves[0].evm.as_ref().unwrap().output;
    assert_eq!(U256::from_be_slice(&out[..32]), U256::from(100_000));
    assert_eq!(U256::from_be_slice(&out[32..64]), U256::from(100_000));
}

#[test]
fn the_block_gas_limit_refuses_what_does_not_fit() {
    let mut chain = Chain::new(1, 1_000_000_000_000, 1);
    chain.config.block_gas_limit = 5_000_000;
    let user = key(0);
    let receipts = chain.run(&[
        deploy(&user, 0, init_code("Counter"), 0),
        call(
            &user,
            1,
            created(user.address(), 0),
            call_data("increment()", &[]),
            0,
            1_000_000,
        ),
        call(
            &user,
            2,
            created(user.address(), 0),
            call_data("increment()", &[]),
            0,
            1_500_000,
        ),
    ]);
    assert_eq!(receipts[0].status, TxStatus::Success);
    assert_eq!(receipts[1].status, TxStatus::Success);
    assert_eq!(
        receipts[2].status,
        TxStatus::EvmInvalid(EvmInvalid::BlockGasExhausted)
    );
    assert_eq!(chain.account(user.address()).nonce, 2);
}

/// A random block over a token, a counter, a reverter and a looper that the block itself
/// deploys first, with native transfers among the same accounts. `accounts` sets the
/// contention: few accounts share balances and nonces; the counter is one hot slot.
fn random_block(seed: u64, len: usize, accounts: usize) -> Vec<SignedTransaction> {
    let mut rng = StdRng::seed_from_u64(seed);
    let owner = key(0);
    let token = created(owner.address(), 0);
    let counter = created(owner.address(), 1);
    let reverter = created(owner.address(), 2);
    let looper = created(owner.address(), 3);
    let other = created(owner.address(), 4);
    let pair = created(owner.address(), 5);
    let factory = created(owner.address(), 9);
    // The pair's init code and calls from the crate's encoder; the test's own encoder
    // builds everything else, so the two are checked against each other.
    let pair_init = contracts::pair_init_code(token, other);
    let approve = contracts::approve_all(pair);
    let add = contracts::add_liquidity(1 << 40, 1 << 40);
    // The pair's swaps call both tokens (nested calls), from the owner only: the other
    // accounts hold no approvals.
    let mut txs = vec![
        deploy(&owner, 0, token_init(1 << 100), 0),
        deploy(&owner, 1, init_code("Counter"), 0),
        deploy(&owner, 2, init_code("Reverter"), 0),
        deploy(&owner, 3, init_code("Looper"), 0),
        deploy(&owner, 4, token_init(1 << 100), 0),
        deploy(&owner, 5, pair_init, 0),
        call(&owner, 6, token, approve.clone(), 0, 100_000),
        call(&owner, 7, other, approve, 0, 100_000),
        call(&owner, 8, pair, add, 0, 1_000_000),
        deploy(&owner, 9, init_code("CounterFactory"), 0),
    ];
    let mut nonces = vec![0u64; accounts];
    nonces[0] = 10;
    for i in 1..accounts.min(64) {
        let data = call_data(
            "mint(address,uint256)",
            &[Arg::Addr(key(i).address()), Arg::Uint(1_000_000)],
        );
        txs.push(call(&owner, nonces[0], token, data, 0, 200_000));
        nonces[0] += 1;
    }
    // One transaction in five is an Ethereum one, from the sender's secp256k1 account,
    // with its own nonces; now and then its fee cap is below a non-zero gas price.
    let mut eth_nonces = vec![0u64; accounts];
    while txs.len() < len {
        let s = rng.gen_range(0..accounts);
        let k = key(s);
        let eth = rng.gen_bool(0.2);
        let nonces = if eth { &mut eth_nonces } else { &mut nonces };
        let mut nonce = nonces[s];
        if rng.gen_bool(0.03) {
            nonce += 1; // a bad nonce: refused uncharged
        }
        let to = key(rng.gen_range(0..accounts)).address();
        let tx = match rng.gen_range(0..10) {
            0..=3 => {
                let amount = if rng.gen_bool(0.1) {
                    1 << 30
                } else {
                    rng.gen_range(0..1_000)
                };
                let data = call_data(
                    "transfer(address,uint256)",
                    &[Arg::Addr(to), Arg::Uint(amount)],
                );
                call(&k, nonce, token, data, 0, 100_000)
            }
            // A counter made inside a call (CREATE from the factory, whose n-th creation
            // lands at its nonce n), and calls to the first few such counters: made
            // earlier in this block, or not yet (a call to an address without code).
            4 => match rng.gen_range(0..4) {
                0 => call(&k, nonce, factory, call_data("create()", &[]), 0, 600_000),
                1 => {
                    let made = created(factory, rng.gen_range(1..=3));
                    call(&k, nonce, made, call_data("increment()", &[]), 0, 100_000)
                }
                _ => call(
                    &k,
                    nonce,
                    counter,
                    call_data("increment()", &[]),
                    0,
                    100_000,
                ),
            },
            5 => call(
                &k,
                nonce,
                counter,
                call_data("deposit()", &[]),
                // Sometimes more than a u64 holds: values are 128 bits wide.
                if rng.gen_bool(0.1) {
                    WIDE + rng.gen_range(0..100)
                } else {
                    rng.gen_range(0..100)
                },
                100_000,
            ),
            6 => {
                let amount = if rng.gen_bool(0.1) {
                    WIDE
                } else {
                    rng.gen_range(0..50)
                };
                call(
                    &k,
                    nonce,
                    counter,
                    call_data("withdraw(uint256)", &[Arg::Uint(amount)]),
                    0,
                    100_000,
                )
            }
            7 if s == 0 => {
                let token_in = if rng.gen_bool(0.5) { token } else { other };
                // Sometimes a minimum out that cannot be met: a revert inside nested calls.
                let min_out = if rng.gen_bool(0.2) { 1 << 50 } else { 0 };
                let data = call_data(
                    "swap(address,uint256,uint256)",
                    &[
                        Arg::Addr(token_in),
                        Arg::Uint(rng.gen_range(1..100_000)),
                        Arg::Uint(min_out),
                    ],
                );
                call(&k, nonce, pair, data, 0, 300_000)
            }
            7 => call(&k, nonce, reverter, call_data("fail()", &[]), 0, 100_000),
            8 => {
                if rng.gen_bool(0.5) {
                    call(&k, nonce, looper, call_data("spin()", &[]), 0, 60_000)
                } else {
                    // Too little gas for the transfer itself: out of gas.
                    let data =
                        call_data("transfer(address,uint256)", &[Arg::Addr(to), Arg::Uint(1)]);
                    call(&k, nonce, token, data, 0, 23_000)
                }
            }
            _ => {
                let to = if rng.gen_bool(0.2) { counter } else { to };
                sign(
                    &k,
                    nonce,
                    Payload::Transfer {
                        to,
                        amount: if rng.gen_bool(0.1) {
                            WIDE
                        } else {
                            rng.gen_range(0..1_000)
                        },
                    },
                )
            }
        };
        let tx = if eth {
            let cap = if rng.gen_bool(0.05) { 0 } else { 3 };
            as_ethereum(&tx, &eth_key(s), cap)
        } else {
            tx
        };
        if nonce == nonces[s] {
            nonces[s] += 1;
        }
        txs.push(tx);
    }
    txs
}

/// Who receives a block's fees in [`check_block`]: the fee sink's credit is one change
/// whether or not the block's transactions touch that account.
#[derive(Debug, Clone, Copy)]
enum Sink {
    /// An account no transaction reads or writes.
    Apart,
    /// One of the block's senders (Ordo keys): read and written by its transactions.
    Sender,
    /// One of the block's Ethereum senders.
    EthSender,
}

fn check_block(
    seed: u64,
    len: usize,
    accounts: usize,
    gas_price: u64,
    sink: Sink,
) -> Result<Vec<Receipt>, TestCaseError> {
    let mut chain = Chain::new(accounts, FUNDS, gas_price);
    chain.config.fee_sink = match sink {
        Sink::Apart => chain.config.fee_sink,
        Sink::Sender => key(1).address(),
        Sink::EthSender => eth_key(0).address(),
    };
    let txs = random_block(seed, len, accounts);
    let block = chain.context();
    let reference = SequentialExecutor::new(chain.config.clone())
        .execute_block(&chain.state, &block, &txs, &chain.acc)
        .expect("sequential");
    for threads in [1, 2, 4] {
        for strategy in [Strategy::AlwaysParallel, Strategy::Auto] {
            let mut options = ParallelOptions::new(threads);
            options.strategy = strategy;
            let out = ParallelExecutor::new(chain.config.clone(), options)
                .expect("pool")
                .execute_block(&chain.state, &block, &txs, &chain.acc)
                .expect("parallel");
            prop_assert_eq!(
                &out.receipts,
                &reference.receipts,
                "receipts at {} threads",
                threads
            );
            prop_assert_eq!(
                &out.write_set,
                &reference.write_set,
                "writes at {} threads",
                threads
            );
            prop_assert_eq!(out.state_root, reference.state_root);
        }
    }
    // The native coin is conserved: fees move from senders to the sink (credited once,
    // wherever the sink is), values between accounts and contracts.
    let (mut before, mut after_sum) = (0u128, 0u128);
    for (key, new) in &reference.write_set.entries {
        if let (StateKey::Account(_), StateValue::Account(new)) = (key, new) {
            if let Some(StateValue::Account(old)) = read(&chain.state, key) {
                before = before.wrapping_add(old.balance);
            }
            after_sum = after_sum.wrapping_add(new.balance);
        }
    }
    prop_assert_eq!(after_sum, before, "native coin created or lost");
    let mut after = chain.state.clone();
    after.apply(&reference.write_set);
    prop_assert_eq!(after.accumulator().root(), reference.state_root);
    if gas_price == 0 {
        plain_revm_agrees(&chain, &txs, &reference)?;
    }
    Ok(reference.receipts)
}

/// Plain revm over its in-memory database, transaction by transaction, with no fees (a
/// zero gas price, so that Ordo's own fee charging has nothing to add): the same status,
/// gas, output and logs for every contract transaction, and the same balances, nonces,
/// code and storage at the end.
fn plain_revm_agrees(
    chain: &Chain,
    txs: &[SignedTransaction],
    ours: &BlockOutput,
) -> Result<(), TestCaseError> {
    use revm::context::result::ExecutionResult;
    use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
    use revm::database::InMemoryDB;
    use revm::primitives::{hardfork::SpecId, TxKind};
    use revm::state::AccountInfo;
    use revm::{ExecuteCommitEvm, MainBuilder};

    let mut db = InMemoryDB::default();
    for a in (0..64).flat_map(|i| [key(i).address(), eth_key(i).address()]) {
        if let Some(StateValue::Account(acc)) = read(&chain.state, &StateKey::Account(a)) {
            db.insert_account_info(
                revm::primitives::Address::from(a.0),
                AccountInfo {
                    balance: U256::from(acc.balance),
                    nonce: acc.nonce,
                    ..AccountInfo::default()
                },
            );
        }
    }
    let context: revm::handler::MainnetContext<InMemoryDB> = Context::new(db, SpecId::CANCUN);
    let mut evm = context
        .with_cfg({
            let mut cfg = CfgEnv::new_with_spec(SpecId::CANCUN);
            cfg.chain_id = CHAIN;
            cfg
        })
        .with_block(BlockEnv {
            number: U256::from(1),
            beneficiary: revm::primitives::Address::from(chain.config.fee_sink.0),
            timestamp: U256::from(NOW / 1_000),
            gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
            basefee: 0,
            ..BlockEnv::default()
        })
        .build_mainnet();
    for (t, receipt) in txs.iter().zip(&ours.receipts) {
        let sender = revm::primitives::Address::from(t.sender_address().0);
        let (kind, data, value, gas_limit) = match t.payload() {
            Payload::Deploy {
                init_code,
                value,
                gas_limit,
            } => (TxKind::Create, init_code.clone(), *value, *gas_limit),
            Payload::Call {
                to,
                input,
                value,
                gas_limit,
            } => (
                TxKind::Call(revm::primitives::Address::from(to.0)),
                input.clone(),
                *value,
                *gas_limit,
            ),
            Payload::Transfer { to, amount } => {
                // A native transfer moves coins without running code, whatever `to` is.
                if receipt.status == TxStatus::Success {
                    let db = &mut evm.ctx.journaled_state.database;
                    let mut from = db.basic(sender).unwrap().unwrap_or_default();
                    let to = revm::primitives::Address::from(to.0);
                    from.nonce += 1;
                    from.balance -= U256::from(*amount);
                    db.insert_account_info(sender, from);
                    let mut dest = db.basic(to).unwrap().unwrap_or_default();
                    dest.balance += U256::from(*amount);
                    db.insert_account_info(to, dest);
                }
                continue;
            }
            _ => unreachable!("the generator makes no other payloads"),
        };
        let tx = TxEnv {
            caller: sender,
            gas_limit,
            gas_price: 0,
            kind,
            value: U256::from(value),
            data: data.into(),
            nonce: t.nonce(),
            chain_id: Some(CHAIN),
            ..TxEnv::default()
        };
        match evm.transact_commit(tx) {
            Err(_) => {
                prop_assert!(
                    !receipt.status.charged(),
                    "revm refused what Ordo ran: {:?}",
                    receipt
                );
            }
            Ok(result) => {
                let evm_out = receipt.evm.as_ref().expect("an outcome");
                prop_assert_eq!(result.tx_gas_used(), receipt.gas_used);
                match result {
                    ExecutionResult::Success { logs, output, .. } => {
                        prop_assert_eq!(receipt.status, TxStatus::Success);
                        prop_assert_eq!(logs.len(), evm_out.logs.len());
                        for (a, b) in logs.iter().zip(&evm_out.logs) {
                            prop_assert_eq!(a.address.0 .0, b.address.0);
                            prop_assert_eq!(&a.data.data[..], &b.data[..]);
                        }
                        if let revm::context::result::Output::Call(bytes) = output {
                            prop_assert_eq!(&bytes[..], &evm_out.output[..]);
                        }
                    }
                    ExecutionResult::Revert { output, .. } => {
                        prop_assert_eq!(receipt.status, TxStatus::Reverted);
                        prop_assert_eq!(&output[..], &evm_out.output[..]);
                    }
                    ExecutionResult::Halt { .. } => {
                        prop_assert!(matches!(receipt.status, TxStatus::Halted(_)));
                    }
                }
            }
        }
    }
    // Every written key of Ordo's block as plain revm's database holds it.
    let db = &mut evm.ctx.journaled_state.database;
    let mut checked = BTreeMap::new();
    for (key, value) in &ours.write_set.entries {
        match (key, value) {
            (StateKey::Account(a), StateValue::Account(acc)) => {
                let info = db
                    .basic(revm::primitives::Address::from(a.0))
                    .unwrap()
                    .unwrap_or_default();
                prop_assert_eq!(info.balance, U256::from(acc.balance), "balance of {}", a);
                prop_assert_eq!(info.nonce, acc.nonce, "nonce of {}", a);
            }
            (StateKey::Code(a), StateValue::Code(code)) => {
                let info = db
                    .basic(revm::primitives::Address::from(a.0))
                    .unwrap()
                    .unwrap_or_default();
                prop_assert_eq!(info.code_hash, code.hash());
            }
            (StateKey::Slot(a, index), StateValue::Slot(word)) => {
                let v = db
                    .storage(
                        revm::primitives::Address::from(a.0),
                        U256::from_be_bytes(*index),
                    )
                    .unwrap();
                prop_assert_eq!(v, U256::from_be_bytes(*word));
            }
            _ => {}
        }
        *checked
            .entry(format!("{:?}", std::mem::discriminant(key)))
            .or_insert(0) += 1;
    }
    prop_assert!(
        checked.len() >= 3,
        "accounts, code and slots were all compared: {:?}",
        checked
    );
    Ok(())
}

use revm::Database as _;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("ORDO_DETERMINISM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
    ))]

    #[test]
    fn contract_blocks_run_the_same_in_parallel_in_order_and_in_plain_revm(
        seed in any::<u64>(),
        len in 70usize..=600,
        accounts in prop_oneof![2usize..=4, 5usize..=60],
        gas_price in prop_oneof![Just(0u64), 1u64..=3],
        sink in prop_oneof![Just(Sink::Apart), Just(Sink::Sender), Just(Sink::EthSender)],
    ) {
        check_block(seed, len, accounts, gas_price, sink)?;
    }
}

/// Every kind of outcome the random workload means to cover occurs at the edges.
#[test]
fn the_random_workload_reaches_every_outcome() {
    let mut seen = std::collections::BTreeSet::new();
    let pair = created(key(0).address(), 5);
    let swap_topic = keccak256(b"Swap(address,address,uint256,uint256)").0;
    let factory = created(key(0).address(), 9);
    let created_topic = keccak256(b"Created(address)").0;
    let incremented_topic = keccak256(b"Incremented(address,uint256)").0;
    let (mut swaps, mut calls_of_made) = (0, 0);
    let mut ethereum = std::collections::BTreeSet::new();
    for (seed, len, accounts, gas_price) in [(1, 600, 2, 0), (2, 600, 40, 1), (3, 300, 5, 0)] {
        // Counters the factory made earlier in this block.
        let mut made = std::collections::BTreeSet::new();
        let txs = random_block(seed, len, accounts);
        let receipts = check_block(seed, len, accounts, gas_price, Sink::Apart).expect("agree");
        for (t, r) in txs.iter().zip(receipts) {
            if matches!(t, SignedTransaction::Ethereum(_)) {
                ethereum.insert(format!("{:?}", r.status));
            }
            let logs = r.evm.as_ref().map(|e| e.logs.as_slice()).unwrap_or(&[]);
            swaps += logs
                .iter()
                .filter(|l| l.address == pair && l.topics.first() == Some(&swap_topic))
                .count();
            for log in logs {
                if log.address == factory && log.topics.first() == Some(&created_topic) {
                    let mut address = [0; 20];
                    address.copy_from_slice(&log.data[12..32]);
                    made.insert(Address(address));
                }
                if made.contains(&log.address) && log.topics.first() == Some(&incremented_topic) {
                    calls_of_made += 1;
                }
            }
            seen.insert(match r.status {
                TxStatus::BadNonce { .. } => "BadNonce".to_string(),
                other => format!("{other:?}"),
            });
        }
    }
    for status in ["Success", "BadNonce", "Reverted", "Halted(OutOfGas)"] {
        assert!(seen.contains(status), "no {status}: {seen:?}");
    }
    // Ethereum transactions ran beside Ordo's, and one whose fee cap was below the gas
    // price was refused.
    for status in ["Success", "Reverted", "EvmInvalid(FeeCapTooLow)"] {
        assert!(
            ethereum.contains(status),
            "no Ethereum {status}: {ethereum:?}"
        );
    }
    // Swaps ran: the pair called both tokens (nested calls) and emitted its event.
    assert!(swaps > 0, "no successful swap in the random blocks");
    // A contract created inside a call was called later in the same block.
    assert!(
        calls_of_made > 0,
        "no call of a counter the factory made in the block"
    );
}

/// The benchmark's contract workloads generate blocks that succeed throughout, and the
/// engine agrees with the sequential loop on them.
#[test]
fn contract_workloads_generate_successful_blocks() {
    use ordo_execution::workload::{Fixture, Workload};
    for (workload, targets) in [
        (Workload::Erc20, 2),
        (Workload::Erc20, 50),
        (Workload::Amm, 1),
        (Workload::Amm, 7),
        (Workload::Nft, 3),
        (Workload::DefiMix, 3),
    ] {
        let mut fixture = Fixture::new(workload, targets, 5).expect("setup succeeds");
        let txs = fixture.block(400);
        let block = fixture.context(1);
        let seq = SequentialExecutor::new(fixture.config.clone())
            .execute_block(&fixture.state, &block, &txs, &fixture.parent)
            .expect("sequential");
        let failed: Vec<_> = seq
            .receipts
            .iter()
            .filter(|r| r.status != TxStatus::Success)
            .collect();
        assert!(failed.is_empty(), "{workload:?} over {targets}: {failed:?}");
        let mut options = ParallelOptions::new(2);
        options.strategy = Strategy::AlwaysParallel;
        let par = ParallelExecutor::new(fixture.config.clone(), options)
            .expect("pool")
            .execute_block(&fixture.state, &block, &txs, &fixture.parent)
            .expect("parallel");
        assert_same(&seq, &par);
    }
}
