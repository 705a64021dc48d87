//! Layer 0, the bottom, imported by every area and importing none: client
//! addresses and address lists, random tokens, secret comparison.

pub mod address;
pub mod random;
pub mod secret;
pub mod words;

pub use random::{random_alphanumeric, random_token};
pub use secret::secrets_match;
