//! What every instance on one Redis must agree on: secrets generated once
//! by whichever instance starts first (the others read the same value),
//! and the liveness probe behind `/api/health`.
//!
//! Redis may lose them while instances run (a Redis without persistence
//! restarted, a `FLUSHALL`): each instance then writes back the ones it
//! uses (`reassert_shared_secrets`, from the housekeeping tick), so a new
//! instance reads the same. If another instance stored different ones
//! first, this one cannot agree any more: it says so in the log and in
//! `/api/health` (503) rather than silently diverging.

use std::sync::LazyLock;
use std::time::Duration;

use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};

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

/// The shared secrets this instance took, and whether Redis now holds
/// different ones.
#[derive(Default)]
pub(super) struct HeldSecrets {
    values: Mutex<Vec<(String, SecretString)>>,
    /// The names of the secrets Redis holds with another value.
    conflict: Mutex<Vec<String>>,
}

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
        let mut held = self.held.values.lock();
        held.retain(|(held_name, _)| held_name != name);
        held.push((name.to_owned(), SecretString::from(value.clone())));
        Ok(SecretString::from(value))
    }

    /// Writes back every shared secret this instance uses unless Redis holds
    /// it (it lost its data); notes — and logs, once — those Redis holds
    /// with another value, which `secret_conflict` reports.
    pub async fn reassert_shared_secrets(&self) -> Result<(), StoreError> {
        let held: Vec<(String, SecretString)> = self.held.values.lock().clone();
        let mut conflict = Vec::new();
        for (name, value) in held {
            let stored: String = SET_ONCE
                .key(self.key(&format!("secret:{name}")))
                .arg(value.expose_secret())
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable("cannot write a shared secret back to Redis"))?;
            if stored != value.expose_secret() {
                conflict.push(name);
            }
        }
        let mut noted = self.held.conflict.lock();
        if conflict != *noted {
            if conflict.is_empty() {
                tracing::info!("Redis holds the shared secrets this instance uses again");
            } else {
                tracing::error!(
                    secrets = conflict.join(", "),
                    "Redis holds other shared secrets than this instance uses: Redis lost its \
                     data while this instance ran and another instance stored new ones. This \
                     instance reports itself unhealthy; restart it to take the stored ones"
                );
            }
            *noted = conflict;
        }
        Ok(())
    }

    /// Why this instance no longer agrees with Redis on its shared secrets
    /// (their names, never their values), if it does not.
    pub fn secret_conflict(&self) -> Option<String> {
        let noted = self.held.conflict.lock();
        (!noted.is_empty()).then(|| {
            format!(
                "Redis holds another {} than this instance uses (Redis lost its data while it \
                 ran): restart this instance",
                noted.join(", ")
            )
        })
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

    use super::super::{test_server, Redis};
    use crate::store::{StoreProbe, StoreState};

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

    /// Deletes every key of `redis`'s prefix: what `FLUSHALL` does to a
    /// deployment, without touching the tests running beside it.
    async fn lose_data(redis: &Redis) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", redis.prefix()))
            .query_async(&mut redis.conn())
            .await
            .unwrap();
        assert!(!keys.is_empty());
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut redis.conn())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn after_redis_lost_its_data_the_running_instances_write_their_secrets_back() {
        let a = test_server::connect("secrets-lost").await;
        let b = a.with_prefix(a.prefix());
        let first = a
            .shared_secret("session", || "first".to_owned())
            .await
            .unwrap();
        b.shared_secret("session", || "from-b".to_owned())
            .await
            .unwrap();
        lose_data(&a).await;
        a.reassert_shared_secrets().await.unwrap();
        b.reassert_shared_secrets().await.unwrap();
        let c = a.with_prefix(a.prefix());
        let third = c
            .shared_secret("session", || "from-c".to_owned())
            .await
            .unwrap();
        assert_eq!(third.expose_secret(), first.expose_secret());
        assert_eq!((a.secret_conflict(), b.secret_conflict()), (None, None));
        assert_eq!(
            StoreProbe::redis(a.clone()).state().await,
            StoreState::Redis
        );
    }

    #[tokio::test]
    async fn an_instance_whose_secret_redis_holds_with_another_value_is_unhealthy() {
        let a = test_server::connect("secrets-conflict").await;
        a.shared_secret("session", || "first".to_owned())
            .await
            .unwrap();
        lose_data(&a).await;
        // A new instance started before `a` wrote its secret back.
        let newer = a.with_prefix(a.prefix());
        newer
            .shared_secret("session", || "newer".to_owned())
            .await
            .unwrap();
        a.reassert_shared_secrets().await.unwrap();
        let reason = a.secret_conflict().expect("a conflict");
        assert!(
            reason.contains("session") && !reason.contains("newer"),
            "{reason}"
        );
        assert_eq!(
            StoreProbe::redis(a.clone()).state().await,
            StoreState::Diverged
        );
        newer.reassert_shared_secrets().await.unwrap();
        assert_eq!(newer.secret_conflict(), None);
    }
}
