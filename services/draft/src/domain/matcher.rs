//! Matching parsed lines and catalog carts against a tenant's catalog snapshot.

use std::collections::HashMap;

use catalog_match::{CatalogIndex, IndexItem};
use money::Money;

use super::draft::Item;
use super::parser::ParsedLine;

/// Below this score a line is left unmatched for the reviewer.
pub const MATCH_THRESHOLD: f32 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub sku: String,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub price: Money,
    pub retailer_id: Option<String>,
}

/// One tenant's active catalog at one version, prepared for matching.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    pub version: i64,
    index: CatalogIndex,
    by_sku: HashMap<String, CatalogEntry>,
    by_retailer_id: HashMap<String, String>,
}

impl CatalogSnapshot {
    pub fn new(version: i64, entries: Vec<CatalogEntry>) -> Self {
        let index = CatalogIndex::new(entries.iter().map(|e| IndexItem {
            sku: e.sku.clone(),
            name: e.name.clone(),
            attributes: e.attributes.clone(),
        }));
        let by_retailer_id = entries.iter().filter_map(|e| Some((e.retailer_id.clone()?, e.sku.clone()))).collect();
        let by_sku = entries.into_iter().map(|e| (e.sku.clone(), e)).collect();
        Self { version, index, by_sku, by_retailer_id }
    }

    pub fn get(&self, sku: &str) -> Option<&CatalogEntry> {
        self.by_sku.get(sku)
    }

    /// A WhatsApp `product_retailer_id`: the catalog's retailer id, else the SKU itself.
    pub fn by_retailer_id(&self, retailer_id: &str) -> Option<&CatalogEntry> {
        self.by_retailer_id
            .get(retailer_id)
            .and_then(|sku| self.by_sku.get(sku))
            .or_else(|| self.by_sku.get(retailer_id))
    }

    /// The best catalog entry for a parsed line, and how sure the match is.
    pub fn best_match(&self, line: &ParsedLine) -> Option<(&CatalogEntry, f32)> {
        let mut query = line.product.clone();
        if let Some(size) = &line.hints.size {
            query.push(' ');
            query.push_str(size);
        }
        let found = self.index.search(&query, 2, MATCH_THRESHOLD);
        let best = found.first()?;
        // Two variants scoring the same ("gold hoops" when sizes 7 and 8 exist): the reviewer
        // picks, the matcher does not guess.
        if found.get(1).is_some_and(|second| second.score >= best.score) {
            return None;
        }
        Some((self.by_sku.get(best.sku)?, best.score))
    }

    /// The items of a parsed message: matched lines, and unmatched ones that named a quantity
    /// (a line like "oh" or "good morning" is noise, not an item). The one place this is decided.
    pub fn items_for(&self, lines: &[ParsedLine]) -> Vec<Item> {
        lines
            .iter()
            .map(|line| (line, self.item_for(line)))
            .filter(|(line, item)| item.sku.is_some() || line.explicit_quantity)
            .map(|(_, item)| item)
            .collect()
    }

    /// A draft item for a parsed line: matched (with the catalog's name and price) or not.
    pub fn item_for(&self, line: &ParsedLine) -> Item {
        match self.best_match(line) {
            Some((entry, score)) => Item {
                original_text: line.original.clone(),
                sku: Some(entry.sku.clone()),
                name: entry.name.clone(),
                quantity: line.quantity,
                unit_price: Some(entry.price),
                message_price: None,
                confidence: score,
            },
            None => Item {
                original_text: line.original.clone(),
                sku: None,
                name: line.product.clone(),
                quantity: line.quantity,
                unit_price: None,
                message_price: None,
                confidence: 0.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parser::parse;

    fn snapshot() -> CatalogSnapshot {
        let usd = |a| Money::new(a, "USD".parse().expect("usd"));
        CatalogSnapshot::new(
            3,
            vec![
                CatalogEntry {
                    sku: "HOOP-G-7".into(),
                    name: "Gold Hoop Earrings".into(),
                    attributes: vec![("size".into(), "7".into())],
                    price: usd(1299),
                    retailer_id: Some("wa-hoop-7".into()),
                },
                CatalogEntry {
                    sku: "HOOP-G-8".into(),
                    name: "Gold Hoop Earrings".into(),
                    attributes: vec![("size".into(), "8".into())],
                    price: usd(1399),
                    retailer_id: None,
                },
                CatalogEntry {
                    sku: "CHAIN-S".into(),
                    name: "Silver Chain".into(),
                    attributes: vec![],
                    price: usd(3000),
                    retailer_id: None,
                },
            ],
        )
    }

    #[test]
    fn lines_become_priced_items_with_the_right_variant() {
        let snapshot = snapshot();
        let parsed = parse("2 gold hoops size 8 and the silver chain pls");
        let items: Vec<Item> = parsed.lines.iter().map(|l| snapshot.item_for(l)).collect();
        assert_eq!(items[0].sku.as_deref(), Some("HOOP-G-8"));
        assert_eq!(items[0].quantity, 2);
        assert_eq!(items[0].unit_price.map(|p| p.amount_minor), Some(1399));
        assert_eq!(items[1].sku.as_deref(), Some("CHAIN-S"));
    }

    #[test]
    fn unknown_products_stay_unmatched() {
        let item = snapshot().item_for(&parse("3 purple elephants").lines[0]);
        assert_eq!(item.sku, None);
        assert_eq!(item.unit_price, None);
        assert_eq!(item.quantity, 3);
    }

    #[test]
    fn retailer_ids_map_to_skus() {
        let snapshot = snapshot();
        assert_eq!(snapshot.by_retailer_id("wa-hoop-7").map(|e| e.sku.as_str()), Some("HOOP-G-7"));
        assert_eq!(snapshot.by_retailer_id("CHAIN-S").map(|e| e.sku.as_str()), Some("CHAIN-S"));
        assert!(snapshot.by_retailer_id("nope").is_none());
    }
}
