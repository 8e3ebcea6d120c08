//! Transaction semantics: one transaction against a reader of its declared keys.
//!
//! The VM reads only the keys a transaction declares (see [`declared_keys`]), each at most
//! once, and returns the values it writes to them; it never sees where reads come from, so
//! the sequential and the parallel executor run exactly this code. The one write outside
//! the declared keys is a minted token, whose key is fresh by construction and read by
//! nobody. Fees are not credited here: they are summed and paid to the fee sink at block
//! end, so that no transaction reads the sink because of another's fee.

use ordo_types::{Address, Amount, ChainId, Payload, SignedTransaction, SwapDirection};

use crate::receipt::{Receipt, TxStatus};
use crate::state::{Account, Collection, StateKey, StateValue};

/// How many keys one transaction may declare.
pub(crate) const SLOTS: usize = 3;
/// The slot of the sender's account, declared by every transaction.
const SENDER: usize = 0;
/// The payload's main key: the recipient, the pool, the collection, or the sender's storage.
const TARGET: usize = 1;
/// A swap's holding of the pool's B asset.
const HOLDING: usize = 2;

/// Gas of each payload kind; a `Compute` call adds one unit per iteration.
pub const TRANSFER_GAS: u64 = 21;
pub const SWAP_GAS: u64 = 60;
pub const MINT_GAS: u64 = 50;
pub const COMPUTE_BASE_GAS: u64 = 30;
/// The most iterations one `Compute` call may ask for (about 10 ms of hashing).
pub const MAX_COMPUTE_ITERATIONS: u32 = 100_000;

/// The chain's parameters that execution depends on; fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    pub chain_id: ChainId,
    /// Native coin charged per gas unit.
    pub gas_price: u64,
    /// The account that collects every block's fees.
    pub fee_sink: Address,
    /// The most gas a block's contract transactions may ask for together (see
    /// [`crate::dynamic`]).
    pub block_gas_limit: u64,
}

/// The block gas limit when genesis names none: about 20,000 token transfers, far more
/// than a block holds at this chain's block rate, so that it only stops pathological
/// blocks.
pub const DEFAULT_BLOCK_GAS_LIMIT: u64 = 1_000_000_000;

/// What a block contributes to execution besides its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    pub height: u64,
    /// Unix milliseconds; transactions whose expiry is earlier fail as expired.
    pub timestamp_ms: u64,
}

/// A read that cannot be answered yet: a lower transaction that may write the key has not
/// executed. The parallel executor suspends the transaction; the sequential one never
/// produces this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked;

/// Read access to a transaction's declared keys, by slot. `None`: no value stored.
pub(crate) trait SlotReader {
    fn read(&mut self, slot: usize) -> Result<Option<StateValue>, Blocked>;
}

/// What one execution of a transaction produced.
#[derive(Debug, Clone)]
pub(crate) struct Effects {
    pub receipt: Receipt,
    /// New values for declared slots; `None` where the slot is not written.
    pub writes: [Option<StateValue>; SLOTS],
    /// A minted token: (collection, id, owner).
    pub token: Option<(u32, u64, Address)>,
}

impl Effects {
    fn none(status: TxStatus) -> Self {
        Effects {
            receipt: Receipt::uncharged(status),
            writes: [const { None }; SLOTS],
            token: None,
        }
    }
}

/// The keys `tx` may read or write, by slot. Every read the VM makes is of one of these.
pub(crate) fn declared_keys(tx: &SignedTransaction, sender: Address) -> [Option<StateKey>; SLOTS] {
    let own = Some(StateKey::Account(sender));
    match *tx.payload() {
        Payload::Transfer { to, .. } => {
            // A transfer to oneself declares the account once: one key, one slot.
            let target = (to != sender).then_some(StateKey::Account(to));
            [own, target, None]
        }
        Payload::Swap { pool, .. } => [
            own,
            Some(StateKey::Pool(pool)),
            Some(StateKey::Holding(sender, pool)),
        ],
        Payload::Mint { collection } => [own, Some(StateKey::Collection(collection)), None],
        Payload::Compute { .. } => [own, Some(StateKey::Storage(sender)), None],
        // Contract keys are found as the EVM runs (see `crate::dynamic`).
        Payload::Deploy { .. } | Payload::Call { .. } => [own, None, None],
    }
}

