//! The deterministic order parser: free text ("2 gold hoops size 7 and the silver chain pls",
//! "1x ring M, 3 x bracelet") into lines of quantity, product words and variant hints.
//!
//! It only reads the text; matching the words against the catalog is the matcher's job. A parser
//! trait lets an LLM-backed parser slot in later; this one stays the default and the fallback.

/// What a parser returns for one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedMessage {
    pub lines: Vec<ParsedLine>,
    /// A question ("do you have the silver chain?") is not an order, whatever it names.
    pub is_question: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// The part of the message this line came from.
    pub original: String,
    pub quantity: i64,
    /// Whether the quantity was written (a digit, a word, a multiplier) rather than assumed.
    pub explicit_quantity: bool,
    /// The words naming the product, hints included.
    pub product: String,
    pub hints: Hints,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hints {
    pub size: Option<String>,
    pub colour: Option<String>,
    pub material: Option<String>,
}

/// Any parser of order messages (the deterministic one here; an LLM-backed one later).
pub trait OrderParser: Send + Sync {
    fn parse(&self, text: &str) -> ParsedMessage;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DeterministicParser;

impl OrderParser for DeterministicParser {
    fn parse(&self, text: &str) -> ParsedMessage {
        parse(text)
    }
}

const NUMBER_WORDS: &[(&str, i64)] = &[
    ("a", 1),
    ("an", 1),
    ("one", 1),
    ("single", 1),
    ("two", 2),
    ("couple", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("dozen", 12),
];

const COLOURS: &[&str] = &[
    "gold",
    "silver",
    "rose",
    "black",
    "white",
    "red",
    "blue",
    "navy",
    "green",
    "pink",
    "purple",
    "yellow",
    "orange",
    "brown",
    "beige",
    "grey",
    "gray",
    "cream",
    "teal",
    "turquoise",
    "burgundy",
    "nude",
    "multicolour",
    "multicolor",
];

const MATERIALS: &[&str] = &[
    "gold", "silver", "sterling", "leather", "cotton", "silk", "linen", "wool", "denim", "steel", "titanium", "pearl",
    "beaded", "wooden", "ceramic", "plastic",
];

const LETTER_SIZES: &[&str] = &["xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl", "2xl", "3xl"];

/// Words that open a message or a line but name nothing.
const FILLERS: &[&str] = &[
    "hi", "hello", "hey", "hiya", "pls", "please", "plz", "thanks", "thank", "you", "i", "want", "wanna", "would",
    "like", "id", "i'd", "need", "can", "could", "get", "me", "send", "order", "ordering", "to", "also", "and", "the",
    "of", "some", "just", "for", "ok", "okay", "yes", "my", "take", "buy", "have", "will", "i'll", "ill", "gimme",
    "give", "us",
];

const QUESTION_OPENERS: &[&str] =
    &["do", "does", "is", "are", "how", "what", "when", "where", "which", "why", "who", "whats", "what's", "any"];

/// Phrases that make a message an inquiry even when it names a quantity ("how much for 2…").
const INQUIRY_MARKERS: &[&str] =
    &["how much", "price of", "price for", "what price", "cost", "in stock", "available", "do you ship"];

fn number_word(word: &str) -> Option<i64> {
    NUMBER_WORDS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n)
}

/// Splits a message into candidate item segments.
fn segments(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase();
    let mut unified = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        match c {
            '\n' | ';' | '&' | '+' | '•' | '|' => unified.push(','),
            '!' | '?' => unified.push(' '),
            c => unified.push(c),
        }
    }
    let mut out = Vec::new();
    for part in unified.split(',') {
        // "and", "plus", "also" join items: "gold hoops and the silver chain".
        let words: Vec<&str> = part.split_whitespace().collect();
        let mut current: Vec<&str> = Vec::new();
        for word in words {
            if matches!(word, "and" | "plus" | "also" | "with") && !current.is_empty() {
                out.push(current.join(" "));
                current.clear();
            } else {
                current.push(word);
            }
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
    }
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// `2x`, `x2`, `2pcs`, `3pc` as a quantity.
fn multiplier(token: &str) -> Option<i64> {
    let stripped = token
        .strip_suffix("pcs")
        .or_else(|| token.strip_suffix("pc"))
        .or_else(|| token.strip_suffix('x'))
        .or_else(|| token.strip_prefix('x'));
    stripped.filter(|s| !s.is_empty() && s.len() <= 4).and_then(|s| s.parse().ok())
}

fn parse_segment(segment: &str) -> Option<ParsedLine> {
    let mut tokens: Vec<String> = segment
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'').to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let mut hints = Hints::default();

    // Sizes first, so "size 7" never reads as a quantity.
    let mut index = 0;
    while index < tokens.len() {
        let token = tokens[index].as_str();
        if matches!(token, "size" | "sz" | "sizes") && index + 1 < tokens.len() {
            hints.size = Some(tokens[index + 1].to_uppercase());
            tokens.drain(index..index + 2);
            continue;
        }
        if let Some(size) =
            token.strip_prefix("size").or_else(|| token.strip_prefix("sz")).filter(|s| !s.is_empty() && s.len() <= 3)
        {
            hints.size = Some(size.to_uppercase());
            tokens.remove(index);
            continue;
        }
        index += 1;
    }
    // A trailing letter size: "ring M", "tee xl".
    if tokens.len() >= 2
        && let Some(last) = tokens.last()
        && LETTER_SIZES.contains(&last.as_str())
        && hints.size.is_none()
    {
        hints.size = tokens.pop().map(|s| s.to_uppercase());
    }

    // Quantity: a multiplier anywhere, else a leading number or number word, else a trailing one.
    let mut quantity = None;
    if let Some(position) = tokens.iter().position(|t| multiplier(t).is_some()) {
        quantity = multiplier(&tokens[position]);
        tokens.remove(position);
    } else if let Some(position) = tokens.iter().position(|t| t == "x") {
        // "3 x bracelet" / "bracelet x 3"
        let before = position.checked_sub(1).and_then(|p| tokens[p].parse::<i64>().ok().map(|n| (p, n)));
        let after = tokens.get(position + 1).and_then(|t| t.parse::<i64>().ok()).map(|n| (position + 1, n));
        if let Some((at, n)) = before.or(after) {
            quantity = Some(n);
            let (low, high) = if at < position { (at, position) } else { (position, at) };
            tokens.drain(low..=high);
        }
    }
    if quantity.is_none() {
        // The first number, or number word, names the quantity; words before it ("I saw your
        // post, I want 2 …") are not the product unless nothing follows the number.
        let position = tokens
            .iter()
            .position(|t| t.parse::<i64>().is_ok() || number_word(t).is_some_and(|_| t != "a" && t != "an"));
        let position = position.or_else(|| {
            let first_content = tokens.iter().position(|t| !FILLERS.contains(&t.as_str()))?;
            matches!(tokens[first_content].as_str(), "a" | "an").then_some(first_content)
        });
        if let Some(position) = position {
            let token = tokens[position].clone();
            let mut n = token.parse::<i64>().ok().or_else(|| number_word(&token)).unwrap_or(1);
            let mut end = position + 1;
            // "a dozen", "2 dozen", "a couple of", "half dozen".
            if let Some(factor) = tokens.get(end).and_then(|t| number_word(t)).filter(|f| *f > 1) {
                n *= factor;
                end += 1;
            }
            if tokens.get(end).is_some_and(|t| t == "of") {
                end += 1;
            }
            let after_has_product = tokens[end..].iter().any(|t| !FILLERS.contains(&t.as_str()));
            if after_has_product {
                tokens.drain(..end);
            } else {
                tokens.drain(position..end);
            }
            quantity = Some(n);
        } else if let Some(position) = tokens.iter().position(|t| t == "half")
            && tokens.get(position + 1).is_some_and(|t| t == "dozen")
        {
            quantity = Some(6);
            tokens.drain(position..position + 2);
        }
    }
    let product: Vec<String> =
        tokens.into_iter().filter(|t| !FILLERS.contains(&t.as_str()) && !matches!(t.as_str(), "a" | "an")).collect();
    if product.is_empty() {
        return None;
    }
    hints.colour = product.iter().find(|t| COLOURS.contains(&t.as_str())).cloned();
    hints.material = product.iter().find(|t| MATERIALS.contains(&t.as_str())).cloned();
    let explicit = quantity.is_some();
    Some(ParsedLine {
        original: segment.to_string(),
        quantity: quantity.filter(|n| (1..=10_000).contains(n)).unwrap_or(1),
        explicit_quantity: explicit,
        product: product.join(" "),
        hints,
    })
}

/// Parses one message.
pub fn parse(text: &str) -> ParsedMessage {
    let trimmed = text.trim();
    let lowered = trimmed.to_lowercase();
    // The first word that is not a greeting or a "pls" says whether it opens a question.
    let first_word = lowered
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
        .find(|w| {
            !w.is_empty()
                && !matches!(
                    *w,
                    "hi" | "hello"
                        | "hey"
                        | "pls"
                        | "please"
                        | "plz"
                        | "abeg"
                        | "dear"
                        | "ma"
                        | "sir"
                        | "good"
                        | "morning"
                        | "afternoon"
                        | "evening"
                )
        })
        .unwrap_or_default()
        .to_string();
    let asks_to_order =
        ["can i get", "could i get", "can i have", "could i have", "can i order", "can you send", "could you send"]
            .iter()
            .any(|p| lowered.contains(p));
    let opens_like_question = QUESTION_OPENERS.contains(&first_word.as_str());
    let inquiry = INQUIRY_MARKERS.iter().any(|m| lowered.contains(m));
    let lines: Vec<ParsedLine> = segments(trimmed).iter().filter_map(|s| parse_segment(s)).collect();
    let any_explicit = lines.iter().any(|l| l.explicit_quantity);
    let is_question = !asks_to_order && (inquiry || ((trimmed.ends_with('?') || opens_like_question) && !any_explicit));
    ParsedMessage { lines, is_question }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, index: usize) -> ParsedLine {
        parse(message)
            .lines
            .get(index)
            .cloned()
            .unwrap_or_else(|| panic!("no line {index} in {message:?}: {:?}", parse(message)))
    }

