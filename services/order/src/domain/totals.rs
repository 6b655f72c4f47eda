//! Order totals, computed by the server: `total = subtotal - discount + tax + shipping`, each
//! line `unit_price × quantity`, all in integer minor units of one currency.

use money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub sku: Option<String>,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Option<String>,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub shipping: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("an order needs at least one item")]
    NoItems,
    #[error("item {0}: quantity must be positive")]
    BadQuantity(usize),
    #[error("item {0}: unit price must not be negative")]
    NegativePrice(usize),
    #[error("{0} must not be negative")]
    NegativeAdjustment(&'static str),
    #[error("every amount must be in {expected}; found {found}")]
    MixedCurrency { expected: Currency, found: Currency },
    #[error("the discount exceeds the subtotal")]
    DiscountTooLarge,
    #[error("amounts are too large")]
    Overflow,
}

impl From<money::Error> for Error {
    fn from(err: money::Error) -> Self {
        match err {
            money::Error::CurrencyMismatch(expected, found) => Error::MixedCurrency { expected, found },
            _ => Error::Overflow,
        }
    }
}

/// Lines with their totals, and the order totals.
pub fn compute(
    currency: Currency,
    items: &[LineInput],
    discount: Money,
    tax: Money,
    shipping: Money,
) -> Result<(Vec<Line>, Totals), Error> {
    if items.is_empty() {
        return Err(Error::NoItems);
    }
    let mut subtotal = Money::zero(currency);
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if item.quantity <= 0 {
            return Err(Error::BadQuantity(index + 1));
        }
        if item.unit_price.amount_minor < 0 {
            return Err(Error::NegativePrice(index + 1));
        }
        let line_total = item.unit_price.checked_mul(item.quantity)?;
        subtotal = subtotal.checked_add(line_total)?;
        lines.push(Line {
            sku: item.sku.clone(),
            name: item.name.clone(),
            unit_price: item.unit_price,
            quantity: item.quantity,
            line_total,
        });
    }
    for (name, amount) in [("discount", discount), ("tax", tax), ("shipping", shipping)] {
        if amount.amount_minor < 0 {
            return Err(Error::NegativeAdjustment(name));
        }
        if amount.currency != currency {
            return Err(Error::MixedCurrency { expected: currency, found: amount.currency });
        }
    }
    if discount.amount_minor > subtotal.amount_minor {
        return Err(Error::DiscountTooLarge);
    }
    let total = subtotal.checked_sub(discount)?.checked_add(tax)?.checked_add(shipping)?;
    Ok((lines, Totals { subtotal, discount, tax, shipping, total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, "USD".parse().expect("usd"))
    }

    fn line(price: i64, quantity: i64) -> LineInput {
        LineInput { sku: Some("A".into()), name: "A".into(), unit_price: usd(price), quantity }
    }

    #[test]
    fn total_is_subtotal_minus_discount_plus_tax_and_shipping() {
        let (lines, totals) =
            compute(usd(0).currency, &[line(1299, 2), line(500, 1)], usd(300), usd(250), usd(499)).expect("valid");
        assert_eq!(lines[0].line_total, usd(2598));
        assert_eq!(totals.subtotal, usd(3098));
        assert_eq!(totals.total, usd(3098 - 300 + 250 + 499));
    }

    #[test]
    fn bad_orders_are_refused() {
        let c = usd(0).currency;
        assert_eq!(compute(c, &[], usd(0), usd(0), usd(0)), Err(Error::NoItems));
        assert_eq!(compute(c, &[line(100, 0)], usd(0), usd(0), usd(0)), Err(Error::BadQuantity(1)));
        assert_eq!(compute(c, &[line(-1, 1)], usd(0), usd(0), usd(0)), Err(Error::NegativePrice(1)));
        assert_eq!(compute(c, &[line(100, 1)], usd(101), usd(0), usd(0)), Err(Error::DiscountTooLarge));
        assert_eq!(compute(c, &[line(100, 1)], usd(0), usd(-1), usd(0)), Err(Error::NegativeAdjustment("tax")));
        let eur = Money::new(1, "EUR".parse().expect("eur"));
        assert!(matches!(compute(c, &[line(100, 1)], usd(0), usd(0), eur), Err(Error::MixedCurrency { .. })));
        assert_eq!(compute(c, &[line(i64::MAX, 2)], usd(0), usd(0), usd(0)), Err(Error::Overflow));
    }
}
