//! Money is an integer count of minor units (cents, öre, yen) with an ISO 4217 currency.
//!
//! Architecture invariant: no float ever holds an amount. Decimal text from a platform
//! ("30.99", or the JSON number `30.99` read as its literal text) converts exactly, or not at all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal amount")]
    NotDecimal(String),
    #[error("{amount:?} has more decimals than {currency} allows ({exponent})")]
    TooPrecise { amount: String, currency: Currency, exponent: u32 },
    #[error("amount out of range")]
    Overflow,
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 alphabetic code: three uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Currencies whose minor unit is not the cent (ISO 4217 exponents other than 2).
const EXPONENTS: &[(&str, u32)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

impl Currency {
    pub fn code(&self) -> &str {
        // Constructed only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point in this currency's major unit.
    pub fn exponent(&self) -> u32 {
        EXPONENTS.iter().find(|(code, _)| *code == self.code()).map_or(2, |(_, e)| *e)
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(Error::UnknownCurrency(s.to_string()))
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Exact conversion of decimal text in major units ("30", "30.5", "-1.25", "1e2" is refused).
    pub fn from_major_str(text: &str, currency: Currency) -> Result<Self, Error> {
        let exponent = currency.exponent();
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !is_digits(whole)
            || !is_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(Error::NotDecimal(text.to_string()));
        }
        // Trailing zeros beyond the exponent are harmless ("30.500" USD); other digits are not.
        let significant = fraction.trim_end_matches('0');
        if significant.len() > exponent as usize {
            return Err(Error::TooPrecise { amount: text.to_string(), currency, exponent });
        }
        let mut minor: i64 = whole.parse::<i64>().map_err(|_| Error::Overflow)?;
        for _ in 0..exponent {
            minor = minor.checked_mul(10).ok_or(Error::Overflow)?;
        }
        let mut fraction_minor: i64 = 0;
        for position in 0..exponent as usize {
            let digit = significant.as_bytes().get(position).map_or(0, |b| i64::from(b - b'0'));
            fraction_minor = fraction_minor * 10 + digit;
        }
        minor = minor.checked_add(fraction_minor).ok_or(Error::Overflow)?;
        Ok(Self::new(if negative { -minor } else { minor }, currency))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount_minor.checked_add(other.amount_minor).ok_or(Error::Overflow)?, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount_minor.checked_sub(other.amount_minor).ok_or(Error::Overflow)?, self.currency))
    }

    pub fn checked_mul(self, quantity: i64) -> Result<Money, Error> {
        Ok(Money::new(self.amount_minor.checked_mul(quantity).ok_or(Error::Overflow)?, self.currency))
    }

    fn same_currency(&self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    /// `30.99 USD`, `1500 JPY`: for people and logs, never parsed back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(exponent);
        write!(f, "{sign}{}.{:0width$} {}", abs / scale, abs % scale, self.currency, width = exponent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        code.parse().expect("currency")
    }

    #[test]
    fn converts_decimal_text_exactly() {
        let table = [
            ("30", "USD", Ok(3000)),
            ("30.99", "USD", Ok(3099)),
            ("30.5", "EUR", Ok(3050)),
            ("0.01", "USD", Ok(1)),
            ("30.500", "USD", Ok(3050)),
            ("-1.25", "USD", Ok(-125)),
            ("1500", "JPY", Ok(1500)),
            ("1.234", "KWD", Ok(1234)),
            ("19.99", "BRL", Ok(1999)),
            // 0.1 + 0.2 style float traps never arise: the text is the value.
            ("1.10", "USD", Ok(110)),
        ];
        for (text, code, expected) in table {
            let got = Money::from_major_str(text, cur(code)).map(|m| m.amount_minor);
            assert_eq!(got, expected, "{text} {code}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_exact() {
        assert!(matches!(Money::from_major_str("30.999", cur("USD")), Err(Error::TooPrecise { .. })));
        assert!(matches!(Money::from_major_str("1500.5", cur("JPY")), Err(Error::TooPrecise { .. })));
        for bad in ["", "abc", "1e2", "1.", ".5", "1.2.3", "+1", "1,5", "NaN"] {
            assert!(Money::from_major_str(bad, cur("USD")).is_err(), "{bad:?}");
        }
        assert_eq!(Money::from_major_str("99999999999999999999", cur("USD")), Err(Error::Overflow));
    }

    #[test]
    fn currency_codes_are_validated() {
        assert_eq!(cur("usd").code(), "USD");
        for bad in ["US", "USDT", "U$D", ""] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_checks_currency_and_overflow() {
        let usd = Money::new(100, cur("USD"));
        assert_eq!(usd.checked_add(Money::new(50, cur("USD"))).expect("sum").amount_minor, 150);
        assert!(usd.checked_add(Money::new(50, cur("EUR"))).is_err());
        assert_eq!(Money::new(i64::MAX, cur("USD")).checked_mul(2), Err(Error::Overflow));
    }

    #[test]
    fn displays_for_people() {
        assert_eq!(Money::new(3099, cur("USD")).to_string(), "30.99 USD");
        assert_eq!(Money::new(-5, cur("EUR")).to_string(), "-0.05 EUR");
        assert_eq!(Money::new(1500, cur("JPY")).to_string(), "1500 JPY");
        assert_eq!(Money::new(1234, cur("KWD")).to_string(), "1.234 KWD");
    }

    #[test]
    fn serialises_as_minor_units_and_code() {
        let json = serde_json::to_string(&Money::new(3099, cur("USD"))).expect("json");
        assert_eq!(json, r#"{"amount_minor":3099,"currency":"USD"}"#);
    }
}
