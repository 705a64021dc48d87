//! Code-aware tokens for the built-in engine: identifiers are split at
//! `snake_case` and `camelCase` boundaries, lower-cased, lightly stemmed,
//! and English filler words are dropped.

use std::sync::LazyLock;

const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
    "could", "do", "doe", "does", "done", "for", "from", "get", "got", "had", "has", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our",
    "please", "should", "so", "some", "tell", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "us", "wa", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// A word of at most 8 bytes as a number (no word holds a NUL byte, so
/// distinct words give distinct numbers).
fn packed(word: &str) -> Option<u64> {
    let bytes = word.as_bytes();
    (bytes.len() <= 8).then(|| {
        let mut key = [0u8; 8];
        key[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(key)
    })
}

/// The stop words packed and sorted: a look-up compares integers.
static STOP_KEYS: LazyLock<Vec<u64>> = LazyLock::new(|| {
    let mut keys: Vec<u64> = STOP_WORDS.iter().filter_map(|w| packed(w)).collect();
    keys.sort_unstable();
    keys
});

fn is_stop_word(word: &str) -> bool {
    packed(word).is_some_and(|key| STOP_KEYS.binary_search(&key).is_ok())
}

/// Lower-cases and lightly stems `part` into `word`; false for filler.
fn normalise(part: &str, word: &mut String) -> bool {
    word.clear();
    word.push_str(part);
    word.make_ascii_lowercase();
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word.pop();
    }
    word.len() >= 2 && !is_stop_word(word)
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

/// Calls `emit` with every token of `text`, in order.
pub fn for_each_token(text: &str, emit: impl FnMut(&str)) {
    Tokenizer::default().each(text, emit);
}

/// Buffers reused from text to text (the index tokenizes whole
/// repositories: no allocation per token or line).
#[derive(Default)]
pub struct Tokenizer {
    word: String,
    joined: String,
}

impl Tokenizer {
    /// Calls `emit` with every token of `text`, in order.
    pub fn each(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        let Self { word, joined } = self;
        let bytes = text.as_bytes();
        let mut at = 0;
        // Identifiers are runs of ASCII letters, digits and '_'; any other
        // byte (including every byte of a non-ASCII character) separates.
        while at < bytes.len() {
            let start = at;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            if start == at {
                at += 1;
                continue;
            }
            let mut parts = 0usize;
            joined.clear();
            split_identifier(&text[start..at], |part| {
                if normalise(part, word) {
                    emit(word);
                }
                // A part never holds '_' (each '_' is a boundary on both sides).
                parts += 1;
                joined.push_str(part);
            });
            if parts > 1 && normalise(joined, word) {
                emit(word);
            }
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
    fn every_stop_word_and_only_those_is_filler() {
        assert_eq!(STOP_KEYS.len(), STOP_WORDS.len());
        assert!(STOP_WORDS.iter().all(|w| is_stop_word(w)));
        for word in [
            "ab", "abouts", "thes", "wh", "pleased", "shoulder", "yourself",
        ] {
            assert!(!is_stop_word(word), "{word}");
        }
        assert_eq!(tokenize("Why would you do that?"), Vec::<String>::new());
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

    /// The first, simpler tokenizer (char by char, one string compare per
    /// stop-word probe): the faster one must emit exactly its tokens.
    fn reference_tokens(text: &str) -> Vec<String> {
        let normalise = |part: &str| -> Option<String> {
            let mut word: String = part.chars().map(|c| c.to_ascii_lowercase()).collect();
            if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
                word.pop();
            }
            (word.len() >= 2 && STOP_WORDS.binary_search(&word.as_str()).is_err()).then_some(word)
        };
        let mut tokens = Vec::new();
        for identifier in text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|s| !s.is_empty())
        {
            let (mut parts, mut joined) = (0, String::new());
            split_identifier(identifier, |part| {
                tokens.extend(normalise(part));
                if !part.starts_with('_') {
                    parts += 1;
                }
                joined.extend(part.chars().filter(|c| *c != '_'));
            });
            if parts > 1 {
                tokens.extend(normalise(&joined));
            }
        }
        tokens
    }

    proptest::proptest! {
        #[test]
        fn the_tokenizer_emits_what_the_reference_tokenizer_emits(
            text in "[a-zA-Z0-9_ .:()\\-éßЖ😀]{0,60}|(the|is|HTTPS|Request|_|s|Ss|[0-9]| ){0,20}"
        ) {
            proptest::prop_assert_eq!(tokenize(&text), reference_tokens(&text));
        }
    }
}
