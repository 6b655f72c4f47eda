//! Reservations: all-or-nothing allocation against available stock, and the status rules.
//!
//! Architecture invariant: `available = on_hand - reserved` never goes below zero. The database
//! enforces it too (a CHECK constraint); this module decides, for a batch of requests in arrival
//! order, which can be fully served.

use std::collections::HashMap;

/// Where stock sits: a SKU at a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StockKey {
    pub sku: String,
    pub location: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
}

impl Level {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// A stock row's low-stock watch: its threshold (the row's own, else the tenant's default; 0 is
/// none) and whether an alert went out for the dip it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub threshold: i64,
    pub alerted: bool,
}

impl Watch {
    /// Whether a row with this much available is below its threshold.
    pub fn is_low(&self, available: i64) -> bool {
        self.threshold > 0 && available < self.threshold
    }

    /// Whether moving to `available` crosses below the threshold: one alert per dip, and the
    /// next dip alerts again once stock has come back up.
    pub fn crosses_below(&self, available: i64) -> bool {
        self.is_low(available) && !self.alerted
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub key: StockKey,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    pub sku: String,
    pub location: String,
    pub requested: i64,
    pub available: i64,
}

/// Decides each request in order against `levels`, updating them as requests are granted.
/// A request for a SKU with no stock row has nothing available.
pub fn allocate(levels: &mut HashMap<StockKey, Level>, requests: &[Vec<Line>]) -> Vec<Result<(), Vec<Short>>> {
    requests
        .iter()
        .map(|lines| {
            let mut wanted: HashMap<&StockKey, i64> = HashMap::new();
            for line in lines {
                let total = wanted.entry(&line.key).or_default();
                *total = total.saturating_add(line.quantity);
            }
            let mut short: Vec<Short> = wanted
                .iter()
                .filter_map(|(key, quantity)| {
                    let available = levels.get(*key).map_or(0, Level::available);
                    (available < *quantity).then(|| Short {
                        sku: key.sku.clone(),
                        location: key.location.clone(),
                        requested: *quantity,
                        available: available.max(0),
                    })
                })
                .collect();
            if !short.is_empty() {
                short.sort_by(|a, b| a.sku.cmp(&b.sku));
                return Err(short);
            }
            for (key, quantity) in wanted {
                if let Some(level) = levels.get_mut(key) {
                    level.reserved += quantity;
                }
            }
            Ok(())
        })
        .collect()
}

/// Whether going from `before` to `after` available units crosses below `threshold`.
pub fn crossed_below(before: i64, after: i64, threshold: i64) -> bool {
    threshold > 0 && before >= threshold && after < threshold
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Held,
    Released,
    Committed,
    Restocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Released => "released",
            Status::Committed => "committed",
            Status::Restocked => "restocked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "held" => Some(Status::Held),
            "released" => Some(Status::Released),
            "committed" => Some(Status::Committed),
            "restocked" => Some(Status::Restocked),
            _ => None,
        }
    }
}

/// What a requested change does to a reservation in `current` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Apply it: stock moves.
    Apply,
    /// Already in the target state: answer with the reservation, move nothing.
    AlreadyDone,
    /// Not allowed from here.
    Refuse,
}

pub fn release(current: Status) -> Change {
    match current {
        Status::Held => Change::Apply,
        Status::Released => Change::AlreadyDone,
        Status::Committed | Status::Restocked => Change::Refuse,
    }
}

pub fn commit(current: Status) -> Change {
    match current {
        Status::Held => Change::Apply,
        Status::Committed => Change::AlreadyDone,
        Status::Released | Status::Restocked => Change::Refuse,
    }
}

pub fn restock(current: Status) -> Change {
    match current {
        Status::Committed => Change::Apply,
        Status::Restocked => Change::AlreadyDone,
        Status::Held | Status::Released => Change::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sku: &str) -> StockKey {
        StockKey { sku: sku.into(), location: "default".into() }
    }

    fn line(sku: &str, quantity: i64) -> Line {
        Line { key: key(sku), quantity }
    }

    #[test]
    fn a_row_alerts_once_per_dip_below_its_threshold() {
        let watch = Watch { threshold: 5, alerted: false };
        assert!(!watch.crosses_below(5), "at the threshold is not below it");
        assert!(watch.crosses_below(4));
        assert!(!Watch { alerted: true, ..watch }.crosses_below(2), "already alerted in this dip");
        assert!(!Watch { threshold: 0, alerted: false }.is_low(-1), "0: no threshold");
    }

    #[test]
    fn requests_are_served_in_order_all_or_nothing() {
        let mut levels = HashMap::from([
            (key("A"), Level { on_hand: 3, reserved: 0 }),
            (key("B"), Level { on_hand: 1, reserved: 0 }),
        ]);
        let outcomes = allocate(
            &mut levels,
            &[
                vec![line("A", 2)],
                vec![line("A", 1), line("B", 2)],
                vec![line("A", 1), line("B", 1)],
                vec![line("C", 1)],
            ],
        );
        assert_eq!(outcomes[0], Ok(()));
        let short = outcomes[1].clone().unwrap_err();
        assert_eq!(short, vec![Short { sku: "B".into(), location: "default".into(), requested: 2, available: 1 }]);
        assert_eq!(outcomes[2], Ok(()), "the refused request took nothing");
        assert_eq!(outcomes[3].clone().unwrap_err()[0].available, 0, "unknown SKUs have nothing");
        assert_eq!(levels[&key("A")].available(), 0);
        assert_eq!(levels[&key("B")].available(), 0);
    }

    #[test]
    fn the_same_sku_twice_in_one_request_adds_up() {
        let mut levels = HashMap::from([(key("A"), Level { on_hand: 3, reserved: 0 })]);
        let outcomes = allocate(&mut levels, &[vec![line("A", 2), line("A", 2)]]);
        assert_eq!(outcomes[0].clone().unwrap_err()[0].requested, 4);
    }

    #[test]
    fn a_hundred_single_unit_requests_against_ten() {
        let mut levels = HashMap::from([(key("HOT"), Level { on_hand: 10, reserved: 0 })]);
        let requests: Vec<Vec<Line>> = (0..100).map(|_| vec![line("HOT", 1)]).collect();
        let granted = allocate(&mut levels, &requests).iter().filter(|o| o.is_ok()).count();
        assert_eq!(granted, 10);
        assert_eq!(levels[&key("HOT")].available(), 0);
    }

    #[test]
    fn low_stock_crossing_fires_once() {
        assert!(crossed_below(5, 4, 5));
        assert!(!crossed_below(4, 3, 5), "already below");
        assert!(!crossed_below(10, 6, 5));
        assert!(!crossed_below(10, 0, 0), "no threshold");
    }

    #[test]
    fn status_rules() {
        use Change::*;
        use Status::*;
        let table = [
            (release as fn(Status) -> Change, Held, Apply),
            (release, Released, AlreadyDone),
            (release, Committed, Refuse),
            (commit, Held, Apply),
            (commit, Committed, AlreadyDone),
            (commit, Released, Refuse),
            (restock, Committed, Apply),
            (restock, Restocked, AlreadyDone),
            (restock, Held, Refuse),
        ];
        for (change, from, expected) in table {
            assert_eq!(change(from), expected, "{from:?}");
        }
    }
}
