//! Argon2id for passwords and dashboard keys on a small pool of dedicated
//! threads, so hashing can neither stall the async workers nor take every
//! core when many never-seen keys arrive at once.
//!
//! Written by hand because no crate does the part that matters here: each
//! thread allocates argon2's 19 MiB working memory once and reuses it for
//! every hash (`hash_password_into_with_memory`). Hashing on tokio's
//! blocking pool instead left a freed 19 MiB block in the malloc arena of
//! every blocking thread that ever ran one, and that pool grows with load:
//! 48 concurrent key generations pinned over 400 MiB. Here the memory
//! hashing can hold is `threads × 19 MiB`, whatever the number of hashes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Context};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, Semaphore};

/// Work for a hashing thread: runs with that thread's memory blocks.
type Work = Box<dyn FnOnce(&mut [Block]) + Send>;

#[derive(Debug)]
pub struct Hasher {
    /// One permit per thread: a hash waits here, on the async side, rather
    /// than in the channel.
    permits: Semaphore,
    jobs: mpsc::Sender<Work>,
    verifications: AtomicU64,
    dummy_hash: OnceLock<String>,
}

impl Hasher {
    /// A pool of `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Arc<Self> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Work>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("portico-argon2-{index}"))
                .spawn(move || hashing_thread(&receiver))
                .expect("the operating system starts a hashing thread");
        }
        Arc::new(Self {
            permits: Semaphore::new(threads),
            jobs: sender,
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

    /// Runs `work` on a hashing thread, keeping the caller's tracing span.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Work = Box::new(move |blocks| {
            let _ = done.send(span.in_scope(|| work(blocks)));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the hashing threads have stopped"))?;
        result.await.context("a hashing task failed")
    }

    /// An argon2id PHC string for `secret`, with a fresh salt.
    pub async fn hash(&self, secret: &SecretString) -> anyhow::Result<String> {
        let secret = secret.clone();
        self.run(move |blocks| hash_with(blocks, secret.expose_secret().as_bytes()))
            .await?
    }

    /// Whether `secret` matches `phc`; a malformed stored hash is an error.
    pub async fn verify(&self, secret: &SecretString, phc: &str) -> anyhow::Result<bool> {
        let secret = secret.clone();
        let phc = phc.to_owned();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.run(move |blocks| {
            let started = std::time::Instant::now();
            let matched = verify_with(blocks, secret.expose_secret().as_bytes(), &phc);
            if let Ok(matched) = matched {
                crate::metrics::argon2_verification(matched, started.elapsed());
            }
            matched
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

/// Takes work until the hasher is dropped. The blocks are allocated on the
/// first job and kept for the thread's life.
fn hashing_thread(receiver: &Mutex<mpsc::Receiver<Work>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let next = receiver.lock().recv();
        let Ok(work) = next else { return };
        if blocks.is_empty() {
            blocks = vec![Block::default(); Params::DEFAULT_M_COST as usize];
        }
        work(&mut blocks);
    }
}

/// Argon2id with the crate's default (OWASP) parameters: 19 MiB, t=2, p=1.
fn hash_with(blocks: &mut [Block], secret: &[u8]) -> anyhow::Result<String> {
    let argon2 = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|err| anyhow!("argon2 salt: {err}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(secret, salt_bytes, &mut out, blocks)
        .map_err(|err| anyhow!("argon2 hashing failed: {err}"))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())
            .map_err(|err| anyhow!("argon2 parameters: {err}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|err| anyhow!("argon2 output: {err}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash's argon2id with its own parameters in the
/// thread's blocks. Parameters asking for more memory than the pool keeps
/// are refused as malformed: a hand-edited file cannot make one
/// verification allocate without bound.
fn verify_with(blocks: &mut [Block], secret: &[u8], phc: &str) -> anyhow::Result<bool> {
    let malformed = |what: &dyn std::fmt::Display| anyhow!("a stored hash is malformed: {what}");
    let parsed = PasswordHash::new(phc).map_err(|err| malformed(&err))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(malformed(&"not argon2id"));
    }
    let params = Params::try_from(&parsed).map_err(|err| malformed(&err))?;
    if params.block_count() > blocks.len() {
        return Err(malformed(&"it asks for more memory than Portico uses"));
    }
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|err| malformed(&err))?
        .unwrap_or_default();
    let expected = parsed.hash.ok_or_else(|| malformed(&"no hash"))?;
    let salt = parsed.salt.ok_or_else(|| malformed(&"no salt"))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|err| malformed(&err))?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(secret, salt_bytes, out, blocks)
        .map_err(|err| malformed(&err))?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(out).map_err(|err| malformed(&err))? == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn blocks() -> Vec<Block> {
        vec![Block::default(); Params::DEFAULT_M_COST as usize]
    }

    #[test]
    fn pool_hashes_are_standard_phc_strings_the_argon2_crate_verifies() {
        let phc = hash_with(&mut blocks(), b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse", &parsed)
            .is_err());
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_in_reused_blocks() {
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        let mut blocks = blocks();
        // The same blocks, dirty from other work, give the same answers.
        hash_with(&mut blocks, b"something else").unwrap();
        assert!(verify_with(&mut blocks, b"battery staple", &phc).unwrap());
        assert!(!verify_with(&mut blocks, b"battery stapler", &phc).unwrap());
        assert!(verify_with(&mut blocks, b"battery staple", &phc).unwrap());
    }

    #[test]
    fn malformed_or_oversized_stored_hashes_are_errors() {
        let mut blocks = blocks();
        for phc in [
            "not a hash",
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let err = verify_with(&mut blocks, b"x", phc).unwrap_err();
            assert!(err.to_string().contains("malformed"), "{phc}: {err}");
        }
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies_from_async_code_and_counts_verifications() {
        let hasher = Hasher::new(2);
        let secret = SecretString::from("a password of some length");
        let phc = hasher.hash(&secret).await.unwrap();
        let checks = (0..4).map(|i| {
            let hasher = hasher.clone();
            let phc = phc.clone();
            let guess = if i % 2 == 0 {
                "a password of some length"
            } else {
                "a wrong password"
            };
            tokio::spawn(async move { hasher.verify(&SecretString::from(guess), &phc).await })
        });
        let mut results = Vec::new();
        for check in checks {
            results.push(check.await.unwrap().unwrap());
        }
        assert_eq!(results, vec![true, false, true, false]);
        assert_eq!(hasher.verification_count(), 4);
    }
}
