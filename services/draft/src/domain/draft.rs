//! A draft order: items a message or a person proposed, with totals the server computes.

use money::{Currency, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    PendingReview,
    /// Taken by one approver (a lease); only the sweeper may take it over.
    Approving,
    Approved,
    Rejected,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingReview => "pending_review",
            Status::Approving => "approving",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::PendingReview, Self::Approving, Self::Approved, Self::Rejected, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == value)
    }

    /// Approved, rejected and expired drafts never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Approved | Status::Rejected | Status::Expired)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The words of the message this item came from (empty for items typed by a person).
    pub original_text: String,
    /// `None` while no catalog item is matched: approval refuses such drafts.
    pub sku: Option<String>,
    pub name: String,
    pub quantity: i64,
    /// From the catalog, when matched (the only source of prices).
    pub unit_price: Option<Money>,
    /// What the customer's app showed (WhatsApp catalog carts), for comparison only.
    pub message_price: Option<Money>,
    /// 0.0 to 1.0: how sure the matcher is.
    pub confidence: f32,
}

impl Item {
    /// The catalog price and the message's price disagree: the reviewer sees both.
    pub fn price_mismatch(&self) -> bool {
        matches!((self.unit_price, self.message_price), (Some(catalog), Some(message)) if catalog != message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub shipping: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("item {0}: quantity must be positive")]
    BadQuantity(usize),
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("amounts must be in {0}")]
    Currency(Currency),
    #[error("the discount exceeds the subtotal")]
    DiscountTooLarge,
    #[error("amounts are too large")]
    Overflow,
}

/// `total = subtotal - discount + tax + shipping`; unmatched items count for nothing yet.
pub fn totals(
    currency: Currency,
    items: &[Item],
    discount: Money,
    tax: Money,
    shipping: Money,
) -> Result<Totals, Error> {
    let mut subtotal = Money::zero(currency);
    for (index, item) in items.iter().enumerate() {
        if item.quantity <= 0 {
            return Err(Error::BadQuantity(index + 1));
        }
        if let Some(price) = item.unit_price {
            if price.currency != currency {
                return Err(Error::Currency(currency));
            }
            let line = price.checked_mul(item.quantity).map_err(|_| Error::Overflow)?;
            subtotal = subtotal.checked_add(line).map_err(|_| Error::Overflow)?;
        }
    }
    for (name, amount) in [("discount", discount), ("tax", tax), ("shipping", shipping)] {
        if amount.currency != currency {
            return Err(Error::Currency(currency));
        }
        if amount.amount_minor < 0 {
            return Err(Error::Negative(name));
        }
    }
    if discount.amount_minor > subtotal.amount_minor {
        return Err(Error::DiscountTooLarge);
    }
    let total = subtotal
        .checked_sub(discount)
        .and_then(|m| m.checked_add(tax))
        .and_then(|m| m.checked_add(shipping))
        .map_err(|_| Error::Overflow)?;
    Ok(Totals { subtotal, discount, tax, shipping, total })
}

/// Adds a follow-up message's items to a draft: the same SKU adds up, new ones are appended.
pub fn merge(items: &mut Vec<Item>, new: Vec<Item>) {
    for item in new {
        let same = item.sku.as_ref().and_then(|sku| items.iter_mut().find(|i| i.sku.as_ref() == Some(sku)));
        match same {
            Some(existing) => existing.quantity += item.quantity,
            None => items.push(item),
        }
    }
}

/// Why a draft cannot be approved yet (empty when it can).
pub fn approval_blockers(items: &[Item]) -> Vec<String> {
    let mut blockers: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.sku.is_none() || item.unit_price.is_none())
        .map(|(index, item)| format!("item {} ({:?}) is not matched to the catalog", index + 1, item.original_text))
        .collect();
    if items.is_empty() {
        blockers.push("the draft has no items".into());
    }
    blockers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, "USD".parse().expect("usd"))
    }

    fn item(sku: Option<&str>, price: Option<i64>, quantity: i64) -> Item {
        Item {
            original_text: "x".into(),
            sku: sku.map(str::to_string),
            name: "x".into(),
            quantity,
            unit_price: price.map(usd),
            message_price: None,
            confidence: 1.0,
        }
    }

    #[test]
    fn totals_keep_tax_and_shipping() {
        let items = [item(Some("A"), Some(1299), 2), item(None, None, 1)];
        let t = totals(usd(0).currency, &items, usd(100), usd(200), usd(500)).expect("totals");
        assert_eq!(t.subtotal, usd(2598));
        assert_eq!(t.total, usd(2598 - 100 + 200 + 500));
        assert_eq!(totals(usd(0).currency, &items, usd(3000), usd(0), usd(0)), Err(Error::DiscountTooLarge));
        assert_eq!(
            totals(usd(0).currency, &[item(Some("A"), Some(1), 0)], usd(0), usd(0), usd(0)),
            Err(Error::BadQuantity(1))
        );
    }

    #[test]
    fn follow_ups_add_up_by_sku() {
        let mut items = vec![item(Some("A"), Some(100), 2)];
        merge(&mut items, vec![item(Some("A"), Some(100), 1), item(Some("B"), Some(50), 1), item(None, None, 1)]);
        let summary: Vec<(Option<&str>, i64)> = items.iter().map(|i| (i.sku.as_deref(), i.quantity)).collect();
        assert_eq!(summary, vec![(Some("A"), 3), (Some("B"), 1), (None, 1)]);
    }

    #[test]
    fn unmatched_items_block_approval() {
        assert!(approval_blockers(&[item(Some("A"), Some(1), 1)]).is_empty());
        assert_eq!(approval_blockers(&[item(Some("A"), Some(1), 1), item(None, None, 1)]).len(), 1);
        assert_eq!(approval_blockers(&[]).len(), 1);
    }

    #[test]
    fn price_mismatches_are_visible() {
        let mut i = item(Some("A"), Some(1299), 1);
        i.message_price = Some(usd(1199));
        assert!(i.price_mismatch());
        i.message_price = Some(usd(1299));
        assert!(!i.price_mismatch());
    }
}

/// The customer as a snapshot on the draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    pub name: String,
    /// E.164, where the channel has one (WhatsApp).
    pub phone_e164: Option<String>,
    pub channel: String,
    pub channel_customer_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub recipient_name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country_code: String,
    pub phone_e164: Option<String>,
}

/// E.164: `+` and 8-15 digits, no leading zero.
pub fn valid_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}
