//! Money as integer minor units: parsing MTurk's `CurrencyAmount`, formatting `$12.34`/`£12.34`,
//! and platform amounts with fractions of a minor unit kept exactly. (Fees are a
//! platform's policy: `platform::bonus_fee`.)
//!
//! Nothing here ever touches floating point: amounts are parsed digit by digit.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

/// `1234567` as `1,234,567`.
fn grouped(n: impl fmt::Display) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

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
        write!(f, "${}.{:02}", grouped(self.0 / 100), self.0 % 100)
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

/// The one balance check: what `available` lacks to cover `needed`, or `None` if it covers it.
pub fn shortfall<M>(available: M, needed: M) -> Option<M>
where
    M: Ord + Copy + Sub<Output = M>,
{
    (available < needed).then(|| needed - available)
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

/// A currency payout pays in. MTurk pays in US dollars; a Prolific study pays in its own
/// currency (`GBP` or `USD`), which payout reads from the platform and never assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "GBP")]
    Gbp,
}

impl Currency {
    /// The ISO 4217 code, as the platforms and the journal write it.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Gbp => "GBP",
        }
    }

    pub fn sign(self) -> &'static str {
        match self {
            Currency::Usd => "$",
            Currency::Gbp => "£",
        }
    }

    /// Reads an ISO code (any case); `None` for a currency payout does not pay in.
    pub fn parse(code: &str) -> Option<Currency> {
        match code.trim().to_ascii_uppercase().as_str() {
            "USD" => Some(Currency::Usd),
            "GBP" => Some(Currency::Gbp),
            _ => None,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whole minor units (cents, pence) with their currency: `$1.50`, `£1.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money {
    pub minor: Cents,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: Cents, currency: Currency) -> Money {
        Money { minor, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Cents` prints dollars with grouping; the sign is the only difference.
        let text = self.minor.to_string();
        write!(f, "{}{}", self.currency.sign(), &text[1..])
    }
}

/// An amount in minor units that may carry a fraction of one, exactly as a platform returned
/// it: Prolific answers fees such as `283.34` pence. Kept as a decimal (digits and a scale),
/// never as a float and never rounded; the journal stores its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExactMinor {
    /// The amount times 10^`scale`.
    scaled: i128,
    scale: u8,
}

/// Why a platform's number is not an amount payout can keep exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a plain decimal amount")]
pub struct ExactAmountError(pub String);

impl ExactMinor {
    pub const ZERO: ExactMinor = ExactMinor {
        scaled: 0,
        scale: 0,
    };