    #[test]
    fn quantities_in_their_many_spellings() {
        let table = [
            ("2 gold hoops", 2, "gold hoops"),
            ("gold hoops x2", 2, "gold hoops"),
            ("2x gold hoops", 2, "gold hoops"),
            ("3 x bracelet", 3, "bracelet"),
            ("bracelet x 3", 3, "bracelet"),
            ("two silver chains", 2, "silver chains"),
            ("a ring", 1, "ring"),
            ("silver chain", 1, "silver chain"),
            ("4pcs scrunchies", 4, "scrunchies"),
            ("a dozen cupcakes", 12, "cupcakes"),
            ("pls can i get 2 of the gold hoops", 2, "gold hoops"),
        ];
        for (message, quantity, product) in table {
            let parsed = line(message, 0);
            assert_eq!((parsed.quantity, parsed.product.as_str()), (quantity, product), "{message}");
        }
    }

    #[test]
    fn sizes_are_hints_not_quantities() {
        let parsed = line("2 gold hoops size 7", 0);
        assert_eq!(parsed.quantity, 2);
        assert_eq!(parsed.hints.size.as_deref(), Some("7"));
        assert_eq!(parsed.product, "gold hoops");
        assert_eq!(parsed.hints.colour.as_deref(), Some("gold"));
        assert_eq!(line("1x ring M", 0).hints.size.as_deref(), Some("M"));
        assert_eq!(line("tee sz L", 0).hints.size.as_deref(), Some("L"));
    }

    #[test]
    fn several_items_per_message_and_per_line() {
        let parsed = parse("2 gold hoops size 7 and the silver chain pls");
        assert_eq!(parsed.lines.len(), 2);
        assert_eq!(parsed.lines[1].product, "silver chain");
        let parsed = parse("1x ring M, 3 x bracelet\n2 anklets");
        let summary: Vec<(i64, &str)> = parsed.lines.iter().map(|l| (l.quantity, l.product.as_str())).collect();
        assert_eq!(summary, vec![(1, "ring"), (3, "bracelet"), (2, "anklets")]);
    }

    #[test]
    fn questions_and_chitchat_are_not_orders() {
        assert!(parse("do you have the silver chain?").is_question);
        assert!(parse("is the gold hoop in stock").is_question);
        assert!(!parse("can i get 2 gold hoops?").is_question, "an order phrased as a question is an order");
        assert!(parse("hi").lines.is_empty());
        assert!(parse("thanks!!").lines.is_empty());
    }
}
