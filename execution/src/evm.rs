//! Contract transactions: one `Deploy` or `Call` through revm, against a reader of state
//! keys that the EVM asks for as it runs.
//!
//! The EVM reads accounts, code and storage slots by key through [`KeyReader`] (each read
//! is what a Block-STM read set records) and its state changes come back as key writes.
//! Like [`crate::vm`], this code never sees where reads come from, so that the sequential
//! and the parallel executor run exactly it.
//!
//! Fees. revm charges nothing here (its fee charge is disabled and the gas price it sees
//! is zero); the sender must hold the fee of its whole gas limit plus the value before the
//! EVM runs, and pays `gas used x gas price` afterwards, which the block credits to the fee
//! sink at its end as for native transactions. So no contract transaction reads or writes
//! the fee sink because of a fee, and `COINBASE` is the sink's address.
//!
//! Writes. Of the accounts the EVM touched: an account whose balance or nonce changed is
//! written; a contract created by the transaction has its code written; a storage slot
//! whose value changed is written (a slot set to zero stays, as zero); an account that
//! self-destructed in the transaction that created it (EIP-6780) is written as an empty
//! account, and its slots and code are not written.

use ordo_types::{Address, Amount, Payload, SignedTransaction, ADDRESS_BYTES};
use revm::context::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, Output};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database_interface::{DBErrorMarker, Database};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address as EvmAddress, TxKind, B256, KECCAK_EMPTY, U256};
use revm::state::{AccountInfo, Bytecode, EvmState};
use revm::{ExecuteEvm, MainBuilder};

use crate::receipt::{EvmHalt, EvmInvalid, EvmOutcome, Log, Receipt, TxStatus};
use crate::state::{Account, StateKey, StateValue};
use crate::vm::{BlockContext, ChainConfig};

/// The most gas one contract transaction may ask for, as on Ethereum since EIP-7825.
pub const MAX_TX_GAS: u64 = 30_000_000;
/// The EVM revision contracts run under (what `solc --evm-version cancun` targets).
const SPEC: SpecId = SpecId::CANCUN;

/// Why a read could not be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stop {
    /// A lower transaction that may write the key has not executed (parallel only).
    #[error("blocked on a lower transaction")]
    Blocked,
    /// The state could not be read; the block cannot execute.
    #[error("{0}")]
    Failed(String),
}

impl DBErrorMarker for Stop {}

impl From<Stop> for crate::error::ExecutionError {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Failed(reason) => crate::error::ExecutionError::StateReadFailed(reason),
            Stop::Blocked => {
                crate::error::ExecutionError::StateReadFailed("a read blocked in order".into())
            }
        }
    }
}

/// Reads a key from the view, as the EVM's readers report failures.
pub(crate) fn read_base(
    view: &dyn ordo_types::StateView,
    key: &StateKey,
) -> Result<Option<StateValue>, Stop> {
    crate::state::read_key(view, key).map_err(|e| Stop::Failed(e.to_string()))
}

/// Read access to any state key. `None`: no value stored.
pub(crate) trait KeyReader {
    fn read(&mut self, key: &StateKey) -> Result<Option<StateValue>, Stop>;
}

/// What one execution of a contract transaction produced.
#[derive(Debug, Clone)]
pub(crate) struct EvmEffects {
    pub receipt: Receipt,
    /// Keys written with their new values, each key once.
    pub writes: Vec<(StateKey, StateValue)>,
}

impl EvmEffects {
    fn none(status: TxStatus) -> Self {
        EvmEffects {
            receipt: Receipt::uncharged(status),
            writes: Vec::new(),
        }
    }
}

pub(crate) fn to_evm(address: &Address) -> EvmAddress {
    EvmAddress::from(address.0)
}

pub(crate) fn from_evm(address: &EvmAddress) -> Address {
    let mut bytes = [0; ADDRESS_BYTES];
    bytes.copy_from_slice(address.as_slice());
    Address(bytes)
}

/// revm's view of the state: every read goes through the reader.
struct Db<R: KeyReader> {
    reader: R,
    /// The empty code of accounts without code: this EVM's own, not revm's shared
    /// default, whose reference count every account load would otherwise change from
    /// every worker thread (see [`crate::code::Code::unshared`]).
    empty: Bytecode,
    /// The sender's account as [`Runner::execute`] read it for its checks, given to revm
    /// when it loads the sender: one read (and, in the parallel engine, one entry of the
    /// read set to validate) instead of two of the same key. Set only while revm runs.
    sender: Option<(Address, Option<StateValue>)>,
}

