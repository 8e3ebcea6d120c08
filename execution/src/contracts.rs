//! The example contracts compiled in `contracts/build` (their JSON is built into the
//! binary, so that nothing at run time needs the Solidity compiler or the repository), and
//! the little of the ABI that generated workloads need: selectors and static words.
//!
//! Clients encode and decode through the alloy ABI crates with each artifact's ABI; the
//! static encoder here only serves generators of benchmark and test blocks, whose calls take
//! `address` and `uint256` arguments alone.

use ordo_types::Address;
use revm::primitives::{keccak256, U256};

/// The examples by contract name, with their build output.
const ARTIFACTS: &[(&str, &str)] = &[
    ("Token", include_str!("../../contracts/build/Token.json")),
    ("Pair", include_str!("../../contracts/build/Pair.json")),
    (
        "Collection",
        include_str!("../../contracts/build/Collection.json"),
    ),
    ("Dao", include_str!("../../contracts/build/Dao.json")),
    (
        "Counter",
        include_str!("../../contracts/build/Counter.json"),
    ),
    (
        "CounterFactory",
        include_str!("../../contracts/build/CounterFactory.json"),
    ),
    ("Looper", include_str!("../../contracts/build/Looper.json")),
    (
        "MemoryHog",
        include_str!("../../contracts/build/MemoryHog.json"),
    ),
    (
        "Recurser",
        include_str!("../../contracts/build/Recurser.json"),
    ),
    (
        "SelfDestructor",
        include_str!("../../contracts/build/SelfDestructor.json"),
    ),
    (
        "Reverter",
        include_str!("../../contracts/build/Reverter.json"),
    ),
    (
        "Thrower",
        include_str!("../../contracts/build/Thrower.json"),
    ),
    (
        "Reenterer",
        include_str!("../../contracts/build/Reenterer.json"),
    ),
];

/// One compiled contract.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    /// The ABI as the compiler wrote it (a JSON array).
    pub abi: serde_json::Value,
    /// Init code, without constructor arguments.
    pub bytecode: Vec<u8>,
    /// The runtime code a deployment stores.
    pub deployed_bytecode: Vec<u8>,
}

/// The names of the built-in examples.
pub fn names() -> impl Iterator<Item = &'static str> {
    ARTIFACTS.iter().map(|(name, _)| *name)
}

/// The built-in example `name` (case-insensitive), if there is one.
pub fn artifact(name: &str) -> Option<Artifact> {
    let (_, text) = ARTIFACTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    parse_artifact(text).ok()
}

/// Reads a build output file's JSON (`abi`, `bytecode`, `deployedBytecode`; the name from
/// `contract`, if present).
pub fn parse_artifact(text: &str) -> Result<Artifact, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let bytes = |field: &str| -> Result<Vec<u8>, String> {
        let text = json[field]
            .as_str()
            .ok_or_else(|| format!("no \"{field}\" string"))?;
        let text = text.strip_prefix("0x").unwrap_or(text);
        hex::decode(text).map_err(|e| format!("\"{field}\" is not hex: {e}"))
    };
    Ok(Artifact {
        name: json["contract"].as_str().unwrap_or("contract").to_string(),
        abi: json["abi"].clone(),
        bytecode: bytes("bytecode")?,
        deployed_bytecode: bytes("deployedBytecode").unwrap_or_default(),
    })
}

/// The address the EVM's `CREATE` gives the contract that `sender`'s transaction with
/// `nonce` deploys.
pub fn create_address(sender: &Address, nonce: u64) -> Address {
    let created = revm::primitives::Address::from(sender.0).create(nonce);
    let mut out = [0; ordo_types::ADDRESS_BYTES];
    out.copy_from_slice(created.as_slice());
    Address(out)
}

/// A static ABI argument.
#[derive(Debug, Clone, Copy)]
pub enum Word {
    Uint(u128),
    Address(Address),
}

impl Word {
    fn bytes(&self) -> [u8; 32] {
        match self {
            Word::Uint(v) => U256::from(*v).to_be_bytes(),
            Word::Address(a) => {
                let mut w = [0; 32];
                w[12..].copy_from_slice(&a.0);
                w
            }
        }
    }
}

