//! The initial state: funded accounts, AMM pools and NFT collections, with the accumulator
//! whose root is the state root at height 0.

use ordo_types::{Address, Amount, Hash32, StateAccumulator};
use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::error::{ExecutionError, Result};
use crate::state::{Account, Collection, Pool, StateKey, StateValue};

/// What the chain starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenesisSpec {
    /// Accounts and their native-coin balances; each address at most once.
    pub accounts: Vec<(Address, Amount)>,
    /// Pools by id with their initial reserves; each id at most once.
    pub pools: Vec<(u32, Pool)>,
    /// NFT collection ids, each at most once; every collection starts with no tokens.
    pub collections: Vec<u32>,
}

/// The genesis state as storage writes it, and its commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Typed entries, sorted by key.
    pub entries: Vec<(StateKey, StateValue)>,
    pub accumulator: StateAccumulator,
    pub state_root: Hash32,
}

impl Genesis {
    /// The entries as (key bytes, value bytes), in key order.
    pub fn to_bytes(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.to_bytes().to_vec(), v.to_bytes()))
            .collect()
    }
}

/// Builds the genesis state of `spec`; the accumulator is computed on the current rayon
/// pool.
pub fn genesis(spec: &GenesisSpec) -> Result<Genesis> {
    // Every native coin there will ever be exists at genesis (fees move coins, nothing
    // mints them), so a total supply that fits an `Amount` keeps every balance, including
    // one the EVM computes in 256 bits, within an `Amount`: no conversion can truncate.
    let supply = spec
        .accounts
        .iter()
        .map(|(_, balance)| *balance)
        .chain(
            spec.pools
                .iter()
                .map(|(_, pool)| Amount::from(pool.reserve_a)),
        )
        .try_fold(0, Amount::checked_add);
    if supply.is_none() {
        return Err(ExecutionError::InvalidGenesis(format!(
            "the total supply of the native coin exceeds {} (2^128 - 1)",
            Amount::MAX
        )));
    }
    let mut entries = Vec::with_capacity(spec.accounts.len() + spec.pools.len());
    for (address, balance) in &spec.accounts {
        entries.push((
            StateKey::Account(*address),
            StateValue::Account(Account {
                balance: *balance,
                nonce: 0,
                contract: false,
            }),
        ));
    }
    for (id, pool) in &spec.pools {
        entries.push((StateKey::Pool(*id), StateValue::Pool(*pool)));
    }
    for id in &spec.collections {
        entries.push((
            StateKey::Collection(*id),
            StateValue::Collection(Collection { minted: 0 }),
        ));
    }
    let mut seen = FxHashSet::default();
    if let Some((dup, _)) = entries.iter().find(|(k, _)| !seen.insert(*k)) {
        return Err(ExecutionError::InvalidGenesis(format!(
            "{dup:?} appears more than once"
        )));
    }
    entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let accumulator = entries
        .par_chunks(256)
        .map(|chunk| {
            let mut acc = StateAccumulator::new();
            for (k, v) in chunk {
                acc.insert(&k.to_bytes(), &v.to_bytes());
            }
            acc
        })
        .reduce(StateAccumulator::new, |mut a, b| {
            a.combine(&b);
            a
        });
    Ok(Genesis {
        entries,
        state_root: accumulator.root(),
        accumulator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_sorted_and_its_root_is_order_independent() {
        let spec = GenesisSpec {
            accounts: vec![(Address([2; 20]), 5), (Address([1; 20]), 7)],
            pools: vec![(
                3,
                Pool {
                    reserve_a: 10,
                    reserve_b: 20,
                },
            )],
            collections: vec![9],
        };
        let g = genesis(&spec).unwrap();
        let bytes = g.to_bytes();
        assert!(bytes.windows(2).all(|w| w[0].0 < w[1].0));
        let mut reversed = spec.clone();
        reversed.accounts.reverse();
        assert_eq!(genesis(&reversed).unwrap().state_root, g.state_root);

        let mut dup = spec;
        dup.collections.push(9);
        assert!(matches!(
            genesis(&dup),
            Err(ExecutionError::InvalidGenesis(_))
        ));
    }
}