impl<R: KeyReader> Db<R> {
    fn new(reader: R) -> Self {
        // SAFETY: exactly the form of revm's default empty code (one STOP byte of padding,
        // no original bytes, an empty jump table), which `new_analyzed` accepts.
        let empty = unsafe {
            Bytecode::new_analyzed(
                revm::primitives::Bytes::from_static(&[0x00]),
                0,
                revm::bytecode::JumpTable::default(),
            )
        };
        Db {
            reader,
            empty,
            sender: None,
        }
    }
}

impl<R: KeyReader> Database for Db<R> {
    type Error = Stop;

    fn basic(&mut self, address: EvmAddress) -> Result<Option<AccountInfo>, Stop> {
        let ours = from_evm(&address);
        let read = match self.sender.take() {
            Some((sender, read)) if sender == ours => read,
            other => {
                self.sender = other;
                self.reader.read(&StateKey::Account(ours))?
            }
        };
        let account = match read {
            Some(StateValue::Account(a)) => a,
            _ => return Ok(None),
        };
        // Only a contract's code is read (see `Account::contract`). A speculative run of
        // the parallel engine may see a contract's account before its code (another
        // transaction's writes land one key at a time): it runs as if there were no code,
        // and validation sends it round again, as for any read of an unfinished write.
        let code = if account.contract {
            match self.reader.read(&StateKey::Code(ours))? {
                Some(StateValue::Code(c)) => Some(c),
                _ => None,
            }
        } else {
            None
        };
        let (code_hash, code) = match code {
            Some(c) => (c.hash(), c.bytecode().clone()),
            None => (KECCAK_EMPTY, self.empty.clone()),
        };
        Ok(Some(AccountInfo {
            balance: U256::from(account.balance),
            nonce: account.nonce,
            code_hash,
            account_id: None,
            code: Some(code),
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Stop> {
        // `basic` always returns the code with the account, so revm never asks by hash
        // for anything but the empty code.
        if code_hash == KECCAK_EMPTY {
            return Ok(self.empty.clone());
        }
        Err(Stop::Failed(format!("code {code_hash} requested by hash")))
    }

    fn storage(&mut self, address: EvmAddress, index: U256) -> Result<U256, Stop> {
        let key = StateKey::Slot(from_evm(&address), index.to_be_bytes());
        Ok(match self.reader.read(&key)? {
            Some(StateValue::Slot(word)) => U256::from_be_bytes(word),
            _ => U256::ZERO,
        })
    }

    fn block_hash(&mut self, _number: u64) -> Result<B256, Stop> {
        // Execution does not see block hashes (the executed state must not depend on
        // which certified block a validator happened to receive first): BLOCKHASH is zero.
        Ok(B256::ZERO)
    }
}

/// One EVM for many transactions of a block, reading through its reader. Building an EVM
/// allocates and zeroes its journal, stack and memory, which cost as much as a token
/// transfer itself; a runner builds it once per block and thread.
pub(crate) struct Runner<R: KeyReader> {
    evm: MainnetEvm<MainnetContext<Db<R>>>,
}

impl<R: KeyReader> Runner<R> {
    pub(crate) fn new(config: &ChainConfig, block: &BlockContext, reader: R) -> Self {
        Runner {
            evm: build(config, block, Db::new(reader), false),
        }
    }

    /// The reader, between transactions.
    pub(crate) fn reader(&mut self) -> &mut R {
        &mut self.evm.ctx.journaled_state.database.reader
    }

    pub(crate) fn into_reader(self) -> R {
        self.evm.ctx.journaled_state.database.reader
    }

    /// Executes contract transaction `tx`, sent by `sender`. `within_block_gas`: whether
    /// the block's gas limit still covers this transaction's gas limit (the rule is the
    /// contract-block executor's: see `within_block_gas` there).
    pub(crate) fn execute(
        &mut self,
        config: &ChainConfig,
        block: &BlockContext,
        tx: &SignedTransaction,
        sender: Address,
        within_block_gas: bool,
    ) -> Result<EvmEffects, Stop> {
        let (kind, data, value, gas_limit) = match tx.payload() {
            Payload::Deploy {
                init_code,
                value,
                gas_limit,
            } => (TxKind::Create, init_code, *value, *gas_limit),
            Payload::Call {
                to,
                input,
                value,
                gas_limit,
            } => (TxKind::Call(to_evm(to)), input, *value, *gas_limit),
            _ => unreachable!("only contract payloads reach the EVM"),
        };
        if tx.chain_id() != config.chain_id {
            return Ok(EvmEffects::none(TxStatus::WrongChain));
        }
        if let SignedTransaction::Ethereum(e) = tx {
            // Recovery is a pure function of the bytes (and remembered): every validator
            // refuses the same transactions.
            if e.sender().is_err() {
                return Ok(EvmEffects::none(TxStatus::EvmInvalid(
                    EvmInvalid::InvalidSignature,
                )));
            }
        }
        if block.timestamp_ms > tx.expiry() {
            return Ok(EvmEffects::none(TxStatus::Expired));
        }
        let sender_read = self.reader().read(&StateKey::Account(sender))?;
        let account = match &sender_read {
            Some(StateValue::Account(a)) => *a,
            _ => Account::default(),
        };
        if tx.nonce() != account.nonce {
            return Ok(EvmEffects::none(TxStatus::BadNonce {
                expected: account.nonce,
            }));
        }
        // An Ethereum transaction names the most it pays per gas; the chain's price must
        // be within it (no tip is charged on top).
        if tx
            .fee_cap()
            .is_some_and(|cap| cap < u128::from(config.gas_price))
        {
            return Ok(EvmEffects::none(TxStatus::EvmInvalid(
                EvmInvalid::FeeCapTooLow,
            )));
        }
        if gas_limit > MAX_TX_GAS {
            return Ok(EvmEffects::none(TxStatus::EvmInvalid(
                EvmInvalid::GasLimitTooHigh,
            )));
        }
        if !within_block_gas {
            return Ok(EvmEffects::none(TxStatus::EvmInvalid(
                EvmInvalid::BlockGasExhausted,
            )));
        }
        let max_fee = Amount::from(gas_limit) * Amount::from(config.gas_price);
        // Checked: a value near 2^128 plus the fee is more than any balance holds.
        if max_fee
            .checked_add(value)
            .is_none_or(|cost| account.balance < cost)
        {
            return Ok(EvmEffects::none(TxStatus::EvmInvalid(
                EvmInvalid::InsufficientFunds,
            )));
        }

        let tx_env = TxEnv {
            tx_type: 0,
            caller: to_evm(&sender),
            gas_limit,
            gas_price: 0,
            kind,
            value: U256::from(value),
            data: data.clone().into(),
            nonce: tx.nonce(),
            chain_id: None,
            ..TxEnv::default()
        };
        let db = &mut self.evm.ctx.journaled_state.database;
        db.sender = Some((sender, sender_read));
        let outcome = transact(&mut self.evm, tx_env);
        self.evm.ctx.journaled_state.database.sender = None;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Refused::Stop(stop)) => return Err(stop),
            Err(Refused::Invalid(reason)) => {
                return Ok(EvmEffects::none(TxStatus::EvmInvalid(reason)))
            }
        };
        let gas_used = outcome.result.tx_gas_used();
        let fee = Amount::from(gas_used) * Amount::from(config.gas_price);
        let (status, evm_outcome) = outcome_of(outcome.result);
        let mut writes = state_writes(outcome.state);
        charge(&mut writes, sender, fee);
        Ok(EvmEffects {
            receipt: Receipt {
                status,
                fee,
                gas_used,
                evm: Some(Box::new(evm_outcome)),
            },
            writes,
        })
    }
}

/// Why revm did not run a transaction.
enum Refused {
    Stop(Stop),
    Invalid(EvmInvalid),
}

/// An EVM for `block` over `db`; `read_only` drops the nonce check (a read-only call
/// carries none).
fn build<R: KeyReader>(
    config: &ChainConfig,
    block: &BlockContext,
    db: Db<R>,
    read_only: bool,
) -> MainnetEvm<MainnetContext<Db<R>>> {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = config.chain_id;
    cfg.disable_fee_charge = true;
    cfg.disable_nonce_check = read_only;
    // A read may be made as a contract (geth's eth_call allows it); a transaction may not.
    cfg.disable_eip3607 = read_only;
    cfg.tx_gas_limit_cap = Some(MAX_TX_GAS);
    let block_env = BlockEnv {
        number: U256::from(block.height),
        beneficiary: to_evm(&config.fee_sink),
        timestamp: U256::from(block.timestamp_ms / 1_000),
        gas_limit: config.block_gas_limit,
        basefee: 0,
        difficulty: U256::ZERO,
        prevrandao: Some(B256::ZERO),
        ..BlockEnv::default()
    };
    let context: MainnetContext<Db<R>> = Context::new(db, SPEC);
    context.with_cfg(cfg).with_block(block_env).build_mainnet()
}

/// Runs `tx_env`, changing nothing: the state changes come back with the result.
fn transact<R: KeyReader>(
    evm: &mut MainnetEvm<MainnetContext<Db<R>>>,
    tx_env: TxEnv,
) -> Result<revm::context::result::ResultAndState, Refused> {
    match evm.transact(tx_env) {
        Ok(outcome) => Ok(outcome),
        Err(EVMError::Database(stop)) => Err(Refused::Stop(stop)),
        Err(EVMError::Transaction(invalid)) => Err(Refused::Invalid(invalid_reason(&invalid))),
        Err(other) => {
            // A header or custom error is a bug of this configuration, the same on every
            // validator; the transaction is refused rather than the block failed.
            tracing::warn!(error = %other, "the EVM refused a transaction");
            Err(Refused::Invalid(EvmInvalid::Other))
        }
    }
}

/// A result's status and outcome for the receipt.
fn outcome_of(result: ExecutionResult) -> (TxStatus, EvmOutcome) {
    match result {
        ExecutionResult::Success { logs, output, .. } => {
            let created = match &output {
                Output::Create(_, Some(address)) => Some(from_evm(address)),
                _ => None,
            };
            let logs = logs
                .into_iter()
                .map(|log| Log {
                    address: from_evm(&log.address),
                    topics: log.data.topics().iter().map(|t| t.0).collect(),
                    data: log.data.data.to_vec(),
                })
                .collect();
            let output = match output {
                Output::Call(bytes) => bytes.to_vec(),
                Output::Create(..) => Vec::new(),
            };
            (
                TxStatus::Success,
                EvmOutcome {
                    output,
                    logs,
                    created,
                },
            )
        }
        ExecutionResult::Revert { output, .. } => (
            TxStatus::Reverted,
            EvmOutcome {
                output: output.to_vec(),
                ..EvmOutcome::default()
            },
        ),
        ExecutionResult::Halt { reason, .. } => (
            TxStatus::Halted(halt_reason(&reason)),
            EvmOutcome::default(),
        ),
    }
}

/// What a read-only call returned; nothing it did is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyCall {
    pub status: TxStatus,
    pub gas_used: u64,
    /// Return data, or the revert data of a revert.
    pub output: Vec<u8>,
    pub logs: Vec<Log>,
}

/// What a read-only call runs: a call of `to`, or a creation when `to` is `None`, with
/// `value` sent from `from`.
#[derive(Debug, Clone, Default)]
pub struct ReadOnlyRequest {
    pub from: Address,
    pub to: Option<Address>,
    pub value: ordo_types::Amount,
    pub input: Vec<u8>,
    pub gas_limit: u64,
}

/// Runs `request` against the state in `view`, as `eth_call` and `eth_estimateGas` do:
/// no transaction, no signature, no nonce check, no fee, and no state change kept.
pub fn read_only_call(
    view: &dyn ordo_types::StateView,
    config: &ChainConfig,
    block: &BlockContext,
    request: ReadOnlyRequest,
) -> crate::error::Result<ReadOnlyCall> {
    struct ViewReader<'v>(&'v dyn ordo_types::StateView);
    impl KeyReader for ViewReader<'_> {
        fn read(&mut self, key: &StateKey) -> Result<Option<StateValue>, Stop> {
            read_base(self.0, key)
        }
    }
    let tx_env = TxEnv {
        tx_type: 0,
        caller: to_evm(&request.from),
        gas_limit: request.gas_limit.min(MAX_TX_GAS),
        gas_price: 0,
        kind: request
            .to
            .map_or(TxKind::Create, |to| TxKind::Call(to_evm(&to))),
        value: U256::from(request.value),
        data: request.input.into(),
        chain_id: None,
        ..TxEnv::default()
    };
    let mut evm = build(config, block, Db::new(ViewReader(view)), true);
    match transact(&mut evm, tx_env) {
        Ok(outcome) => {
            let gas_used = outcome.result.tx_gas_used();
            let (status, out) = outcome_of(outcome.result);
            Ok(ReadOnlyCall {
                status,
                gas_used,
                output: out.output,
                logs: out.logs,
            })
        }
        Err(Refused::Stop(stop)) => Err(stop.into()),
        Err(Refused::Invalid(reason)) => Ok(ReadOnlyCall {
            status: TxStatus::EvmInvalid(reason),
            gas_used: 0,
            output: Vec::new(),
            logs: Vec::new(),
        }),
    }
}

