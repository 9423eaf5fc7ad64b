//! Money: decimal numbers on the wire (`10.5`), integer cents inside and at Stripe,
//! so no float rounding ever reaches a stored amount.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Highest price accepted: 999,999.99 (Stripe's charge limit is far above it).
pub const MAX_CENTS: u64 = 99_999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub u64);

/// Why a price was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    NotPositive,
    TooPrecise,
    TooLarge,
}

impl Cents {
    /// A price from a request field: a JSON number or a numeric string (`"10.00"`),
    /// strictly positive, at most 2 decimals.
    pub fn parse_price(value: Option<&Value>) -> Result<Cents, PriceError> {
        match Self::from_decimal(value)? {
            Cents(0) => Err(PriceError::NotPositive),
            cents => Ok(cents),
        }
    }

    /// Any amount from zero up, as a number or a numeric string.
    fn from_decimal(value: Option<&Value>) -> Result<Cents, PriceError> {
        let number = match value {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or(PriceError::NotPositive)?;
        let cents = (number * 100.0).round();
        if (number * 100.0 - cents).abs() > 1e-6 {
            return Err(PriceError::TooPrecise);
        }
        if cents > MAX_CENTS as f64 {
            return Err(PriceError::TooLarge);
        }
        Ok(Cents(cents as u64))
    }

    /// The decimal value, e.g. 1050 → 10.5.
    pub fn as_decimal(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl Serialize for Cents {
    /// Whole amounts as integers (`10`), others as decimals (`10.5`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            serializer.serialize_u64(self.0 / 100)
        } else {
            serializer.serialize_f64(self.as_decimal())
        }
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Cents::from_decimal(Some(&value))
            .map_err(|e| serde::de::Error::custom(format!("invalid amount {value}: {e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_numbers_and_numeric_strings() {
        assert_eq!(Cents::parse_price(Some(&json!(10))), Ok(Cents(1000)));
        assert_eq!(Cents::parse_price(Some(&json!("10.00"))), Ok(Cents(1000)));
        assert_eq!(Cents::parse_price(Some(&json!(0.29))), Ok(Cents(29)));
        assert_eq!(Cents::parse_price(Some(&json!(19.99))), Ok(Cents(1999)));
    }

    #[test]
    fn refuses_bad_prices() {
        for bad in [json!(0), json!(-10), json!("abc"), json!(null), json!(true), json!([1]), json!("")] {
            assert_eq!(Cents::parse_price(Some(&bad)), Err(PriceError::NotPositive), "{bad}");
        }
        assert_eq!(Cents::parse_price(None), Err(PriceError::NotPositive));
        assert_eq!(Cents::parse_price(Some(&json!(10.555))), Err(PriceError::TooPrecise));
        assert_eq!(Cents::parse_price(Some(&json!(1_000_000))), Err(PriceError::TooLarge));
    }

    #[test]
    fn serialises_as_a_decimal_number() {
        assert_eq!(serde_json::to_string(&Cents(1000)).unwrap(), "10");
        assert_eq!(serde_json::to_string(&Cents(1050)).unwrap(), "10.5");
        assert_eq!(serde_json::to_string(&Cents(1999)).unwrap(), "19.99");
        assert_eq!(serde_json::from_str::<Cents>("19.99").unwrap(), Cents(1999));
        assert_eq!(serde_json::from_str::<Cents>("0").unwrap(), Cents(0));
        assert!(serde_json::from_str::<Cents>("-1").is_err());
    }
}
