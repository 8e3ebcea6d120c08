//! Property tests of the canonical encoding and of signature checking.

use ordo_types::ethereum::{eip1559, TxLegacy};
use ordo_types::{
    Address, Error, EthKey, KeyPair, Payload, PublicKey, SignedTransaction, SwapDirection,
    Transaction, MAX_TRANSACTION_BYTES,
};
use proptest::prelude::*;

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (any::<[u8; 20]>(), any::<u128>()).prop_map(|(to, amount)| Payload::Transfer {
            to: Address(to),
            amount
        }),
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
            |(pool, amount_in, min_out, ab)| Payload::Swap {
                pool,
                amount_in,
                min_out,
                direction: if ab {
                    SwapDirection::AToB
                } else {
                    SwapDirection::BToA
                },
            }
        ),
        any::<u32>().prop_map(|collection| Payload::Mint { collection }),
        any::<u32>().prop_map(|iterations| Payload::Compute { iterations }),
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<u128>(),
            any::<u64>()
        )
            .prop_map(|(init_code, value, gas_limit)| Payload::Deploy {
                init_code,
                value,
                gas_limit
            }),
        (
            any::<[u8; 20]>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<u128>(),
            any::<u64>()
        )
            .prop_map(|(to, input, value, gas_limit)| Payload::Call {
                to: Address(to),
                input,
                value,
                gas_limit
            }),
    ]
}

/// A transaction signed by a key drawn from `seed`.
fn signed_tx() -> impl Strategy<Value = SignedTransaction> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        payload(),
    )
        .prop_map(|(seed, chain_id, nonce, expiry, payload)| {
            let key = KeyPair::from_seed(seed);
            Transaction {
                chain_id,
                sender: key.public(),
                nonce,
                expiry,
                payload,
            }
            .sign(&key)
        })
}

/// An Ethereum transaction (EIP-1559 or legacy with a chain id) signed by a key drawn from
/// `seed`.
fn eth_tx() -> impl Strategy<Value = SignedTransaction> {
    (
        any::<[u8; 8]>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any::<[u8; 20]>()),
        any::<u128>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(seed, chain_id, nonce, to, value, input, gas, fee_cap, legacy)| {
                let key = EthKey::from_seed(&seed);
                let to = to.map(Address);
                let tx = if legacy {
                    key.sign(TxLegacy {
                        chain_id: Some(chain_id),
                        nonce,
                        gas_price: u128::from(fee_cap),
                        gas_limit: gas,
                        to: to.map_or(alloy_primitives::TxKind::Create, |a| {
                            alloy_primitives::TxKind::Call(a.0.into())
                        }),
                        value: alloy_primitives::U256::from(value),
                        input: input.into(),
                    })
                } else {
                    key.sign(eip1559(
                        chain_id,
                        nonce,
                        to,
                        value,
                        input,
                        gas,
                        u128::from(fee_cap),
                    ))
                };
                SignedTransaction::from(tx)
            },
        )
}