/// A rough relative cost of executing `tx` (a plain transaction, about 50 ns, is 1), for
/// choosing between sequential and parallel.
pub(crate) fn cost_weight(tx: &SignedTransaction) -> u64 {
    match *tx.payload() {
        // One hash of the compute loop costs about 0.1-0.3 µs.
        Payload::Compute { iterations } => {
            1 + 4 * u64::from(iterations.min(MAX_COMPUTE_ITERATIONS))
        }
        _ => 1,
    }
}

/// The fixed gas of a native payload.
fn gas_of(payload: &Payload) -> u64 {
    match payload {
        Payload::Transfer { .. } => TRANSFER_GAS,
        Payload::Swap { .. } => SWAP_GAS,
        Payload::Mint { .. } => MINT_GAS,
        Payload::Compute { iterations } => COMPUTE_BASE_GAS + u64::from(*iterations),
        Payload::Deploy { .. } | Payload::Call { .. } => 0,
    }
}

fn account_of(value: Option<StateValue>) -> Account {
    match value {
        Some(StateValue::Account(a)) => a,
        _ => Account::default(),
    }
}

/// Executes `tx`, sent by `sender`, reading through `reader`.
pub(crate) fn execute<R: SlotReader>(
    config: &ChainConfig,
    block: &BlockContext,
    tx: &SignedTransaction,
    sender: Address,
    reader: &mut R,
) -> Result<Effects, Blocked> {
    if tx.payload().is_evm() {
        // Blocks with contract transactions run through `crate::dynamic`, which hands them
        // to the EVM; refusing here keeps this function total.
        return Ok(Effects::none(TxStatus::EvmInvalid(
            crate::receipt::EvmInvalid::Other,
        )));
    }
    if tx.chain_id() != config.chain_id {
        return Ok(Effects::none(TxStatus::WrongChain));
    }
    if block.timestamp_ms > tx.expiry() {
        return Ok(Effects::none(TxStatus::Expired));
    }
    let mut account = account_of(reader.read(SENDER)?);
    if tx.nonce() != account.nonce {
        return Ok(Effects::none(TxStatus::BadNonce {
            expected: account.nonce,
        }));
    }
    if let Payload::Compute { iterations } = *tx.payload() {
        if iterations > MAX_COMPUTE_ITERATIONS {
            return Ok(Effects::none(TxStatus::ComputeLimitExceeded));
        }
    }
    let gas = gas_of(tx.payload());
    let fee = Amount::from(gas) * Amount::from(config.gas_price);
    if account.balance < fee {
        return Ok(Effects::none(TxStatus::CannotPayFee));
    }
    // From here on the fee is paid and the nonce used, whatever the payload does.
    account.balance -= fee;
    // Saturating: a nonce reaches 2^64 - 1 only after that many transactions; the
    // executor must not panic on it.
    account.nonce = account.nonce.saturating_add(1);
    let mut effects = Effects {
        receipt: Receipt {
            status: TxStatus::Success,
            fee,
            gas_used: gas,
            evm: None,
        },
        writes: [const { None }; SLOTS],
        token: None,
    };
    let status = apply_payload(tx, sender, &mut account, reader, &mut effects)?;
    effects.receipt.status = status;
    if status != TxStatus::Success {
        // The payload's own writes are dropped; only the fee and nonce stand.
        effects.writes = [const { None }; SLOTS];
        effects.token = None;
    }
    effects.writes[SENDER] = Some(StateValue::Account(account));
    Ok(effects)
}