/// Takes `fee` from the sender's written account. The EVM always writes the sender (its
/// nonce moved), and the balance check above left at least the whole gas limit's fee.
fn charge(writes: &mut [(StateKey, StateValue)], sender: Address, fee: Amount) {
    for (key, value) in writes.iter_mut() {
        if let (StateKey::Account(a), StateValue::Account(account)) = (&*key, value) {
            if *a == sender {
                account.balance = account.balance.saturating_sub(fee);
                return;
            }
        }
    }
}

/// The key writes of the EVM's state changes (see the module note), sorted by key.
fn state_writes(state: EvmState) -> Vec<(StateKey, StateValue)> {
    // Sized for every key that can be written: growing it step by step cost more than
    // building it.
    let most = state.values().map(|a| 2 + a.storage.len()).sum();
    let mut writes = Vec::with_capacity(most);
    for (address, account) in state {
        if !account.is_touched() {
            continue;
        }
        let ours = from_evm(&address);
        if account.is_selfdestructed() {
            writes.push((
                StateKey::Account(ours),
                StateValue::Account(Account::default()),
            ));
            continue;
        }
        if account.is_changed() || account.is_created() {
            writes.push((
                StateKey::Account(ours),
                StateValue::Account(Account {
                    // The genesis supply bound keeps every balance within an `Amount`
                    // (see `genesis`); saturating only so that nothing here can panic.
                    balance: account.info.balance.try_into().unwrap_or(Amount::MAX),
                    nonce: account.info.nonce,
                    // Created with code, or loaded with it: the code is stored (below, or
                    // before this block).
                    contract: account.info.code_hash != KECCAK_EMPTY,
                }),
            ));
        }
        if account.is_created() {
            if let Some(code) = account.info.code.as_ref().filter(|c| !c.is_empty()) {
                writes.push((
                    StateKey::Code(ours),
                    StateValue::Code(crate::code::Code::new(code.original_byte_slice())),
                ));
            }
        }
        for (index, slot) in account.storage {
            if slot.is_changed() {
                writes.push((
                    StateKey::Slot(ours, index.to_be_bytes()),
                    StateValue::Slot(slot.present_value.to_be_bytes()),
                ));
            }
        }
    }
    writes.sort_unstable_by_key(|w| w.0);
    writes
}

