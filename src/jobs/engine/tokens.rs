//! Code-aware tokens for the built-in engine: identifiers are split at
//! `snake_case` and `camelCase` boundaries, lower-cased, lightly stemmed,
//! and English filler words are dropped.

const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
    "could", "do", "doe", "does", "done", "for", "from", "get", "got", "had", "has", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our",
    "please", "should", "so", "some", "tell", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "us", "wa", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// Lower-cases and lightly stems `part` into `word`; false for filler.
fn normalise(part: &str, word: &mut String) -> bool {
    word.clear();
    word.push_str(part);
    word.make_ascii_lowercase();
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word.pop();
    }
    // No stop word is longer than 6 bytes.
    word.len() >= 2 && (word.len() > 6 || STOP_WORDS.binary_search(&word.as_str()).is_err())
}

/// Splits one identifier (`parseHTTPRequest`, `max_body_bytes`) into
/// words, calling `part` with each in order.
fn split_identifier<'a>(identifier: &'a str, mut part: impl FnMut(&'a str)) {
    let bytes = identifier.as_bytes();
    let mut start = 0;
    for i in 1..=bytes.len() {
        let boundary = i == bytes.len()
            || bytes[i] == b'_'
            || bytes[i - 1] == b'_'
            || (bytes[i - 1].is_ascii_lowercase() && bytes[i].is_ascii_uppercase())
            || (bytes[i - 1].is_ascii_alphabetic() != bytes[i].is_ascii_alphabetic())
            || (i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_uppercase()
                && bytes[i].is_ascii_uppercase()
                && bytes[i + 1].is_ascii_lowercase());
        if boundary {
            let piece = &identifier[start..i];
            if !piece.is_empty() && piece != "_" {
                part(piece);
            }
            start = i;
        }
    }
}

/// Calls `emit` with every token of `text`, in order, reusing one buffer
/// (the index tokenizes whole repositories: no allocation per token).
pub fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
    let mut word = String::new();
    let mut joined = String::new();
    for identifier in text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|s| !s.is_empty())
    {
        let mut parts = 0usize;
        joined.clear();
        split_identifier(identifier, |part| {
            if normalise(part, &mut word) {
                emit(&word);
            }
            // A part never holds '_' (each '_' is a boundary on both sides).
            parts += 1;
            joined.push_str(part);
        });
        if parts > 1 && normalise(&joined, &mut word) {
            emit(&word);
        }
    }
}

pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| tokens.push(token.to_owned()));
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_words_are_sorted_for_binary_search_and_short() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOP_WORDS.iter().all(|w| w.len() <= 6));
    }

    #[test]
    fn identifiers_are_split_at_case_and_underscore_boundaries() {
        assert_eq!(
            tokenize("parseHTTPRequest"),
            ["parse", "http", "request", "parsehttprequest"]
        );
        assert_eq!(
            tokenize("max_body_bytes"),
            ["max", "body", "byte", "maxbodybyte"]
        );
        assert_eq!(
            tokenize("Where is the RateLimiter?"),
            ["rate", "limiter", "ratelimiter"]
        );
        assert_eq!(tokenize("sha256 v2"), ["sha", "256", "sha256", "v2"]);
        assert_eq!(
            tokenize("__init__ HTTPS_Sockets été"),
            ["init", "http", "socket", "httpssocket"]
        );
    }
}