/// Applies the payload; on failure the caller discards `effects.writes` and the account
/// changes made here are reverted by restoring the post-fee account.
fn apply_payload<R: SlotReader>(
    tx: &SignedTransaction,
    sender: Address,
    account: &mut Account,
    reader: &mut R,
    effects: &mut Effects,
) -> Result<TxStatus, Blocked> {
    let paid = *account;
    let status = match *tx.payload() {
        Payload::Transfer { to, amount } => {
            if account.balance < amount {
                TxStatus::InsufficientBalance
            } else if to == sender {
                TxStatus::Success
            } else {
                let mut recipient = account_of(reader.read(TARGET)?);
                match recipient.balance.checked_add(amount) {
                    None => TxStatus::Overflow,
                    Some(b) => {
                        recipient.balance = b;
                        account.balance -= amount;
                        effects.writes[TARGET] = Some(StateValue::Account(recipient));
                        TxStatus::Success
                    }
                }
            }
        }
        Payload::Swap {
            amount_in,
            min_out,
            direction,
            ..
        } => swap(account, amount_in, min_out, direction, reader, effects)?,
        Payload::Mint { collection } => match reader.read(TARGET)? {
            Some(StateValue::Collection(c)) => match c.minted.checked_add(1) {
                None => TxStatus::Overflow,
                Some(minted) => {
                    effects.writes[TARGET] = Some(StateValue::Collection(Collection { minted }));
                    effects.token = Some((collection, c.minted, sender));
                    TxStatus::Success
                }
            },
            _ => TxStatus::UnknownCollection,
        },
        Payload::Compute { iterations } => {
            let seed = match reader.read(TARGET)? {
                Some(StateValue::Storage(word)) => word,
                _ => [0; 32],
            };
            let result = compute(seed, tx.nonce(), iterations);
            effects.writes[TARGET] = Some(StateValue::Storage(result));
            TxStatus::Success
        }
        Payload::Deploy { .. } | Payload::Call { .. } => {
            TxStatus::EvmInvalid(crate::receipt::EvmInvalid::Other)
        }
    };
    if status != TxStatus::Success {
        *account = paid;
    }
    Ok(status)
}

fn swap<R: SlotReader>(
    account: &mut Account,
    amount_in: u64,
    min_out: u64,
    direction: SwapDirection,
    reader: &mut R,
    effects: &mut Effects,
) -> Result<TxStatus, Blocked> {
    let mut pool = match reader.read(TARGET)? {
        Some(StateValue::Pool(p)) => p,
        _ => return Ok(TxStatus::UnknownPool),
    };
    let mut holding = match reader.read(HOLDING)? {
        Some(StateValue::Holding(h)) => h,
        _ => 0,
    };
    // Balances are 128 bits wide, holdings and reserves 64: the side paid from and the
    // side paid into are compared and credited at their own widths.
    let (available, reserve_in, reserve_out) = match direction {
        SwapDirection::AToB => (account.balance, pool.reserve_a, pool.reserve_b),
        SwapDirection::BToA => (Amount::from(holding), pool.reserve_b, pool.reserve_a),
    };
    if available < Amount::from(amount_in) {
        return Ok(TxStatus::InsufficientBalance);
    }
    let Some(new_reserve_in) = reserve_in.checked_add(amount_in) else {
        return Ok(TxStatus::Overflow);
    };
    // Constant product: out = reserve_out * in / (reserve_in + in), rounded down, so the
    // product of the reserves never decreases.
    let out = if new_reserve_in == 0 {
        0
    } else {
        (u128::from(reserve_out) * u128::from(amount_in) / u128::from(new_reserve_in)) as u64
    };
    if out < min_out {
        return Ok(TxStatus::SlippageExceeded);
    }
    match direction {
        SwapDirection::AToB => {
            let Some(received) = holding.checked_add(out) else {
                return Ok(TxStatus::Overflow);
            };
            account.balance -= Amount::from(amount_in);
            holding = received;
            pool.reserve_a = new_reserve_in;
            pool.reserve_b -= out;
        }
        SwapDirection::BToA => {
            let Some(received) = account.balance.checked_add(Amount::from(out)) else {
                return Ok(TxStatus::Overflow);
            };
            holding -= amount_in;
            account.balance = received;
            pool.reserve_b = new_reserve_in;
            pool.reserve_a -= out;
        }
    }
    effects.writes[TARGET] = Some(StateValue::Pool(pool));
    effects.writes[HOLDING] = Some(StateValue::Holding(holding));
    Ok(TxStatus::Success)
}

