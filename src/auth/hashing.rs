//! Argon2id for passwords and dashboard keys, always on the blocking pool
//! and behind a semaphore, so hashing can neither stall the async workers
//! nor take every core when many never-seen keys arrive at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use tracing::Instrument;

#[derive(Debug)]
pub struct Hasher {
    permits: Semaphore,
    verifications: AtomicU64,
    dummy_hash: OnceLock<String>,
}

impl Hasher {
    /// At most `concurrency` hashes run at once.
    pub fn new(concurrency: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(concurrency.max(1)),
            verifications: AtomicU64::new(0),
            dummy_hash: OnceLock::new(),
        })
    }

    /// Half the cores (at least one): hashing is pure CPU work, and the
    /// other half keeps serving requests while a burst of new keys arrives.
    pub fn for_this_machine() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new((cores / 2).max(1))
    }

    /// How many argon2 verifications this process has run.
    pub fn verification_count(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .in_current_span()
            .await
            .context("a hashing task failed")
    }

    /// An argon2id PHC string for `secret`, with a fresh salt.
    pub async fn hash(&self, secret: &SecretString) -> anyhow::Result<String> {
        let secret = secret.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|err| anyhow::anyhow!("argon2 hashing failed: {err}"))
        })
        .await?
    }

    /// Whether `secret` matches `phc`; a malformed stored hash is an error.
    pub async fn verify(&self, secret: &SecretString, phc: &str) -> anyhow::Result<bool> {
        let secret = secret.clone();
        let phc = phc.to_owned();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.run(move || {
            let parsed = PasswordHash::new(&phc)
                .map_err(|err| anyhow::anyhow!("a stored hash is malformed: {err}"))?;
            let started = std::time::Instant::now();
            let matched = Argon2::default()
                .verify_password(secret.expose_secret().as_bytes(), &parsed)
                .is_ok();
            crate::metrics::argon2_verification(matched, started.elapsed());
            Ok(matched)
        })
        .await?
    }

    /// The hash unknown user names are checked against, made once.
    pub async fn dummy_hash(&self) -> anyhow::Result<String> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash.clone());
        }
        let hash = self
            .hash(&SecretString::from("portico-dummy-password"))
            .await?;
        Ok(self.dummy_hash.get_or_init(|| hash).clone())
    }

    /// Spends the time of one verification and fails, so that an unknown
    /// user name costs what a wrong password does.
    pub async fn verify_dummy(&self, secret: &SecretString) -> anyhow::Result<bool> {
        let dummy = self.dummy_hash().await?;
        self.verify(secret, &dummy).await.map(|_| false)
    }
}
