//! Payments and refunds recorded by the seller, and the payment status they give an order.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Paid,
    Failed,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Paid, Self::Failed, Self::Refunded, Self::PartiallyRefunded]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// The status given what was paid and refunded against `total` (all minor units).
pub fn status(total: i64, paid: i64, refunded: i64) -> PaymentStatus {
    match (paid, refunded) {
        (_, r) if r > 0 && r >= paid => PaymentStatus::Refunded,
        (_, r) if r > 0 => PaymentStatus::PartiallyRefunded,
        (p, _) if p >= total => PaymentStatus::Paid,
        _ => PaymentStatus::Pending,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("amount must be positive")]
    NotPositive,
    #[error("a refund cannot exceed what was paid ({paid})")]
    RefundExceedsPaid { paid: i64 },
    #[error("the order is already paid in full")]
    AlreadyPaid,
    #[error("a payment cannot exceed the balance due ({due})")]
    ExceedsBalance { due: i64 },
}

/// Checks a payment against the balance due (the total less what was paid). More than is owed is
/// nearly always the same payment entered twice; a customer who really paid too much is settled
/// by recording what was due and giving the rest back outside the order.
pub fn check_payment(amount: i64, total: i64, paid: i64) -> Result<(), Error> {
    if amount <= 0 {
        return Err(Error::NotPositive);
    }
    let due = total - paid;
    if due <= 0 {
        return Err(Error::AlreadyPaid);
    }
    if amount > due {
        return Err(Error::ExceedsBalance { due });
    }
    Ok(())
}

/// Checks a refund against what was paid and already refunded.
pub fn check_refund(amount: i64, paid: i64, refunded: i64) -> Result<(), Error> {
    if amount <= 0 {
        return Err(Error::NotPositive);
    }
    if refunded + amount > paid {
        return Err(Error::RefundExceedsPaid { paid: paid - refunded });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_payments_and_refunds() {
        assert_eq!(status(1000, 0, 0), PaymentStatus::Pending);
        assert_eq!(status(1000, 400, 0), PaymentStatus::Pending);
        assert_eq!(status(1000, 1000, 0), PaymentStatus::Paid);
        assert_eq!(status(1000, 1200, 0), PaymentStatus::Paid);
        assert_eq!(status(1000, 1000, 300), PaymentStatus::PartiallyRefunded);
        assert_eq!(status(1000, 1000, 1000), PaymentStatus::Refunded);
    }

    #[test]
    fn payments_are_bounded_by_the_balance_due() {
        assert_eq!(check_payment(0, 1000, 0), Err(Error::NotPositive));
        assert_eq!(check_payment(1000, 1000, 0), Ok(()));
        assert_eq!(check_payment(1001, 1000, 0), Err(Error::ExceedsBalance { due: 1000 }));
        assert_eq!(check_payment(600, 1000, 400), Ok(()));
        assert_eq!(check_payment(601, 1000, 400), Err(Error::ExceedsBalance { due: 600 }));
        assert_eq!(check_payment(1, 1000, 1000), Err(Error::AlreadyPaid));
    }

    #[test]
    fn refunds_are_bounded_by_payments() {
        assert_eq!(check_refund(0, 100, 0), Err(Error::NotPositive));
        assert_eq!(check_refund(150, 100, 0), Err(Error::RefundExceedsPaid { paid: 100 }));
        assert_eq!(check_refund(50, 100, 60), Err(Error::RefundExceedsPaid { paid: 40 }));
        assert_eq!(check_refund(40, 100, 60), Ok(()));
    }
}