/// The metered work of a `Compute` call: `iterations` chained hashes over the sender's
/// storage word and the nonce.
pub fn compute(seed: [u8; 32], nonce: u64, iterations: u32) -> [u8; 32] {
    let mut buf = [0u8; 40];
    buf[..32].copy_from_slice(&seed);
    buf[32..].copy_from_slice(&nonce.to_le_bytes());
    for _ in 0..iterations {
        let h = blake3::hash(&buf);
        buf[..32].copy_from_slice(h.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&buf[..32]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Pool;

    struct Fixed([Option<StateValue>; SLOTS]);
    impl SlotReader for Fixed {
        fn read(&mut self, slot: usize) -> Result<Option<StateValue>, Blocked> {
            Ok(self.0[slot].clone())
        }
    }

    fn config() -> ChainConfig {
        ChainConfig {
            chain_id: 7,
            gas_price: 2,
            fee_sink: Address([0xfe; 20]),
            block_gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
        }
    }

    const BLOCK: BlockContext = BlockContext {
        height: 1,
        timestamp_ms: 1_000,
    };

    fn tx(nonce: u64, payload: Payload) -> SignedTransaction {
        SignedTransaction::Ordo(ordo_types::OrdoTransaction {
            tx: ordo_types::Transaction {
                chain_id: 7,
                sender: ordo_types::PublicKey([1; 32]),
                nonce,
                expiry: 2_000,
                payload,
            },
            signature: ordo_types::Signature([0; 64]),
        })
    }

    fn acct(balance: Amount, nonce: u64) -> Option<StateValue> {
        Some(StateValue::Account(Account {
            balance,
            nonce,
            contract: false,
        }))
    }

    fn run(t: &SignedTransaction, state: [Option<StateValue>; SLOTS]) -> Effects {
        let sender = t.sender_address();
        execute(&config(), &BLOCK, t, sender, &mut Fixed(state)).unwrap()
    }

    #[test]
    fn transfer_moves_coins_and_charges_the_fee() {
        let t = tx(
            3,
            Payload::Transfer {
                to: Address([9; 20]),
                amount: 10,
            },
        );
        let e = run(&t, [acct(100, 3), acct(5, 0), None]);
        assert_eq!(e.receipt.status, TxStatus::Success);
        assert_eq!(e.receipt.fee, Amount::from(2 * TRANSFER_GAS));
        assert_eq!(e.writes[0], acct(100 - 10 - 42, 4));
        assert_eq!(e.writes[1], acct(15, 0));
    }

    #[test]
    fn admission_failures_have_no_effect() {
        let transfer = Payload::Transfer {
            to: Address([9; 20]),
            amount: 1,
        };
        let mut wrong_chain = tx(0, transfer.clone());
        wrong_chain.as_ordo_mut().unwrap().tx.chain_id = 8;
        let mut expired = tx(0, transfer.clone());
        expired.as_ordo_mut().unwrap().tx.expiry = 999;
        let cases = [
            (wrong_chain, acct(100, 0), TxStatus::WrongChain),
            (expired, acct(100, 0), TxStatus::Expired),
            (
                tx(1, transfer.clone()),
                acct(100, 0),
                TxStatus::BadNonce { expected: 0 },
            ),
            (tx(0, transfer), acct(41, 0), TxStatus::CannotPayFee),
            (
                tx(
                    0,
                    Payload::Compute {
                        iterations: MAX_COMPUTE_ITERATIONS + 1,
                    },
                ),
                acct(Amount::MAX, 0),
                TxStatus::ComputeLimitExceeded,
            ),
        ];
        for (t, sender, status) in cases {
            let e = run(&t, [sender, None, None]);
            assert_eq!(e.receipt, Receipt::uncharged(status));
            assert_eq!(e.writes, [const { None }; SLOTS]);
        }
    }

    #[test]
    fn payload_failures_charge_the_fee_and_use_the_nonce() {
        let poor = tx(
            0,
            Payload::Transfer {
                to: Address([9; 20]),
                amount: 1_000,
            },
        );
        let e = run(&poor, [acct(100, 0), acct(0, 0), None]);
        assert_eq!(e.receipt.status, TxStatus::InsufficientBalance);
        assert_eq!(e.writes, [acct(58, 1), None, None]);

        let unknown = tx(
            0,
            Payload::Swap {
                pool: 4,
                amount_in: 1,
                min_out: 0,
                direction: SwapDirection::AToB,
            },
        );
        let e = run(&unknown, [acct(1_000, 0), None, None]);
        assert_eq!(e.receipt.status, TxStatus::UnknownPool);
        assert_eq!(e.writes, [acct(1_000 - 120, 1), None, None]);

        let mint = tx(0, Payload::Mint { collection: 3 });
        let e = run(&mint, [acct(1_000, 0), None, None]);
        assert_eq!(e.receipt.status, TxStatus::UnknownCollection);
        assert_eq!(e.token, None);
    }

    #[test]
    fn swap_follows_the_constant_product_and_checks_slippage() {
        let pool = Some(StateValue::Pool(Pool {
            reserve_a: 1_000,
            reserve_b: 1_000,
        }));
        let swap = |min_out| {
            tx(
                0,
                Payload::Swap {
                    pool: 1,
                    amount_in: 1_000,
                    min_out,
                    direction: SwapDirection::AToB,
                },
            )
        };
        let e = run(&swap(500), [acct(10_000, 0), pool.clone(), None]);
        assert_eq!(e.receipt.status, TxStatus::Success);
        assert_eq!(
            e.writes[1],
            Some(StateValue::Pool(Pool {
                reserve_a: 2_000,
                reserve_b: 500
            }))
        );
        assert_eq!(e.writes[2], Some(StateValue::Holding(500)));
        assert_eq!(e.writes[0], acct(10_000 - 1_000 - 120, 1));

        let e = run(&swap(501), [acct(10_000, 0), pool, None]);
        assert_eq!(e.receipt.status, TxStatus::SlippageExceeded);
        assert_eq!(e.writes, [acct(10_000 - 120, 1), None, None]);
    }

    #[test]
    fn mint_allocates_the_next_token_and_compute_is_deterministic() {
        let coll = Some(StateValue::Collection(Collection { minted: 7 }));
        let t = tx(0, Payload::Mint { collection: 3 });
        let e = run(&t, [acct(1_000, 0), coll, None]);
        assert_eq!(e.token, Some((3, 7, t.sender_address())));
        assert_eq!(
            e.writes[1],
            Some(StateValue::Collection(Collection { minted: 8 }))
        );

        let c = tx(0, Payload::Compute { iterations: 5 });
        let a = run(&c, [acct(1_000, 0), None, None]);
        let b = run(&c, [acct(1_000, 0), None, None]);
        assert_eq!(a.writes, b.writes);
        assert_eq!(a.receipt.gas_used, COMPUTE_BASE_GAS + 5);
        assert_ne!(compute([0; 32], 0, 5), compute([0; 32], 1, 5));
    }
}
