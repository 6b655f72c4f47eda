//! Catalog items: validated SKUs, names and prices; rows from the API or a CSV import, each with
//! its line and, when bad, the reason.

use std::collections::BTreeMap;

use money::{Currency, Money};

/// A stock-keeping unit code, unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// 1-64 of letters, digits, `-`, `_`, `.`, `/`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let sku = raw.trim();
        if sku.is_empty() {
            return Err("sku is empty".into());
        }
        if sku.len() > 64 {
            return Err("sku is longer than 64 characters".into());
        }
        if !sku.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
            return Err(format!("sku {sku:?} may only hold letters, digits, '-', '_', '.', '/'"));
        }
        Ok(Self(sku.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A catalog row as given (the API's input or a CSV line), before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawItem {
    pub sku: String,
    pub name: String,
    pub price: Option<Money>,
    /// For CSV rows: the price and currency as text.
    pub price_text: Option<(String, String)>,
    pub attributes: BTreeMap<String, String>,
    pub active: Option<bool>,
    pub retailer_id: String,
    pub product_id: String,
}

/// A valid catalog item.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub sku: Sku,
    pub name: String,
    pub price: Money,
    pub attributes: BTreeMap<String, String>,
    pub active: bool,
    pub retailer_id: Option<String>,
    pub product_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub sku: String,
    pub reason: String,
}

/// Validates one row; `currency` is the tenant's currency, which every price must use.
pub fn validate(raw: &RawItem, currency: Option<Currency>) -> Result<CatalogEntry, String> {
    let sku = Sku::parse(&raw.sku)?;
    let name = raw.name.trim();
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.chars().count() > 200 {
        return Err("name is longer than 200 characters".into());
    }
    let price = match (&raw.price, &raw.price_text) {
        (Some(price), _) => *price,
        (None, Some((amount, code))) => {
            let currency: Currency = code.parse().map_err(|e: money::Error| e.to_string())?;
            Money::from_major_str(amount, currency).map_err(|e| e.to_string())?
        }
        (None, None) => return Err("price is missing".into()),
    };
    if price.amount_minor < 0 {
        return Err("price is negative".into());
    }
    if let Some(currency) = currency
        && price.currency != currency
    {
        return Err(format!("price is in {} but the catalog is in {currency}", price.currency));
    }
    for (key, value) in &raw.attributes {
        if key.trim().is_empty() || key.len() > 40 || value.len() > 100 {
            return Err(format!("attribute {key:?} is empty or too long"));
        }
    }
    let optional = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
    Ok(CatalogEntry {
        sku,
        name: name.to_string(),
        price,
        attributes: raw.attributes.iter().map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect(),
        active: raw.active.unwrap_or(true),
        retailer_id: optional(&raw.retailer_id),
        product_id: optional(&raw.product_id),
    })
}

/// Validates every row; rows are numbered from `first_line`. A SKU given twice is an error on
/// its second row.
pub fn validate_all(rows: Vec<(usize, RawItem)>, currency: Option<Currency>) -> (Vec<CatalogEntry>, Vec<RowError>) {
    let mut valid = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut retailer_ids = std::collections::HashSet::new();
    for (line, raw) in rows {
        match validate(&raw, currency) {
            Ok(entry) if !seen.insert(entry.sku.clone()) => {
                errors.push(RowError { line, sku: raw.sku.clone(), reason: "sku appears twice".into() })
            }
            Ok(entry) if entry.retailer_id.as_ref().is_some_and(|r| !retailer_ids.insert(r.clone())) => {
                errors.push(RowError { line, sku: raw.sku.clone(), reason: "retailer_id appears twice".into() })
            }
            Ok(entry) => valid.push(entry),
            Err(reason) => errors.push(RowError { line, sku: raw.sku.clone(), reason }),
        }
    }
    (valid, errors)
}

/// The rows that parsed (with their line numbers) and the errors of those that did not.
pub type ParsedCsv = (Vec<(usize, RawItem)>, Vec<RowError>);

/// Parses a catalog CSV: `sku,name,price,currency[,attributes][,active][,retailer_id][,product_id]`
/// with a header row. Attributes are `key=value;key=value`. Returns rows numbered by their line.
pub fn parse_csv(text: &str) -> Result<ParsedCsv, String> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> =
        reader.headers().map_err(|e| format!("header: {e}"))?.iter().map(|h| h.to_lowercase()).collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(sku_col), Some(name_col), Some(price_col), Some(currency_col)) =
        (column("sku"), column("name"), column("price"), column("currency"))
    else {
        return Err("the header must name the columns sku, name, price and currency".into());
    };
    let (attributes_col, active_col, retailer_col, product_col) =
        (column("attributes"), column("active"), column("retailer_id"), column("product_id"));

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line() as usize);
                errors.push(RowError { line, sku: String::new(), reason: format!("unreadable row: {err}") });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let get = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or_default().to_string();
        let mut raw = RawItem {
            sku: get(Some(sku_col)),
            name: get(Some(name_col)),
            price_text: Some((get(Some(price_col)), get(Some(currency_col)))),
            retailer_id: get(retailer_col),
            product_id: get(product_col),
            ..RawItem::default()
        };
        match parse_attributes(&get(attributes_col)) {
            Ok(attributes) => raw.attributes = attributes,
            Err(reason) => {
                errors.push(RowError { line, sku: raw.sku.clone(), reason });
                continue;
            }
        }
        match get(active_col).to_lowercase().as_str() {
            "" => {}
            "true" | "yes" | "1" => raw.active = Some(true),
            "false" | "no" | "0" => raw.active = Some(false),
            other => {
                errors.push(RowError {
                    line,
                    sku: raw.sku.clone(),
                    reason: format!("active {other:?} is not true/false"),
                });
                continue;
            }
        }
        rows.push((line, raw));
    }
    Ok((rows, errors))
}

fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut attributes = BTreeMap::new();
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("attribute {pair:?} is not key=value"))?;
        attributes.insert(key.trim().to_lowercase(), value.trim().to_string());
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        "USD".parse().expect("usd")
    }

    #[test]
    fn skus_are_validated() {
        assert!(Sku::parse("HOOP-G-7").is_ok());
        assert!(Sku::parse("a/b.c_d").is_ok());
        for bad in ["", " ", "has space", "emoji🙂", &"x".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn csv_rows_are_parsed_with_their_lines_and_reasons() {
        let csv = "sku,name,price,currency,attributes,active\n\
                   HOOP-G-7,Gold Hoop Earrings,12.99,USD,size=7;colour=gold,true\n\
                   ,Nameless,1.00,USD,,\n\
                   RING-M,Signet Ring,12.999,USD,size=M,\n\
                   CHAIN-S,\"Silver Chain, 45cm\",30,USD,,no\n\
                   BAD-ATTR,Thing,1,USD,size,\n\
                   HOOP-G-7,Duplicate,1,USD,,\n";
        let (rows, mut errors) = parse_csv(csv).expect("header ok");
        let (valid, more) = validate_all(rows, Some(usd()));
        errors.extend(more);
        errors.sort_by_key(|e| e.line);
        let skus: Vec<&str> = valid.iter().map(|e| e.sku.as_str()).collect();
        assert_eq!(skus, ["HOOP-G-7", "CHAIN-S"]);
        assert_eq!(valid[0].price.amount_minor, 1299);
        assert_eq!(valid[0].attributes.get("colour").map(String::as_str), Some("gold"));
        assert_eq!(valid[1].name, "Silver Chain, 45cm");
        assert!(!valid[1].active);
        let lines: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0].0, 3);
        assert!(lines[0].1.contains("sku is empty"));
        assert_eq!(lines[1].0, 4);
        assert!(lines[1].1.contains("more decimals"));
        assert_eq!(lines[2].0, 6);
        assert!(lines[2].1.contains("key=value"));
        assert_eq!(lines[3].0, 7);
        assert!(lines[3].1.contains("twice"));
    }

    #[test]
    fn a_csv_without_the_required_columns_is_refused() {
        assert!(parse_csv("sku,title\nA,B\n").is_err());
    }

    #[test]
    fn prices_must_use_the_tenants_currency() {
        let raw = RawItem {
            sku: "A".into(),
            name: "A".into(),
            price_text: Some(("1".into(), "EUR".into())),
            ..Default::default()
        };
        assert!(validate(&raw, Some(usd())).unwrap_err().contains("catalog is in USD"));
        assert!(validate(&raw, None).is_ok());
    }
}
