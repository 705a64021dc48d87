//! The contract of each store trait, as generic async checks. Each takes
//! `open`, which opens the store kept at a place (a data directory for the
//! file back ends; a Redis back end maps it to a key prefix), so opening it
//! again checks what survives a restart; and `fail_writes`, which makes
//! writes at that place fail (`true`) or work again (`false`), so the
//! checks see that a failed write changes nothing. Every back end runs
//! them: the file back ends in `cargo test --lib`, Redis next (issue 15).

pub mod activity;
pub mod keys;
pub mod sessions;
pub mod users;
pub mod workspaces;

use std::path::Path;

/// Makes the file back ends' writes below `dir` fail or work again.
pub fn fail_file_writes(dir: &Path, failing: bool) {
    super::inject_write_fault(dir, failing);
}
