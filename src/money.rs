//! Money as integer cents: parsing MTurk's `CurrencyAmount`, formatting `$12.34`. (Fees are a
//! platform's policy: `platform::bonus_fee`.)
//!
//! Nothing here ever touches floating point: amounts are parsed digit by digit.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

/// An amount of US money in whole cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub u64);

/// Why a text is not an amount MTurk accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("is empty")]
    Empty,
    #[error("has a currency sign; write 1.50, not $1.50")]
    CurrencySign,
    #[error("has a comma; write 1.50 (a dot for cents, no thousands separator)")]
    Comma,
    #[error("is negative; bonuses are positive amounts such as 0.50")]
    Negative,
    #[error("has more than 2 decimals; MTurk accepts whole cents such as 1.23")]
    TooManyDecimals,
    #[error("is not a plain decimal number; MTurk accepts amounts such as 1, 1.5 or 1.25")]
    NotANumber,
    #[error("is zero; the smallest bonus MTurk pays is 0.01")]
    Zero,
    #[error("is too large")]
    TooLarge,
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Parses a bonus amount as a researcher writes it: `^[0-9]+(\.[0-9]{1,2})?$`, at least 0.01.
    ///
    /// Surrounding whitespace is ignored. A trailing dot (`1.`) is refused even though MTurk's
    /// pattern allows it: it is far more often a truncated paste than an intent.
    ///
    /// ```
    /// use payout::money::{AmountError, Cents};
    /// assert_eq!(Cents::parse_bonus("1.5"), Ok(Cents(150)));
    /// assert_eq!(Cents::parse_bonus("$1.50"), Err(AmountError::CurrencySign));
    /// assert_eq!(Cents(150).to_string(), "$1.50");
    /// ```
    pub fn parse_bonus(text: &str) -> Result<Cents, AmountError> {
        let cents = Self::parse_amount(text)?;
        if cents == Cents::ZERO {
            return Err(AmountError::Zero);
        }
        Ok(cents)
    }

    /// Parses a non-negative amount (zero allowed), as MTurk's balance fields carry it.
    pub fn parse_amount(text: &str) -> Result<Cents, AmountError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.contains(['$', '€', '£']) || text.to_ascii_uppercase().contains("USD") {
            return Err(AmountError::CurrencySign);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        if text.contains(',') {
            return Err(AmountError::Comma);
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotANumber);
        }
        let frac_cents = match frac {
            None => 0,
            Some(f) if !f.bytes().all(|b| b.is_ascii_digit()) || f.is_empty() => {
                return Err(AmountError::NotANumber);
            }
            Some(f) if f.len() > 2 => return Err(AmountError::TooManyDecimals),
            Some(f) if f.len() == 1 => u64::from(f.as_bytes()[0] - b'0') * 10,
            Some(f) => u64::from(f.as_bytes()[0] - b'0') * 10 + u64::from(f.as_bytes()[1] - b'0'),
        };
        // Strip leading zeros so that the length check below means magnitude.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 12 {
            return Err(AmountError::TooLarge);
        }
        let dollars: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::TooLarge)?
        };
        Ok(Cents(dollars * 100 + frac_cents))
    }

    /// The text MTurk's `CurrencyAmount` expects: `12.34`, no sign, always two decimals.
    pub fn to_api_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dollars = self.0 / 100;
        let mut grouped = String::new();
        let digits = dollars.to_string();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "${}.{:02}", grouped, self.0 % 100)
    }
}

impl Add for Cents {
    type Output = Cents;
    fn add(self, rhs: Cents) -> Cents {
        Cents(self.0 + rhs.0)
    }
}

impl AddAssign for Cents {
    fn add_assign(&mut self, rhs: Cents) {
        self.0 += rhs.0;
    }
}

impl Sub for Cents {
    type Output = Cents;
    fn sub(self, rhs: Cents) -> Cents {
        Cents(self.0 - rhs.0)
    }
}

/// Serialized as integer cents, so that JSON consumers never see a float.
impl serde::Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_mturk_accepts() {
        assert_eq!(Cents::parse_bonus("1"), Ok(Cents(100)));
        assert_eq!(Cents::parse_bonus("1.5"), Ok(Cents(150)));
        assert_eq!(Cents::parse_bonus("0.01"), Ok(Cents(1)));
        assert_eq!(Cents::parse_bonus(" 12.34 "), Ok(Cents(1234)));
        assert_eq!(Cents::parse_bonus("007.10"), Ok(Cents(710)));
    }

    #[test]
    fn refuses_what_mturk_refuses_with_the_reason() {
        assert_eq!(Cents::parse_bonus("$1.00"), Err(AmountError::CurrencySign));
        assert_eq!(Cents::parse_bonus("1,50"), Err(AmountError::Comma));
        assert_eq!(
            Cents::parse_bonus("1.234"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(Cents::parse_bonus("-1"), Err(AmountError::Negative));
        assert_eq!(Cents::parse_bonus("0"), Err(AmountError::Zero));
        assert_eq!(Cents::parse_bonus("0.00"), Err(AmountError::Zero));
        assert_eq!(Cents::parse_bonus("1e3"), Err(AmountError::NotANumber));
        assert_eq!(Cents::parse_bonus(""), Err(AmountError::Empty));
        assert_eq!(Cents::parse_bonus("1."), Err(AmountError::NotANumber));
        assert_eq!(Cents::parse_bonus(".5"), Err(AmountError::NotANumber));
        assert_eq!(Cents::parse_bonus("1 000"), Err(AmountError::NotANumber));
        assert_eq!(
            Cents::parse_bonus("9999999999999"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn displays_dollars_with_grouping() {
        assert_eq!(Cents(5).to_string(), "$0.05");
        assert_eq!(Cents(123456789).to_string(), "$1,234,567.89");
        assert_eq!(Cents(100000).to_string(), "$1,000.00");
        assert_eq!(Cents(1234).to_api_string(), "12.34");
    }

    proptest! {
        #[test]
        fn api_string_round_trips(c in 1u64..100_000_000_000) {
            prop_assert_eq!(Cents::parse_bonus(&Cents(c).to_api_string()), Ok(Cents(c)));
        }

    }
}
