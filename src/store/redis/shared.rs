//! What every instance on one Redis must agree on: secrets generated once
//! by whichever instance starts first (the others read the same value),
//! and the liveness probe behind `/api/health`.

use std::sync::LazyLock;
use std::time::Duration;

use secrecy::SecretString;

use super::{unavailable, Redis};
use crate::store::StoreError;

/// How long the health probe waits for `PING` before calling Redis
/// unavailable: a balancer's check must not hang.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Sets KEYS[1] to ARGV[1] unless it exists; returns its value.
static SET_ONCE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        return redis.call('GET', KEYS[1])
        ",
    )
});

impl Redis {
    /// The secret `name` of this deployment: `make()` stored by the first
    /// instance that asks (atomically, so two starting at once agree), the
    /// stored one afterwards. It never expires.
    pub async fn shared_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<SecretString, StoreError> {
        let value: String = SET_ONCE
            .key(self.key(&format!("secret:{name}")))
            .arg(make())
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable("cannot read a shared secret from Redis"))?;
        Ok(SecretString::from(value))
    }

    /// Whether the secret `name` is set already.
    pub async fn has_shared_secret(&self, name: &str) -> Result<bool, StoreError> {
        redis::cmd("EXISTS")
            .arg(self.key(&format!("secret:{name}")))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable("cannot read a shared secret from Redis"))
    }

    /// Whether Redis answers now, within a second.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let answer = tokio::time::timeout(
            PING_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut self.conn()),
        )
        .await;
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(StoreError::unavailable("Redis does not answer PING", err)),
            Err(elapsed) => Err(StoreError::unavailable(
                "Redis did not answer PING within a second",
                elapsed,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::test_server;

    #[tokio::test]
    async fn the_first_instance_sets_a_shared_secret_and_every_other_reads_it() {
        let redis = test_server::connect("shared-secret").await;
        let other = redis.with_prefix(redis.prefix());
        let (a, b) = tokio::join!(
            redis.shared_secret("session", || "from-a".to_owned()),
            other.shared_secret("session", || "from-b".to_owned()),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.expose_secret(), b.expose_secret());
        let later = redis
            .shared_secret("session", || "from-c".to_owned())
            .await
            .unwrap();
        assert_eq!(later.expose_secret(), a.expose_secret());
        let elsewhere = redis.with_prefix("another-deployment");
        let own = elsewhere
            .shared_secret("session", || "own".to_owned())
            .await
            .unwrap();
        assert_eq!(own.expose_secret(), "own");
        redis.ping().await.unwrap();
    }
}