/// Either kind of transaction.
fn any_tx() -> impl Strategy<Value = SignedTransaction> {
    prop_oneof![signed_tx(), eth_tx()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trips(tx in any_tx()) {
        let bytes = tx.encode();
        prop_assert!(bytes.len() <= MAX_TRANSACTION_BYTES);
        let back = SignedTransaction::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &tx);
        // Canonical: re-encoding gives the same bytes.
        prop_assert_eq!(back.encode(), bytes);
        prop_assert!(back.verify().is_ok());
    }

    /// JSON (what the RPC shows and the CLI reads) keeps every field exactly, amounts of
    /// up to 128 bits included.
    #[test]
    fn json_round_trips(tx in any_tx()) {
        let text = serde_json::to_string(&tx).unwrap();
        let back: SignedTransaction = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, tx);
    }

    /// Every bit of the encoding is covered by the signature: flipping any one of them
    /// either makes the bytes undecodable or makes the signature fail (Ordo), or makes the
    /// signature fail or name another sender (Ethereum: recovery always finds some key).
    #[test]
    fn flipping_any_bit_breaks_the_signature(tx in any_tx(), bit in any::<prop::sample::Index>()) {
        let mut bytes = tx.encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(mutated) = SignedTransaction::decode(&bytes) {
            prop_assert_ne!(&mutated, &tx);
            match (&mutated, &tx) {
                (SignedTransaction::Ordo(_), SignedTransaction::Ordo(_)) => {
                    prop_assert!(mutated.verify().is_err(), "bit {} flipped yet still verifies", bit);
                    prop_assert!(SignedTransaction::verify_many(&[mutated]).is_err());
                }
                _ => prop_assert!(
                    mutated.verify().is_err() || mutated.sender_address() != tx.sender_address(),
                    "bit {} flipped, and the same sender still signed it", bit
                ),
            }
        }
    }

    #[test]
    fn a_batch_names_its_one_bad_signature(
        txs in prop::collection::vec(signed_tx(), 1..48),
        eth in prop::collection::vec(eth_tx(), 0..8),
        bad in any::<prop::sample::Index>(),
        byte in 0usize..64,
    ) {
        // Ethereum transactions mixed in: the bad index is still the whole batch's.
        let mut txs = txs;
        for (i, e) in eth.into_iter().enumerate() {
            let at = (i * 7) % (txs.len() + 1);
            txs.insert(at, e);
        }
        prop_assert!(SignedTransaction::verify_many(&txs).is_ok());
        let ordo: Vec<usize> = (0..txs.len()).filter(|&i| txs[i].as_ordo().is_some()).collect();
        let bad = ordo[bad.index(ordo.len())];
        txs[bad].as_ordo_mut().unwrap().signature.0[byte] ^= 0x01;
        match SignedTransaction::verify_many(&txs) {
            Err(Error::BadSignatures { bad: found, total }) => {
                prop_assert_eq!(found, vec![bad]);
                prop_assert_eq!(total, txs.len());
            }
            other => prop_assert!(false, "expected index {} named, got {:?}", bad, other),
        }
    }

    #[test]
    fn truncated_input_is_a_typed_error(tx in any_tx(), cut in any::<prop::sample::Index>()) {
        let bytes = tx.encode();
        let cut = cut.index(bytes.len());
        let result = SignedTransaction::decode(&bytes[..cut]);
        prop_assert!(matches!(result, Err(Error::Truncated { .. })), "{:?}", result);
    }

    #[test]
    fn trailing_bytes_are_a_typed_error(
        tx in any_tx(),
        extra in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut bytes = tx.encode();
        bytes.extend_from_slice(&extra);
        let result = SignedTransaction::decode(&bytes);
        prop_assert!(
            matches!(result, Err(Error::TrailingBytes { extra: n }) if n == extra.len()),
            "{:?}", result
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding(extra in 1usize..4096) {
        let bytes = vec![0u8; MAX_TRANSACTION_BYTES + extra];
        let result = SignedTransaction::decode(&bytes);
        prop_assert!(matches!(result, Err(Error::TooLarge { .. })), "{:?}", result);
    }

    /// Arbitrary bytes never panic the decoder, and whatever decodes is canonical.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(tx) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes);
        }
    }

    /// Arbitrary bytes with a valid prefix reach the payload decoder too.
    #[test]
    fn corrupted_payload_tags_never_panic(tx in signed_tx(), tag in any::<u32>()) {
        let mut bytes = tx.encode();
        // kind (4) + chain id (8) + sender (32) + nonce (8) + expiry (8), then the payload's tag.
        bytes[60..64].copy_from_slice(&tag.to_le_bytes());
        let decoded = SignedTransaction::decode(&bytes);
        if tag >= 4 {
            prop_assert!(matches!(decoded, Err(Error::Malformed(_))), "{:?}", decoded);
        } else if let Ok(decoded) = decoded {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}

#[test]
fn signature_for_another_chain_does_not_verify() {
    let key = KeyPair::from_seed([5; 32]);
    let tx = Transaction {
        chain_id: 1,
        sender: key.public(),
        nonce: 0,
        expiry: 10,
        payload: Payload::Mint { collection: 0 },
    };
    let mut signed = tx.sign(&key);
    signed.as_ordo_mut().unwrap().tx.chain_id = 2;
    assert!(matches!(signed.verify(), Err(Error::BadSignature)));
}

#[test]
fn small_order_key_is_rejected() {
    // The identity point: every "signature" with R = identity, S = 0 satisfies the
    // cofactored equation for it, so it must be refused as a key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let key = PublicKey(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let sig = ordo_types::Signature(sig);
    assert!(matches!(
        key.verify(b"anything", &sig),
        Err(Error::InvalidPublicKey)
    ));
}
