//! The order lifecycle:
//!
//! ```text
//! pending_payment -> confirmed -> processing -> shipped -> delivered -> returned
//!        \______________\______________\----> cancelled   (only before shipped)
//! ```
//! `cancelled` and `returned` are terminal; `delivered` leads only to `returned`. Every change a
//! person or a service asks for is checked against this table. TikTok Shop is the authority for
//! its own orders: its status may jump past states we did not see, and the jump is applied.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    PendingPayment,
    Confirmed,
    Processing,
    Shipped,
    Delivered,
    Returned,
    Cancelled,
}

pub const ALL: [Status; 7] = [
    Status::PendingPayment,
    Status::Confirmed,
    Status::Processing,
    Status::Shipped,
    Status::Delivered,
    Status::Returned,
    Status::Cancelled,
];

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingPayment => "pending_payment",
            Status::Confirmed => "confirmed",
            Status::Processing => "processing",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Returned => "returned",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The states a requested transition may lead to from here.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::PendingPayment => &[Status::Confirmed, Status::Cancelled],
            Status::Confirmed => &[Status::Processing, Status::Cancelled],
            Status::Processing => &[Status::Shipped, Status::Cancelled],
            Status::Shipped => &[Status::Delivered],
            Status::Delivered => &[Status::Returned],
            Status::Returned | Status::Cancelled => &[],
        }
    }

    pub fn is_terminal(self) -> bool {
        self.next().is_empty()
    }

    /// Progress along the happy path, for ordering platform updates (cancelled/returned last).
    fn rank(self) -> u8 {
        match self {
            Status::PendingPayment => 0,
            Status::Confirmed => 1,
            Status::Processing => 2,
            Status::Shipped => 3,
            Status::Delivered => 4,
            Status::Returned => 5,
            Status::Cancelled => 5,
        }
    }

    /// Whether an order in this state may still have its details edited (before shipping).
    pub fn editable(self) -> bool {
        matches!(self, Status::PendingPayment | Status::Confirmed | Status::Processing)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transition, naming where the order is and where it may go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order is {current}; it can move to {}", allowed_list(.allowed))]
pub struct IllegalTransition {
    pub current: Status,
    pub requested: Status,
    pub allowed: Vec<Status>,
}

fn allowed_list(allowed: &[Status]) -> String {
    if allowed.is_empty() {
        return "nothing (final state)".into();
    }
    allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks a transition requested through the API.
pub fn check(current: Status, requested: Status) -> Result<(), IllegalTransition> {
    if current.next().contains(&requested) {
        Ok(())
    } else {
        Err(IllegalTransition { current, requested, allowed: current.next().to_vec() })
    }
}

/// A TikTok Shop order status as ours. `None`: a status that does not move the order.
pub fn from_tiktok(status: &str) -> Option<Status> {
    match status {
        "UNPAID" => Some(Status::PendingPayment),
        "ON_HOLD" | "AWAITING_SHIPMENT" => Some(Status::Confirmed),
        "PARTIALLY_SHIPPING" | "AWAITING_COLLECTION" => Some(Status::Processing),
        "IN_TRANSIT" => Some(Status::Shipped),
        "DELIVERED" | "COMPLETED" => Some(Status::Delivered),
        "CANCEL" | "CANCELLED" => Some(Status::Cancelled),
        _ => None,
    }
}

/// What to do with a platform status for an order in `current`: the platform may jump forward,
/// never back; a terminal order stays as it is.
pub fn platform_move(current: Status, platform: Status) -> Option<Status> {
    if current == platform || current.is_terminal() {
        return None;
    }
    match platform {
        // The platform cancels; after shipping that is a return's business, not a cancel.
        Status::Cancelled if current.rank() < Status::Shipped.rank() => Some(Status::Cancelled),
        Status::Cancelled => None,
        Status::Returned if current == Status::Delivered || current == Status::Shipped => Some(Status::Returned),
        other if other.rank() > current.rank() && other != Status::Returned => Some(other),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table the issue describes, written out independently of `next()`.
    fn legal(from: Status, to: Status) -> bool {
        use Status::*;
        matches!(
            (from, to),
            (PendingPayment, Confirmed)
                | (Confirmed, Processing)
                | (Processing, Shipped)
                | (Shipped, Delivered)
                | (Delivered, Returned)
                | (PendingPayment | Confirmed | Processing, Cancelled)
        )
    }

    #[test]
    fn every_pair_of_states_is_legal_or_refused_with_the_allowed_next_states() {
        for from in ALL {
            for to in ALL {
                let result = check(from, to);
                assert_eq!(result.is_ok(), legal(from, to), "{from} -> {to}");
                if let Err(err) = result {
                    assert_eq!(err.current, from);
                    assert_eq!(err.allowed, from.next().to_vec());
                    assert!(err.to_string().starts_with(&format!("order is {from}")), "{err}");
                }
            }
        }
    }

    #[test]
    fn terminal_states_lead_nowhere() {
        assert!(Status::Cancelled.is_terminal());
        assert!(Status::Returned.is_terminal());
        assert_eq!(Status::Delivered.next(), &[Status::Returned]);
    }

    #[test]
    fn tiktok_statuses_map_onto_ours() {
        let table = [
            ("UNPAID", Some(Status::PendingPayment)),
            ("ON_HOLD", Some(Status::Confirmed)),
            ("AWAITING_SHIPMENT", Some(Status::Confirmed)),
            ("PARTIALLY_SHIPPING", Some(Status::Processing)),
            ("AWAITING_COLLECTION", Some(Status::Processing)),
            ("IN_TRANSIT", Some(Status::Shipped)),
            ("DELIVERED", Some(Status::Delivered)),
            ("COMPLETED", Some(Status::Delivered)),
            ("CANCEL", Some(Status::Cancelled)),
            ("CANCELLED", Some(Status::Cancelled)),
            ("SOMETHING_NEW", None),
        ];
        for (tiktok, ours) in table {
            assert_eq!(from_tiktok(tiktok), ours, "{tiktok}");
        }
    }

    #[test]
    fn the_platform_jumps_forward_but_never_back() {
        use Status::*;
        assert_eq!(platform_move(PendingPayment, Shipped), Some(Shipped), "a jump is applied");
        assert_eq!(platform_move(Shipped, Confirmed), None, "a late, older status never moves back");
        assert_eq!(platform_move(Confirmed, Cancelled), Some(Cancelled));
        assert_eq!(platform_move(Shipped, Cancelled), None);
        assert_eq!(platform_move(Delivered, Returned), Some(Returned));
        assert_eq!(platform_move(Cancelled, Delivered), None, "terminal stays");
        assert_eq!(platform_move(Confirmed, Confirmed), None);
    }
}
