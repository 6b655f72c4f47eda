//! Ranked fuzzy matching of what a customer typed ("gold hoops sz 7", "silvr chain") against a
//! tenant's catalog. Inventory's catalog search and the draft parser's matcher both rank with
//! this code, so a product found by one is found by the other.
//!
//! Scoring, per query token, takes the best of: exact (1.0), same stem (plural/singular, 0.95),
//! one edit for words of 4+ letters (0.8), two edits for 7+ (0.6), prefix of 3+ letters (0.75).
//! Name tokens count fully, attribute tokens (size, colour, material) at 0.6. The item's score
//! mixes how much of the query matched with how much of the item's name was covered.

use std::collections::HashMap;

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
    /// Ids into the index's vocabulary, in the order the words appear.
    name_tokens: Vec<u32>,
    attribute_tokens: Vec<u32>,
}

/// A scored match.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    pub sku: &'a str,
    /// 0.0 (nothing) to 1.0 (every word matched exactly and the whole name covered).
    pub score: f32,
}

/// A tenant's catalog prepared for matching: an inverted index from each distinct word to the
/// items that use it. A search compares the query's words with the vocabulary once (a catalog of
/// 10,000 SKUs has a few hundred distinct words) and scores only the items that share a similar
/// word; every other item scores 0 and could never pass a positive threshold.
#[derive(Debug, Clone, Default)]
pub struct CatalogIndex {
    entries: Vec<Entry>,
    vocabulary: Vec<String>,
    /// For each vocabulary word, the entries using it (ascending, no repeats).
    postings: Vec<Vec<u32>>,
    /// Entry positions by SKU with punctuation and spaces removed ("hoop-g-7" → "hoopg7").
    by_compact_sku: HashMap<String, Vec<u32>>,
}

impl CatalogIndex {
    pub fn new(items: impl IntoIterator<Item = IndexItem>) -> Self {
        let mut index = Self::default();
        let mut word_ids: HashMap<String, u32> = HashMap::new();
        for item in items {
            let position = index.entries.len() as u32;
            let mut intern = |word: String| -> u32 {
                let id = *word_ids.entry(word).or_insert_with_key(|word| {
                    index.vocabulary.push(word.clone());
                    index.postings.push(Vec::new());
                    (index.vocabulary.len() - 1) as u32
                });
                let posting = &mut index.postings[id as usize];
                if posting.last() != Some(&position) {
                    posting.push(position);
                }
                id
            };
            let name_tokens = tokens(&item.name).into_iter().map(&mut intern).collect();
            let attribute_tokens =
                item.attributes.iter().flat_map(|(_, value)| tokens(value)).map(&mut intern).collect();
            let compact_sku = normalize(&item.sku).split_whitespace().collect::<String>();
            index.by_compact_sku.entry(compact_sku).or_default().push(position);
            index.entries.push(Entry { sku: item.sku, name_tokens, attribute_tokens });
        }
        index
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
        // similarity[q][word]: each query word against each distinct catalog word, computed once.
        let similarity: Vec<Vec<f32>> = query_tokens
            .iter()
            .map(|q| self.vocabulary.iter().map(|word| token_similarity(q, word)).collect())
            .collect();
        let mut candidate = vec![min_score <= 0.0; self.entries.len()];
        for row in &similarity {
            for (word, s) in row.iter().enumerate() {
                if *s > 0.0 {
                    for position in &self.postings[word] {
                        candidate[*position as usize] = true;
                    }
                }
            }
        }
        let exact_sku = self.by_compact_sku.get(&query_tokens.concat());
        let mut covered = Vec::new();
        let mut matches: Vec<Match<'_>> = Vec::new();
        for (position, entry) in self.entries.iter().enumerate() {
            let is_exact_sku = exact_sku.is_some_and(|found| found.contains(&(position as u32)));
            if !candidate[position] && !is_exact_sku {
                continue;
            }
            let score = if is_exact_sku { 1.0 } else { score(&similarity, entry, &mut covered) };
            if score >= min_score {
                matches.push(Match { sku: &entry.sku, score });
            }
        }
        matches.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.sku.cmp(b.sku)));
        matches.truncate(limit);
        matches
    }
}