    /// Reads a JSON number's text (`850`, `283.34`, `-1.5`, `850.0`); exponents are refused
    /// rather than expanded, so nothing is ever rounded.
    pub fn parse(text: &str) -> Result<ExactMinor, ExactAmountError> {
        let bad = || ExactAmountError(text.chars().take(40).collect());
        let t = text.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac.is_empty())
            || whole.len() + frac.len() > 30
        {
            return Err(bad());
        }
        let frac = frac.trim_end_matches('0');
        let scaled: i128 = format!("{whole}{frac}").parse().map_err(|_| bad())?;
        Ok(ExactMinor {
            scaled: if neg { -scaled } else { scaled },
            scale: frac.len() as u8,
        })
    }

    pub fn from_whole(minor: Cents) -> ExactMinor {
        ExactMinor {
            scaled: i128::from(minor.0),
            scale: 0,
        }
    }

    /// The amount in whole minor units, if it has no fraction.
    pub fn whole(self) -> Option<Cents> {
        (self.scale == 0 && self.scaled >= 0).then_some(Cents(self.scaled as u64))
    }

    fn at_scale(self, scale: u8) -> i128 {
        self.scaled * 10i128.pow(u32::from(scale - self.scale))
    }

    pub fn checked_add(self, other: ExactMinor) -> Option<ExactMinor> {
        let scale = self.scale.max(other.scale);
        let scaled = self.at_scale(scale).checked_add(other.at_scale(scale))?;
        Some(ExactMinor { scaled, scale }.normalised())
    }

    pub fn checked_sub(self, other: ExactMinor) -> Option<ExactMinor> {
        self.checked_add(ExactMinor {
            scaled: other.scaled.checked_neg()?,
            scale: other.scale,
        })
    }

    fn normalised(mut self) -> ExactMinor {
        while self.scale > 0 && self.scaled % 10 == 0 {
            self.scaled /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Shown in major units with the currency's sign and every digit the platform gave:
    /// `283.34` pence is `£2.8334`.
    pub fn display(self, currency: Currency) -> String {
        let scale = u32::from(self.scale) + 2;
        let abs = self.scaled.unsigned_abs();
        let div = 10u128.pow(scale);
        let (major, frac) = (abs / div, abs % div);
        let frac = format!("{frac:0width$}", width = scale as usize);
        let sign = if self.scaled < 0 { "-" } else { "" };
        format!("{sign}{}{}.{frac}", currency.sign(), grouped(major))
    }
}

impl Sub for ExactMinor {
    type Output = ExactMinor;
    fn sub(self, rhs: ExactMinor) -> ExactMinor {
        self.checked_sub(rhs)
            .expect("amounts of money are far from i128's limits")
    }
}

impl PartialOrd for ExactMinor {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExactMinor {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        self.at_scale(scale).cmp(&other.at_scale(scale))
    }
}

/// The text the journal and reports keep: the platform's number, normalised (`283.34`).
impl fmt::Display for ExactMinor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.scaled);
        }
        let div = 10u128.pow(u32::from(self.scale));
        let abs = self.scaled.unsigned_abs();
        let sign = if self.scaled < 0 { "-" } else { "" };
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = self.scale as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A balance that exactly covers the total lacks nothing; a cent less lacks a cent, in
    /// whole cents and in exact minor units alike.
    #[test]
    fn the_shortfall_is_what_the_balance_lacks_and_none_when_it_covers() {
        assert_eq!(shortfall(Cents(500), Cents(500)), None);
        assert_eq!(shortfall(Cents(501), Cents(500)), None);
        assert_eq!(shortfall(Cents(499), Cents(500)), Some(Cents(1)));
        let exact = |t: &str| ExactMinor::parse(t).unwrap();
        assert_eq!(shortfall(exact("283.34"), exact("283.34")), None);
        assert_eq!(
            shortfall(exact("283"), exact("283.34")),
            Some(exact("0.34"))
        );
    }

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

    #[test]
    fn money_prints_its_currency() {
        assert_eq!(Money::new(Cents(150), Currency::Usd).to_string(), "$1.50");
        assert_eq!(Money::new(Cents(150), Currency::Gbp).to_string(), "£1.50");
        assert_eq!(
            Money::new(Cents(123456789), Currency::Gbp).to_string(),
            "£1,234,567.89"
        );
        assert_eq!(Currency::parse("gbp"), Some(Currency::Gbp));
        assert_eq!(Currency::parse("EUR"), None);
    }

    #[test]
    fn exact_minor_amounts_keep_every_digit() {
        let fees = ExactMinor::parse("283.34").unwrap();
        assert_eq!(fees.to_string(), "283.34");
        assert_eq!(fees.whole(), None);
        assert_eq!(fees.display(Currency::Gbp), "£2.8334");
        let amount = ExactMinor::parse("850").unwrap();
        assert_eq!(amount.whole(), Some(Cents(850)));
        assert_eq!(ExactMinor::parse("850.0").unwrap(), amount);
        assert_eq!(amount.display(Currency::Usd), "$8.50");
        assert_eq!(
            ExactMinor::parse("100000000")
                .unwrap()
                .display(Currency::Gbp),
            "£1,000,000.00"
        );
        let total = amount.checked_add(fees).unwrap();
        assert_eq!(total.to_string(), "1133.34");
        assert_eq!(total.checked_sub(fees), Some(amount));
        assert_eq!(amount.checked_sub(total).unwrap().to_string(), "-283.34");
        assert!(total > amount);
        for bad in ["1e3", "", "1.", ".5", "abc", "1.2.3"] {
            assert!(ExactMinor::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn exact_minor_text_round_trips(whole in 0u64..10_000_000, frac in 0u32..10_000) {
            let text = format!("{whole}.{frac:04}");
            let x = ExactMinor::parse(&text).unwrap();
            prop_assert_eq!(ExactMinor::parse(&x.to_string()).unwrap(), x);
        }
    }
}
