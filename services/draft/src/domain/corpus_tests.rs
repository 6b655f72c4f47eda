//! The parser corpus: realistic order messages and their expected parses.
//!
//! Every message in `tests/fixtures/parser_corpus.json` runs through the parser and the matcher
//! over one fixed catalog, and the outcome is compared with what a careful human reads in it. A
//! message opens a draft, as in the service, when the parser finds lines, it is not a question,
//! and at least one line matches a SKU. The test prints the exact-match rate and every mismatch;
//! it fails when the rate drops below 80% or when any non-order opens a draft, because a false
//! draft costs a seller more than a missed line a reviewer adds by hand.

use std::collections::HashSet;

use money::{Currency, Money};
use serde::Deserialize;

use super::draft::Item;
use super::matcher::{CatalogEntry, CatalogSnapshot};
use super::parser;

const CORPUS: &str = include_str!("../../tests/fixtures/parser_corpus.json");

/// Below this share of exact parses the parser has regressed.
const MIN_EXACT_RATE: f64 = 80.0;

#[derive(Debug, Deserialize)]
struct Corpus {
    currency: Currency,
    catalog: Vec<CatalogRow>,
    messages: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct CatalogRow {
    sku: String,
    name: String,
    attributes: Vec<(String, String)>,
    price_minor: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    text: String,
    /// Why a reading was chosen, for the cases where it is not obvious.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    /// Only ever `false`: the message must not open a draft.
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    items: Option<Vec<ExpectedItem>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct ExpectedItem {
    sku: Option<String>,
    quantity: i64,
}

/// What a message should produce, or did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    NoDraft,
    Draft(Vec<ExpectedItem>),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::NoDraft => "no draft".to_string(),
            Outcome::Draft(items) => items
                .iter()
                .map(|i| format!("{}×{}", i.quantity, i.sku.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl Case {
    fn expected(&self) -> Outcome {
        match (self.draft, &self.items) {
            (Some(false), None) => Outcome::NoDraft,
            (None, Some(items)) => Outcome::Draft(items.clone()),
            _ => panic!("corpus case {:?} needs exactly one of `\"draft\": false` or `items`", self.text),
        }
    }
}

fn load() -> Corpus {
    serde_json::from_str(CORPUS).expect("parser_corpus.json is valid")
}

fn snapshot(corpus: &Corpus) -> CatalogSnapshot {
    let entries = corpus
        .catalog
        .iter()
        .map(|row| CatalogEntry {
            sku: row.sku.clone(),
            name: row.name.clone(),
            attributes: row.attributes.clone(),
            price: Money::new(row.price_minor, corpus.currency),
            retailer_id: None,
        })
        .collect();
    CatalogSnapshot::new(1, entries)
}

/// The service's rule for "this message is an order", applied to one message.
fn outcome(snapshot: &CatalogSnapshot, text: &str) -> Outcome {
    let parsed = parser::parse(text);
    let items: Vec<Item> = parsed.lines.iter().map(|line| snapshot.item_for(line)).collect();
    let draft = !parsed.is_question && items.iter().any(|item| item.sku.is_some());
    if draft {
        Outcome::Draft(items.into_iter().map(|item| ExpectedItem { sku: item.sku, quantity: item.quantity }).collect())
    } else {
        Outcome::NoDraft
    }
}

/// A corpus that contradicts itself would measure nothing: check it before scoring.
fn check_corpus(corpus: &Corpus) {
    let skus: HashSet<&str> = corpus.catalog.iter().map(|row| row.sku.as_str()).collect();
    assert_eq!(skus.len(), corpus.catalog.len(), "catalog SKUs are unique");
    let mut texts = HashSet::new();
    let (mut orders, mut non_orders) = (0, 0);
    for case in &corpus.messages {
        assert!(texts.insert(case.text.as_str()), "duplicate corpus message {:?}", case.text);
        match case.expected() {
            Outcome::NoDraft => non_orders += 1,
            Outcome::Draft(items) => {
                orders += 1;
                assert!(
                    items.iter().any(|i| i.sku.is_some()),
                    "{:?}: an order needs at least one matched item, else it opens no draft",
                    case.text
                );
                for item in &items {
                    assert!(item.quantity > 0, "{:?}: quantities are positive", case.text);
                    if let Some(sku) = &item.sku {
                        assert!(skus.contains(sku.as_str()), "{:?}: {sku} is not in the catalog", case.text);
                    }
                }
            }
        }
    }
    assert!(orders >= 70, "the corpus holds {orders} order messages, at least 70 wanted");
    assert!(non_orders >= 12, "the corpus holds {non_orders} non-orders, at least 12 wanted");
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ⏎ ")
}

#[test]
fn parser_corpus_exact_match_rate() {
    let corpus = load();
    check_corpus(&corpus);
    let snapshot = snapshot(&corpus);

    let mut exact = 0usize;
    let mut mismatches = Vec::new();
    let mut false_drafts = Vec::new();
    for case in &corpus.messages {
        let expected = case.expected();
        let got = outcome(&snapshot, &case.text);
        if got == expected {
            exact += 1;
            continue;
        }
        if expected == Outcome::NoDraft {
            false_drafts.push(case.text.as_str());
        }
        mismatches.push((case.text.as_str(), expected, got));
    }

    if !mismatches.is_empty() {
        println!("parser corpus mismatches ({}):", mismatches.len());
        println!("{:<70} | {:<45} | got", "message", "expected");
        for (text, expected, got) in &mismatches {
            println!("{:<70} | {:<45} | {}", one_line(text), expected.describe(), got.describe());
        }
    }
    let total = corpus.messages.len();
    let rate = 100.0 * exact as f64 / total as f64;
    println!("parser corpus: {exact}/{total} exact ({rate:.1}%)");

    assert!(false_drafts.is_empty(), "non-orders opened drafts: {false_drafts:?}");
    assert!(rate >= MIN_EXACT_RATE, "parser corpus exact-match rate {rate:.1}% is below {MIN_EXACT_RATE}%");
}