/// Per query word, the best similarity to any of the item's words (attribute words count 0.6);
/// mixed with how much of the item's name the query covered.
fn score(similarity: &[Vec<f32>], entry: &Entry, covered: &mut Vec<bool>) -> f32 {
    covered.clear();
    covered.resize(entry.name_tokens.len(), false);
    let mut query_total = 0.0;
    for row in similarity {
        let mut best = 0.0f32;
        let mut best_name = None;
        for (index, word) in entry.name_tokens.iter().enumerate() {
            let s = row[*word as usize];
            if s > best {
                best = s;
                best_name = Some(index);
            }
        }
        for word in &entry.attribute_tokens {
            let s = 0.6 * row[*word as usize];
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
    let query_score = query_total / similarity.len() as f32;
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
    if shorter < 3 {
        return 0.0;
    }
    let mut best: f32 = 0.0;
    if a.starts_with(b) || b.starts_with(a) {
        best = 0.75;
    }
    // Edits only count for words of 4+ letters. Lengths here are in bytes (up to 4 per char), so
    // this only skips pairs whose character counts surely differ by more than 2.
    if shorter >= 4 && a.len().abs_diff(b.len()) <= 2 * 4 {
        let distance = edit_distance(a, b);
        if distance <= 1 {
            best = best.max(0.8);
        }
        if shorter >= 7 && distance <= 2 {
            best = best.max(0.6);
        }
    }
    best
}

/// Longest word the edit distance is computed for; longer words only match exactly or by prefix.
const MAX_EDIT_LEN: usize = 32;

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), bounded to
/// short words so it stays cheap; `usize::MAX` when the lengths differ by more than 2.
fn edit_distance(a: &str, b: &str) -> usize {
    let mut a_chars = ['\0'; MAX_EDIT_LEN];
    let mut b_chars = ['\0'; MAX_EDIT_LEN];
    let (Some(a_len), Some(b_len)) = (fill(&mut a_chars, a), fill(&mut b_chars, b)) else {
        return usize::MAX;
    };
    if a_len.abs_diff(b_len) > 2 {
        return usize::MAX;
    }
    let (a, b) = (&a_chars[..a_len], &b_chars[..b_len]);
    let mut previous2 = [0usize; MAX_EDIT_LEN + 1];
    let mut previous = [0usize; MAX_EDIT_LEN + 1];
    let mut current = [0usize; MAX_EDIT_LEN + 1];
    for (j, cell) in previous.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
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

/// Copies the word's characters into `buffer`; `None` when it is longer than the buffer.
fn fill(buffer: &mut [char; MAX_EDIT_LEN], word: &str) -> Option<usize> {
    let mut len = 0;
    for c in word.chars() {
        *buffer.get_mut(len)? = c;
        len += 1;
    }
    Some(len)
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

    /// The ranking as first written: every item scored against the query, word by word.
    fn brute_force(items: &[IndexItem], query: &str, limit: usize, min_score: f32) -> Vec<(String, f32)> {
        let query_tokens = tokens(query);
        if query_tokens.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(String, f32)> = items
            .iter()
            .filter_map(|item| {
                let compact_sku: String = normalize(&item.sku).split_whitespace().collect();
                let name = tokens(&item.name);
                let attributes: Vec<String> = item.attributes.iter().flat_map(|(_, v)| tokens(v)).collect();
                let score = if compact_sku == query_tokens.concat() {
                    1.0
                } else {
                    let mut covered = vec![false; name.len()];
                    let mut total = 0.0;
                    for q in &query_tokens {
                        let (mut best, mut best_name) = (0.0f32, None);
                        for (i, word) in name.iter().enumerate() {
                            let s = token_similarity(q, word);
                            if s > best {
                                (best, best_name) = (s, Some(i));
                            }
                        }
                        for word in &attributes {
                            let s = 0.6 * token_similarity(q, word);
                            if s > best {
                                (best, best_name) = (s, None);
                            }
                        }
                        if let Some(i) = best_name {
                            covered[i] = true;
                        }
                        total += best;
                    }
                    let coverage = if covered.is_empty() {
                        0.0
                    } else {
                        covered.iter().filter(|c| **c).count() as f32 / covered.len() as f32
                    };
                    0.7 * (total / query_tokens.len() as f32) + 0.3 * coverage
                };
                (score >= min_score).then(|| (item.sku.clone(), score))
            })
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        found.truncate(limit);
        found
    }

    #[test]
    fn the_inverted_index_ranks_exactly_as_scoring_every_item() {
        let styles = ["Twisted", "Dainty", "Vintage", "Boho", "Royal", "Crème", "Ocean"];
        let materials = ["Gold", "Silver", "Rose Gold", "Pearl", "Leather", "Linen"];
        let kinds = ["Hoop Earrings", "Chain Necklace", "Beaded Bracelet", "Tote Bag", "T-Shirt", "Brooch"];
        let colours = ["black", "blue", "gold", "white"];
        let items: Vec<IndexItem> = (0..1500)
            .map(|i| {
                let kind = kinds[i % kinds.len()];
                let material = materials[(i / kinds.len()) % materials.len()];
                let style = styles[(i / (kinds.len() * materials.len())) % styles.len()];
                let size = ["5", "7", "M", "XL"][i % 4];
                item(
                    &format!("{}-{i:04}", &kind[..3].to_uppercase()),
                    &format!("{style} {material} {kind}"),
                    &[("size", size), ("colour", colours[(i * 3) % colours.len()])],
                )
            })
            .collect();
        let index = CatalogIndex::new(items.clone());
        let queries = [
            "gold hoop",
            "twisted gold hoops size 7",
            "silvr chian necklace",
            "rose gold",
            "creme brooch",
            "blue tee XL",
            "leathr tote",
            "HOO-0006",
            "brac",
            "nothing like it",
            "",
        ];
        for query in queries {
            for (limit, min_score) in [(10, 0.35), (3, 0.6), (2000, 0.0)] {
                let expected = brute_force(&items, query, limit, min_score);
                let found: Vec<(String, f32)> =
                    index.search(query, limit, min_score).into_iter().map(|m| (m.sku.to_string(), m.score)).collect();
                assert_eq!(found, expected, "{query} limit {limit} min {min_score}");
            }
        }
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
