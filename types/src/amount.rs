//! Amounts of the native coin.
//!
//! An [`Amount`] is 128 bits wide: wide enough for Ethereum's 18-decimal denominations (a
//! billion coins of 10^18 base units each is about 2^90) while the EVM's 256-bit balances
//! never truncate, because genesis bounds the total supply by `Amount::MAX` and no
//! transaction creates coin.
//!
//! In JSON an amount is a decimal string (`"1000000000000000000000"`): JavaScript and many
//! JSON libraries read numbers as 64-bit floats, which would silently round any amount above
//! 2^53. Reading accepts a string, or a plain JSON integer up to 2^64 - 1 (beyond that the
//! JSON parser has already rounded it, so it is refused), so hand-written genesis files and
//! requests may use either for everyday amounts.

/// A quantity of the native coin, in its smallest unit.
pub type Amount = u128;

/// Serde helpers for an [`Amount`] field: `#[serde(with = "ordo_types::amount::decimal")]`.
pub mod decimal {
    use std::fmt;

    use super::Amount;

    pub fn serialize<S: serde::Serializer>(amount: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(amount)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        d.deserialize_any(AmountVisitor)
    }

    struct AmountVisitor;

    impl serde::de::Visitor<'_> for AmountVisitor {
        type Value = Amount;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(
                f,
                "an amount: a non-negative integer below 2^128, as a decimal string or number"
            )
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
            Ok(Amount::from(v))
        }

        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Amount, E> {
            Ok(v)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
            Amount::try_from(v).map_err(|_| E::custom(format!("a negative amount: {v}")))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
            // serde_json reads integers above 2^64 as floats, already rounded.
            Err(E::custom(format!(
                "amount {v} is not an exact integer: write amounts as decimal strings"
            )))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
            parse(v).map_err(E::custom)
        }
    }

    /// Parses a decimal amount: digits only (no sign, no exponent, no fraction).
    pub fn parse(text: &str) -> Result<Amount, String> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a decimal amount: {text:?}"));
        }
        text.parse::<Amount>()
            .map_err(|_| format!("amount {text} is not below 2^128"))
    }
}

/// Serde helpers for an `Option<Amount>` field, as [`decimal`] or `null`.
pub mod decimal_option {
    use super::Amount;

    pub fn serialize<S: serde::Serializer>(
        amount: &Option<Amount>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match amount {
            Some(a) => s.collect_str(a),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "decimal")]
        amount: Amount,
    }

    #[test]
    fn json_amounts_are_decimal_strings_and_read_back_exactly() {
        for amount in [0, 1, u64::MAX as Amount + 1, 10u128.pow(27), Amount::MAX] {
            let text = serde_json::to_string(&Holder { amount }).unwrap();
            assert_eq!(text, format!("{{\"amount\":\"{amount}\"}}"));
            assert_eq!(
                serde_json::from_str::<Holder>(&text).unwrap().amount,
                amount
            );
        }
    }

    #[test]
    fn json_numbers_are_read_too_but_not_fractions_signs_or_overflow() {
        let read = |json: &str| serde_json::from_str::<Holder>(json).map(|h| h.amount);
        assert_eq!(read(r#"{"amount":42}"#).unwrap(), 42);
        assert_eq!(
            read(r#"{"amount":18446744073709551615}"#).unwrap(),
            u64::MAX as Amount
        );
        // Above 2^64 a JSON number has already been rounded by the parser: refused.
        let big = read(r#"{"amount":100000000000000000000}"#).unwrap_err();
        assert!(big.to_string().contains("decimal strings"), "{big}");
        for bad in [
            r#"{"amount":-1}"#,
            r#"{"amount":1.5}"#,
            r#"{"amount":"-1"}"#,
            r#"{"amount":"1e3"}"#,
            r#"{"amount":""}"#,
            r#"{"amount":"340282366920938463463374607431768211456"}"#,
        ] {
            assert!(read(bad).is_err(), "{bad} was read");
        }
    }
}
