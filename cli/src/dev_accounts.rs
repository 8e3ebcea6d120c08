//! The development accounts every Ethereum tool expects on a local chain: the first ten
//! accounts of the standard test mnemonic ("test test test test test test test test test
//! test test junk", path m/44'/60'/0'/0/i), as anvil and Hardhat fund them, so that
//! deployment scripts written for those run unchanged against a local Ordo testnet.
//!
//! The keys are public knowledge: never fund them on a network that matters. They are
//! listed rather than derived (BIP-39 and BIP-32 would add two crates for ten constants);
//! the test below checks each key against its address, and the Ethereum client test
//! derives them from the mnemonic with ethers.js and compares.

use ordo_types::{Address, Amount, EthKey};

/// The mnemonic the accounts come from.
pub const MNEMONIC: &str = "test test test test test test test test test test test junk";

/// What each holds at genesis: 10,000 coins of 10^18 base units, as anvil gives.
pub const DEV_ACCOUNT_BALANCE: Amount = 10_000 * 1_000_000_000_000_000_000;

/// (private key, address) of accounts 0 to 9.
const ACCOUNTS: [(&str, &str); 10] = [
    (
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    ),
    (
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "70997970c51812dc3a010c7d01b50e0d17dc79c8",
    ),
    (
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    ),
    (
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "90f79bf6eb2c4f870365e785982e1f101e93b906",
    ),
    (
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    ),
    (
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "9965507d1a55bcc2695c58ba16fb37d819b0a4dc",
    ),
    (
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "976ea74026e726554db657fa54763abd0c3a0aa9",
    ),
    (
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "14dc79964da2c08b23698b3d3cc7ca32193d9955",
    ),
    (
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
        "23618e81e3f5cdf7f54c3d65f7fbc0abf5b21e8f",
    ),
    (
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
        "a0ee7a142d267c1f36714e4a8f75612f20a79720",
    ),
];

/// One development account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevAccount {
    pub index: usize,
    pub address: Address,
    /// "0x" and 64 hex digits, as wallets import it.
    pub private_key: String,
    #[serde(with = "ordo_types::amount::decimal")]
    pub balance: Amount,
}

/// The ten accounts, in mnemonic order.
pub fn dev_accounts() -> Vec<DevAccount> {
    ACCOUNTS
        .iter()
        .enumerate()
        .map(|(index, (secret, _))| {
            let key = key_of(secret);
            DevAccount {
                index,
                address: key.address(),
                private_key: format!("0x{secret}"),
                balance: DEV_ACCOUNT_BALANCE,
            }
        })
        .collect()
}

/// The ten accounts as genesis entries, each with [`DEV_ACCOUNT_BALANCE`].
pub fn genesis_accounts() -> Vec<ordo_node::genesis::GenesisAccount> {
    dev_accounts()
        .into_iter()
        .map(|a| ordo_node::genesis::GenesisAccount {
            address: a.address,
            balance: a.balance,
        })
        .collect()
}

fn key_of(secret: &str) -> EthKey {
    let bytes: [u8; 32] = hex::decode(secret)
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a listed key is 32 bytes of hex");
    EthKey::from_secret(bytes).expect("a listed key is a valid scalar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_signs_for_its_listed_address() {
        for (secret, address) in ACCOUNTS {
            let derived = key_of(secret).address().to_string();
            assert_eq!(derived.to_lowercase(), format!("0x{address}"));
        }
        assert_eq!(dev_accounts().len(), 10);
    }
}
