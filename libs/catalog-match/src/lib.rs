//! Ranked fuzzy matching of what a customer typed ("gold hoops sz 7", "silvr chain") against a
//! tenant's catalog. Inventory's catalog search and the draft parser's matcher both rank with
//! this code, so a product found by one is found by the other.
//!
//! Scoring, per query token, takes the best of: exact (1.0), same stem (plural/singular, 0.95),
//! one edit for words of 4+ letters (0.8), two edits for 7+ (0.6), prefix of 3+ letters (0.75).
//! Name tokens count fully, attribute tokens (size, colour, material) at 0.6. The item's score
//! mixes how much of the query matched with how much of the item's name was covered.

/// Words that carry no product meaning in order messages.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "of", "for", "with", "in", "pls", "please", "plz", "i", "want", "need", "would", "like",
    "to", "order", "get", "me", "my", "some", "can", "have", "x", "pcs", "pc", "piece", "pieces",
];

/// Lowercase, common Latin accents folded, punctuation to spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'ß' => 's',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(folded);
    }
    out
}

/// The singular-ish stem of a token: "hoops" → "hoop", "boxes" → "box", "dresses" → "dress".
pub fn stem(token: &str) -> &str {
    for suffix in ["sses", "xes", "ches", "shes"] {
        if token.len() > suffix.len() + 1 && token.ends_with(suffix) {
            return &token[..token.len() - 2];
        }
    }
    if token.len() > 3 && token.ends_with('s') && !token.ends_with("ss") {
        return &token[..token.len() - 1];
    }
    token
}

/// Meaningful tokens of a text. Hyphenated words also count joined ("T-Shirt" gives "tshirt",
/// "t" and "shirt"), so "tshirt" and "tee" find it.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.to_lowercase().split_whitespace() {
        if word.contains('-') {
            let joined: String = normalize(word).split_whitespace().collect();
            if joined.len() > 2 {
                out.push(joined);
            }
        }
    }
    out.extend(normalize(text).split_whitespace().filter(|t| !STOPWORDS.contains(t)).map(str::to_string));
    for token in &mut out {
        if let Some((_, canonical)) = SYNONYMS.iter().find(|(short, _)| short == token) {
            *token = canonical.to_string();
        }
    }
    out
}

/// Common shorthand customers type for catalog words.
const SYNONYMS: &[(&str, &str)] = &[("tee", "tshirt"), ("tees", "tshirt"), ("tshirts", "tshirt")];

/// One catalog item as the matcher sees it.
#[derive(Debug, Clone)]
pub struct IndexItem {
    pub sku: String,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Entry {
    sku: String,
    sku_normalized: String,
    name_tokens: Vec<String>,
    attribute_tokens: Vec<String>,
}

/// A scored match.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    pub sku: &'a str,
    /// 0.0 (nothing) to 1.0 (every word matched exactly and the whole name covered).
    pub score: f32,
}

/// A tenant's catalog prepared for matching.
#[derive(Debug, Clone, Default)]
pub struct CatalogIndex {
    entries: Vec<Entry>,
}

impl CatalogIndex {
    pub fn new(items: impl IntoIterator<Item = IndexItem>) -> Self {
        let entries = items
            .into_iter()
            .map(|item| Entry {
                sku_normalized: normalize(&item.sku).split_whitespace().collect::<Vec<_>>().join(""),
                name_tokens: tokens(&item.name),
                attribute_tokens: item.attributes.iter().flat_map(|(_, value)| tokens(value)).collect(),
                sku: item.sku,
            })
            .collect();
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best `limit` items scoring at least `min_score`, best first (ties by SKU).
    pub fn search(&self, query: &str, limit: usize, min_score: f32) -> Vec<Match<'_>> {
        let query_tokens = tokens(query);
        if query_tokens.is_empty() {
            return Vec::new();
        }
        let compact_query: String = query_tokens.concat();
        let mut matches: Vec<Match<'_>> = self
            .entries
            .iter()
            .filter_map(|entry| {
                let score = if entry.sku_normalized == compact_query { 1.0 } else { score(&query_tokens, entry) };
                (score >= min_score).then_some(Match { sku: &entry.sku, score })
            })
            .collect();
        matches.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.sku.cmp(b.sku)));
        matches.truncate(limit);
        matches
    }
}

