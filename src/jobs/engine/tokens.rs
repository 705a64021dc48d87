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

fn normalise(part: &str) -> Option<String> {
    let mut word = part.to_ascii_lowercase();
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word.pop();
    }
    (word.len() >= 2 && STOP_WORDS.binary_search(&word.as_str()).is_err()).then_some(word)
}

/// Splits one identifier (`parseHTTPRequest`, `max_body_bytes`) into words.
fn split_identifier(identifier: &str) -> Vec<&str> {
    let bytes = identifier.as_bytes();
    let mut parts = Vec::new();
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
            let part = &identifier[start..i];
            if !part.is_empty() && part != "_" {
                parts.push(part);
            }
            start = i;
        }
    }
    parts
}

/// Calls `emit` with every token of `text`, in order.
pub fn for_each_token(text: &str, mut emit: impl FnMut(String)) {
    for identifier in text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|s| !s.is_empty())
    {
        let parts = split_identifier(identifier);
        for part in &parts {
            if let Some(word) = normalise(part) {
                emit(word);
            }
        }
        if parts.iter().filter(|p| !p.starts_with('_')).count() > 1 {
            let joined: String = parts.concat().replace('_', "");
            if let Some(word) = normalise(&joined) {
                emit(word);
            }
        }
    }
}

pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| tokens.push(token));
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
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
    }
}
