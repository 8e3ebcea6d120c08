//! Bodies for the text formats: files an operator is handed (config, genesis, key files)
//! and the RPC's JSON transactions.

use ordo_types::{keyfile, SignedTransaction};

use crate::rpc::MAX_JSON_TX_BYTES;
use crate::{GenesisFile, NodeConfig};

/// Files are read with `read_to_string`, which refuses bytes that are not UTF-8.
fn utf8(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// One JSON transaction (`POST /v1/transactions`, application/json).
pub fn transaction_json(data: &[u8]) -> bool {
    if data.len() > MAX_JSON_TX_BYTES {
        return false;
    }
    let Ok(tx) = serde_json::from_slice::<SignedTransaction>(data) else {
        return false;
    };
    let json = serde_json::to_vec(&tx).expect("a transaction serialises to JSON");
    let again = serde_json::from_slice::<SignedTransaction>(&json);
    assert!(
        again.as_ref().ok() == Some(&tx),
        "a JSON transaction does not survive its own JSON: {again:?}"
    );
    assert!(
        SignedTransaction::decode(&tx.encode()).ok() == Some(tx),
        "a JSON transaction does not survive the canonical encoding"
    );
    true
}

/// A validator's TOML config, as `ordo run` loads it.
pub fn config(data: &[u8]) -> bool {
    let Some(text) = utf8(data) else {
        return false;
    };
    let Ok(config) = NodeConfig::parse(text) else {
        return false;
    };
    // `ordo testnet` writes configs with `to_toml` and reads them back.
    let again = NodeConfig::parse(&config.to_toml());
    assert!(
        again.as_ref() == Ok(&config),
        "a config does not survive its own TOML: {again:?}"
    );
    true
}

/// A genesis file in JSON (`genesis.json`).
pub fn genesis_json(data: &[u8]) -> bool {
    let Some(genesis) = utf8(data).and_then(|t| GenesisFile::parse_json(t).ok()) else {
        return false;
    };
    genesis_checks(&genesis);
    true
}

/// A genesis file in TOML (any other extension).
pub fn genesis_toml(data: &[u8]) -> bool {
    let Some(genesis) = utf8(data).and_then(|t| GenesisFile::parse_toml(t).ok()) else {
        return false;
    };
    genesis_checks(&genesis);
    true
}

/// A parsed genesis promises that the committees and the initial state built from it
/// cannot fail (see `genesis`), and the node writes it back out as JSON.
fn genesis_checks(genesis: &GenesisFile) {
    if let Err(e) = genesis.consensus_committee() {
        panic!("an accepted genesis has no consensus committee: {e}");
    }
    if let Err(e) = genesis.network_committee(&[]) {
        panic!("an accepted genesis has no network committee: {e}");
    }
    let _ = (genesis.state_spec(), genesis.chain_config());
    let again = GenesisFile::parse_json(&genesis.to_json());
    assert!(
        again.as_ref() == Ok(genesis),
        "a genesis does not survive its own JSON: {again:?}"
    );
}

/// A key file's text.
pub fn keyfile(data: &[u8]) -> bool {
    let Some(key) = utf8(data).and_then(|t| keyfile::parse(t).ok()) else {
        return false;
    };
    let again = keyfile::parse(&keyfile::to_text(&key)).map(|k| k.public());
    assert!(
        again == Ok(key.public()),
        "a key file does not survive its own text: {again:?}"
    );
    true
}
