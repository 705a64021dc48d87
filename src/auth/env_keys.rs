//! `ADMIN_API_KEY` and `VALID_API_KEYS`, kept only as keyed digests and
//! compared in constant time, so neither the plaintext nor a timing
//! difference says anything about them. A client key's id is derived from
//! the key itself (a digest under a secret kept in the data directory), so
//! removing one entry changes no other client's id or jobs (SPEC §2).

use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::api_key::{same_digest, ApiKey, SecretDigester};
use super::principal::Principal;
use crate::store::write_atomic;

type Digest = [u8; 32];

/// Where the secret that keys the client ids lives, mode 0600.
const ID_SECRET_FILE: &str = "env-key-id-secret";
/// Hex digits of the digest shown in a client id: 48 bits.
const SHOWN_ID_DIGITS: usize = 12;

/// The secret client ids are derived under: kept in the data directory, so
/// an id stays the same across restarts and reveals nothing about a weak key.
pub struct KeyIdSecret(Digest);

impl KeyIdSecret {
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(ID_SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut secret = [0u8; 32];
                if let Some(parsed) = parse_hex(text.trim(), &mut secret) {
                    return Ok(Self(parsed));
                }
                anyhow::bail!(
                    "{} is damaged; delete it and restart (client ids of VALID_API_KEYS \
                     entries will change, so their earlier jobs will not be theirs)",
                    path.display()
                )
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let secret: Digest = rand::random();
                let text: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                write_atomic(&path, text.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(Self(secret))
            }
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// A new secret as the 64 hex digits it is kept as.
    pub fn generate_hex() -> String {
        let secret: Digest = rand::random();
        secret.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret from its 64 hex digits (shared through Redis, SPEC §7).
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let mut secret = [0u8; 32];
        parse_hex(text.trim(), &mut secret)
            .map(Self)
            .ok_or_else(|| anyhow::anyhow!("the shared env-key id secret in Redis is damaged"))
    }

    #[cfg(test)]
    fn fixed(byte: u8) -> Self {
        Self([byte; 32])
    }
}

fn parse_hex(text: &str, out: &mut Digest) -> Option<Digest> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        *slot = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(*out)
}

pub struct EnvKeys {
    digester: SecretDigester,
    admin: Option<u128>,
    clients: Vec<(u128, Principal)>,
    admin_principal: Principal,
}

impl EnvKeys {
    pub fn new(admin: Option<&SecretString>, clients: &[SecretString], ids: &KeyIdSecret) -> Self {
        let digester = SecretDigester::random();
        let digest = |secret: &SecretString| digester.digest(secret.expose_secret());
        Self {
            digester: digester.clone(),
            admin: admin.map(digest),
            clients: clients
                .iter()
                .map(|key| (digest(key), Principal::client_key(&client_id(key, ids))))
                .collect(),
            admin_principal: Principal::admin_key(),
        }
    }

    pub fn has_admin_key(&self) -> bool {
        self.admin.is_some()
    }

    pub fn client_key_count(&self) -> usize {
        self.clients.len()
    }

    /// The admin key first, then the client keys; every configured key is
    /// compared whatever matched earlier.
    pub fn find(&self, key: &ApiKey<'_>) -> Option<Principal> {
        let presented = self.digester.digest(key.expose());
        let admin = self
            .admin
            .is_some_and(|admin| same_digest(admin, presented));
        let mut client = None;
        for (digest, principal) in &self.clients {
            if same_digest(*digest, presented) && client.is_none() {
                client = Some(principal);
            }
        }
        if admin {
            Some(self.admin_principal.clone())
        } else {
            client.cloned()
        }
    }
}

/// The shortened keyed digest that names a client key.
fn client_id(key: &SecretString, ids: &KeyIdSecret) -> String {
    let digest = blake3::keyed_hash(&ids.0, key.expose_secret().as_bytes());
    digest.to_hex()[..SHOWN_ID_DIGITS].to_owned()
}

impl std::fmt::Debug for EnvKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvKeys")
            .field("admin", &self.admin.is_some())
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for KeyIdSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyIdSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str], ids: &KeyIdSecret) -> EnvKeys {
        let list: Vec<SecretString> = list.iter().map(|k| SecretString::from(*k)).collect();
        EnvKeys::new(None, &list, ids)
    }

    fn id_of(keys: &EnvKeys, key: &str) -> String {
        let key = ApiKey::parse(key).unwrap();
        keys.find(&key).unwrap().id.to_string()
    }

    #[test]
    fn a_client_id_depends_on_the_key_and_the_secret_not_the_position() {
        let ids = KeyIdSecret::fixed(7);
        let both = keys(&["key-a", "key-b"], &ids);
        let only_b = keys(&["key-b"], &ids);
        assert_eq!(id_of(&both, "key-b"), id_of(&only_b, "key-b"));
        assert_ne!(id_of(&both, "key-a"), id_of(&both, "key-b"));
        let other_secret = keys(&["key-b"], &KeyIdSecret::fixed(8));
        assert_ne!(id_of(&other_secret, "key-b"), id_of(&only_b, "key-b"));
    }

    #[test]
    fn the_id_secret_survives_a_restart_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = KeyIdSecret::load_or_create(dir.path()).unwrap();
        let again = KeyIdSecret::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0);
        let mode = std::fs::metadata(dir.path().join(ID_SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(format!("{first:?}"), "KeyIdSecret([redacted])");
    }
}