fn score(query: &[String], entry: &Entry) -> f32 {
    let mut query_total = 0.0;
    let mut covered = vec![false; entry.name_tokens.len()];
    for q in query {
        let mut best = 0.0f32;
        let mut best_name = None;
        for (index, name_token) in entry.name_tokens.iter().enumerate() {
            let s = token_similarity(q, name_token);
            if s > best {
                best = s;
                best_name = Some(index);
            }
        }
        for attribute in &entry.attribute_tokens {
            let s = 0.6 * token_similarity(q, attribute);
            if s > best {
                best = s;
                best_name = None;
            }
        }
        if let Some(index) = best_name {
            covered[index] = true;
        }
        query_total += best;
    }
    let query_score = query_total / query.len() as f32;
    let coverage =
        if covered.is_empty() { 0.0 } else { covered.iter().filter(|c| **c).count() as f32 / covered.len() as f32 };
    0.7 * query_score + 0.3 * coverage
}

/// How alike two tokens are, from 0.0 to 1.0.
pub fn token_similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    if stem(a) == stem(b) {
        return 0.95;
    }
    let shorter = a.len().min(b.len());
    let distance = edit_distance(a, b);
    let mut best: f32 = 0.0;
    if shorter >= 4 && distance <= 1 {
        best = best.max(0.8);
    }
    if shorter >= 7 && distance <= 2 {
        best = best.max(0.6);
    }
    if shorter >= 3 && (a.starts_with(b) || b.starts_with(a)) {
        best = best.max(0.75);
    }
    best
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), bounded to
/// short words so it stays cheap.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 2 || a.len() > 32 || b.len() > 32 {
        return usize::MAX;
    }
    let mut previous2 = vec![0usize; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(previous2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut previous2, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, name: &str, attributes: &[(&str, &str)]) -> IndexItem {
        IndexItem {
            sku: sku.into(),
            name: name.into(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn catalog() -> CatalogIndex {
        CatalogIndex::new([
            item("HOOP-G-7", "Gold Hoop Earrings", &[("size", "7"), ("colour", "gold")]),
            item("HOOP-S-7", "Silver Hoop Earrings", &[("size", "7"), ("colour", "silver")]),
            item("CHAIN-S", "Silver Chain Necklace", &[("material", "sterling silver")]),
            item("RING-M", "Signet Ring", &[("size", "M")]),
            item("BRACE-1", "Beaded Bracelet", &[]),
            item("TEE-BLU-L", "Crew T-Shirt", &[("colour", "blue"), ("size", "L")]),
        ])
    }

    #[test]
    fn ranks_the_intended_item_first() {
        let index = catalog();
        let table = [
            ("gold hoops", "HOOP-G-7"),
            ("silver chain", "CHAIN-S"),
            ("silvr chain", "CHAIN-S"),
            ("ring", "RING-M"),
            ("bracelets", "BRACE-1"),
            ("braclet", "BRACE-1"),
            ("blue shirt", "TEE-BLU-L"),
            ("Boucles dorées gold hoop", "HOOP-G-7"),
            ("hoop-g-7", "HOOP-G-7"),
        ];
        for (query, expected) in table {
            let found = index.search(query, 3, 0.3);
            assert_eq!(found.first().map(|m| m.sku), Some(expected), "{query}: {found:?}");
        }
    }

    #[test]
    fn unrelated_text_matches_nothing() {
        let index = catalog();
        for query in ["hi", "thanks so much", "what time do you open", ""] {
            assert!(index.search(query, 3, 0.5).is_empty(), "{query}");
        }
    }

    #[test]
    fn attributes_break_ties_between_variants() {
        let index = catalog();
        let found = index.search("silver hoops", 2, 0.3);
        assert_eq!(found[0].sku, "HOOP-S-7");
    }

    #[test]
    fn token_similarity_table() {
        assert_eq!(token_similarity("hoop", "hoop"), 1.0);
        assert_eq!(token_similarity("hoops", "hoop"), 0.95);
        assert_eq!(token_similarity("silvr", "silver"), 0.8);
        assert_eq!(token_similarity("neckalce", "necklace"), 0.8);
        assert_eq!(token_similarity("brac", "bracelet"), 0.75);
        assert_eq!(token_similarity("ring", "gold"), 0.0);
        assert_eq!(token_similarity("ab", "abc"), 0.0);
    }

    #[test]
    fn normalizes_accents_and_punctuation() {
        assert_eq!(normalize("Crème-Brûlée, 2x!"), "creme brulee  2x ");
        assert_eq!(tokens("the Gold hoops pls"), vec!["gold", "hoops"]);
        assert_eq!(tokens("Crew T-Shirt"), vec!["tshirt", "crew", "t", "shirt"]);
        assert_eq!(tokens("black tee"), vec!["black", "tshirt"]);
    }
}
