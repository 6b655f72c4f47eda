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
    fn refunds_are_bounded_by_payments() {
        assert_eq!(check_refund(0, 100, 0), Err(Error::NotPositive));
        assert_eq!(check_refund(150, 100, 0), Err(Error::RefundExceedsPaid { paid: 100 }));
        assert_eq!(check_refund(50, 100, 60), Err(Error::RefundExceedsPaid { paid: 40 }));
        assert_eq!(check_refund(40, 100, 60), Ok(()));
    }
}
