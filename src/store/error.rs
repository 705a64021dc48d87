//! `StoreError`: what any store back end (files today, Redis next) can
//! report. Callers map `Unavailable` to 503 `store-unavailable`, as for a
//! full or read-only disk; `Conflict` means the record changed between
//! the read and the write, and the caller reads again and retries.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The back end could not be read or written (I/O, a server that is
    /// down). The context names the file or operation, for the log only.
    #[error("{context}")]
    Unavailable {
        context: String,
        #[source]
        source: anyhow::Error,
    },
    /// A compare-and-swap found another version than the one expected, or
    /// a create found the record there already.
    #[error("the record was changed by another request")]
    Conflict,
}

/// Whether a failure came from Redis (an error of the `redis` crate
/// anywhere in its chain): the message a user sees then names Redis
/// rather than the data directory.
pub fn from_redis(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<redis::RedisError>())
}

/// Whether an error is, somewhere in its chain, a store that could not be
/// used (`StoreError::Unavailable`, or Redis itself): such errors answer
/// 503, never 500.
pub fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StoreError>(),
            Some(StoreError::Unavailable { .. })
        ) || cause.is::<redis::RedisError>()
    })
}

impl StoreError {
    /// Counted in `portico_store_errors_total`, as a failed file write is.
    pub fn unavailable(context: impl Into<String>, source: impl Into<anyhow::Error>) -> Self {
        crate::metrics::store_error();
        Self::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }
}