fn invalid_reason(invalid: &InvalidTransaction) -> EvmInvalid {
    match invalid {
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. }
        | InvalidTransaction::GasFloorMoreThanGasLimit { .. } => EvmInvalid::IntrinsicGas,
        InvalidTransaction::TxGasLimitGreaterThanCap { .. }
        | InvalidTransaction::CallerGasLimitMoreThanBlock => EvmInvalid::GasLimitTooHigh,
        InvalidTransaction::LackOfFundForMaxFee { .. } => EvmInvalid::InsufficientFunds,
        InvalidTransaction::CreateInitCodeSizeLimit => EvmInvalid::InitCodeTooLarge,
        _ => EvmInvalid::Other,
    }
}

fn halt_reason(reason: &HaltReason) -> EvmHalt {
    match reason {
        HaltReason::OutOfGas(_) => EvmHalt::OutOfGas,
        HaltReason::OpcodeNotFound | HaltReason::InvalidFEOpcode | HaltReason::NotActivated => {
            EvmHalt::InvalidOpcode
        }
        HaltReason::CallTooDeep => EvmHalt::CallTooDeep,
        HaltReason::CreateContractSizeLimit => EvmHalt::CodeSizeLimit,
        HaltReason::StackOverflow => EvmHalt::StackOverflow,
        HaltReason::StackUnderflow => EvmHalt::StackUnderflow,
        HaltReason::InvalidJump => EvmHalt::InvalidJump,
        _ => EvmHalt::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    /// A reader over a map that records which keys were asked for.
    #[derive(Default)]
    struct Recording {
        state: FxHashMap<StateKey, StateValue>,
        asked: Vec<StateKey>,
    }

    impl KeyReader for Recording {
        fn read(&mut self, key: &StateKey) -> Result<Option<StateValue>, Stop> {
            self.asked.push(*key);
            Ok(self.state.get(key).cloned())
        }
    }

    #[test]
    fn only_a_contracts_code_is_read() {
        let (person, contract, nobody) = (Address([1; 20]), Address([2; 20]), Address([3; 20]));
        let mut reader = Recording::default();
        let account = |contract| {
            StateValue::Account(Account {
                balance: 10,
                nonce: 1,
                contract,
            })
        };
        reader
            .state
            .insert(StateKey::Account(person), account(false));
        reader
            .state
            .insert(StateKey::Account(contract), account(true));
        let code = crate::code::Code::new(&[0x60, 0x00, 0x00]);
        reader
            .state
            .insert(StateKey::Code(contract), StateValue::Code(code.clone()));
        let mut db = Db::new(reader);

        let info = db.basic(to_evm(&person)).unwrap().unwrap();
        assert_eq!(info.code_hash, KECCAK_EMPTY);
        assert_eq!(db.reader.asked, [StateKey::Account(person)]);

        db.reader.asked.clear();
        let info = db.basic(to_evm(&contract)).unwrap().unwrap();
        assert_eq!(info.code_hash, code.hash());
        assert_eq!(
            db.reader.asked,
            [StateKey::Account(contract), StateKey::Code(contract)]
        );

        db.reader.asked.clear();
        assert!(db.basic(to_evm(&nobody)).unwrap().is_none());
        assert_eq!(db.reader.asked, [StateKey::Account(nobody)]);
    }

    #[test]
    fn a_contract_call_reads_its_sender_once_and_empty_code_is_this_evms_own() {
        let key = ordo_types::KeyPair::from_seed([4; 32]);
        let sender = key.address();
        let config = crate::workload::bench_config();
        let block = BlockContext {
            height: 1,
            timestamp_ms: 0,
        };
        let mut reader = Recording::default();
        let funded = Account {
            balance: 1 << 64,
            nonce: 0,
            contract: false,
        };
        reader
            .state
            .insert(StateKey::Account(sender), StateValue::Account(funded));
        let tx = ordo_types::Transaction {
            chain_id: config.chain_id,
            sender: key.public(),
            nonce: 0,
            expiry: u64::MAX,
            payload: Payload::Call {
                to: Address([9; 20]),
                input: Vec::new(),
                value: 5,
                gas_limit: 100_000,
            },
        }
        .sign(&key);
        let mut runner = Runner::new(&config, &block, reader);
        let effects = runner.execute(&config, &block, &tx, sender, true).unwrap();
        assert_eq!(effects.receipt.status, TxStatus::Success);
        let asked = &runner.reader().asked;
        let sender_reads = asked
            .iter()
            .filter(|k| **k == StateKey::Account(sender))
            .count();
        assert_eq!(sender_reads, 1, "asked: {asked:?}");
        // The hand-over ends with the transaction.
        assert!(runner.evm.ctx.journaled_state.database.sender.is_none());

        // A transaction revm refuses before it loads the sender (too little gas for its
        // intrinsic cost) leaves nothing behind either; the next one reads the sender
        // afresh, once.
        let next = |nonce, gas_limit| {
            ordo_types::Transaction {
                chain_id: config.chain_id,
                sender: key.public(),
                nonce,
                expiry: u64::MAX,
                payload: Payload::Call {
                    to: Address([9; 20]),
                    input: Vec::new(),
                    value: 0,
                    gas_limit,
                },
            }
            .sign(&key)
        };
        let mut account = funded;
        account.nonce = 1;
        runner
            .reader()
            .state
            .insert(StateKey::Account(sender), StateValue::Account(account));
        let refused = runner
            .execute(&config, &block, &next(1, 20_000), sender, true)
            .unwrap();
        assert!(matches!(refused.receipt.status, TxStatus::EvmInvalid(_)));
        assert!(runner.evm.ctx.journaled_state.database.sender.is_none());
        runner.reader().asked.clear();
        let effects = runner
            .execute(&config, &block, &next(1, 100_000), sender, true)
            .unwrap();
        assert_eq!(effects.receipt.status, TxStatus::Success);
        let sender_reads = runner
            .reader()
            .asked
            .iter()
            .filter(|k| **k == StateKey::Account(sender))
            .count();
        assert_eq!(sender_reads, 1);

        let db = &runner.evm.ctx.journaled_state.database;
        assert!(db.empty.is_empty());
        assert_eq!(db.empty.hash_slow(), KECCAK_EMPTY);
        assert_eq!(db.empty, Bytecode::default());
        assert!(!db.empty.is_default(), "revm's shared default, not our own");
    }
}