/// Call data: the signature's selector and the static arguments, one word each.
pub fn call_data(signature: &str, args: &[Word]) -> Vec<u8> {
    let mut data = keccak256(signature.as_bytes())[..4].to_vec();
    for arg in args {
        data.extend_from_slice(&arg.bytes());
    }
    data
}

/// ABI words of static arguments, without a selector (for encoding by hand the head and
/// tail of a dynamic array).
pub fn words(args: &[Word]) -> Vec<u8> {
    args.iter().flat_map(|a| a.bytes()).collect()
}

/// `mintBatch(address[],uint256)` call data of the `Token` example.
pub fn mint_batch(to: &[Address], amount: u128) -> Vec<u8> {
    let mut data = call_data(
        "mintBatch(address[],uint256)",
        &[Word::Uint(0x40), Word::Uint(amount)],
    );
    data.extend(words(&[Word::Uint(to.len() as u128)]));
    data.extend(words(
        &to.iter().map(|a| Word::Address(*a)).collect::<Vec<_>>(),
    ));
    data
}

/// `approve(spender, 2^256 - 1)`: an allowance the `Token` example never lowers.
pub fn approve_all(spender: Address) -> Vec<u8> {
    let mut data = call_data("approve(address,uint256)", &[Word::Address(spender)]);
    data.extend([0xff; 32]);
    data
}

/// `addLiquidity(amount0, amount1)` of the `Pair` example.
pub fn add_liquidity(amount0: u128, amount1: u128) -> Vec<u8> {
    call_data(
        "addLiquidity(uint256,uint256)",
        &[Word::Uint(amount0), Word::Uint(amount1)],
    )
}

/// The `Pair` example's init code over `token0` and `token1`.
pub fn pair_init_code(token0: Address, token1: Address) -> Vec<u8> {
    let pair = artifact("Pair").expect("the Pair example is built in");
    with_constructor(
        &pair.bytecode,
        &[Word::Address(token0), Word::Address(token1)],
    )
}

/// The `Collection` example's init code, with an empty name and symbol.
pub fn collection_init_code() -> Vec<u8> {
    let collection = artifact("Collection").expect("the Collection example is built in");
    // (string, string): two offsets, then two empty strings.
    with_constructor(
        &collection.bytecode,
        &[
            Word::Uint(0x40),
            Word::Uint(0x60),
            Word::Uint(0),
            Word::Uint(0),
        ],
    )
}

/// Init code with constructor arguments appended (static arguments only).
pub fn with_constructor(bytecode: &[u8], args: &[Word]) -> Vec<u8> {
    let mut code = bytecode.to_vec();
    for arg in args {
        code.extend_from_slice(&arg.bytes());
    }
    code
}

/// The `Token` example's init code with `(name, symbol, initial_supply)`; short strings only.
pub fn token_init_code(name: &str, symbol: &str, initial_supply: u128) -> Vec<u8> {
    let artifact = artifact("Token").expect("the Token example is built in");
    let mut code = artifact.bytecode;
    let string = |s: &str| {
        let mut out = U256::from(s.len()).to_be_bytes::<32>().to_vec();
        let mut padded = s.as_bytes().to_vec();
        padded.resize(s.len().div_ceil(32).max(1) * 32, 0);
        out.extend(padded);
        out
    };
    let (name, symbol) = (string(name), string(symbol));
    code.extend_from_slice(&U256::from(0x60).to_be_bytes::<32>());
    code.extend_from_slice(&U256::from(0x60 + name.len()).to_be_bytes::<32>());
    code.extend_from_slice(&U256::from(initial_supply).to_be_bytes::<32>());
    code.extend(name);
    code.extend(symbol);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses_and_selectors_match_the_standard() {
        for name in names() {
            let a = artifact(name).unwrap();
            assert!(
                !a.bytecode.is_empty() && !a.deployed_bytecode.is_empty(),
                "{name}"
            );
            assert!(a.abi.is_array(), "{name}");
        }
        // ERC-20 transfer's well-known selector.
        assert_eq!(
            call_data("transfer(address,uint256)", &[])[..],
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert!(artifact("nope").is_none());
    }
}
