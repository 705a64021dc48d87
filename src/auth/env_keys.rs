//! `ADMIN_API_KEY` and `VALID_API_KEYS`, kept only as keyed digests and
//! compared in constant time, so neither the plaintext nor a timing
//! difference says anything about them.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::api_key::ApiKey;
use super::principal::Principal;

type Digest = [u8; 32];

pub struct EnvKeys {
    digest_key: Digest,
    admin: Option<Digest>,
    clients: Vec<Digest>,
    admin_principal: Principal,
    client_principals: Vec<Principal>,
}

impl EnvKeys {
    pub fn new(admin: Option<&SecretString>, clients: &[SecretString]) -> Self {
        let digest_key: Digest = rand::random();
        let digest = |secret: &SecretString| {
            *blake3::keyed_hash(&digest_key, secret.expose_secret().as_bytes()).as_bytes()
        };
        Self {
            digest_key,
            admin: admin.map(digest),
            clients: clients.iter().map(digest).collect(),
            admin_principal: Principal::admin_key(),
            client_principals: (1..=clients.len()).map(Principal::client_key).collect(),
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
    pub fn find(&self, key: &ApiKey) -> Option<Principal> {
        let presented = blake3::keyed_hash(&self.digest_key, key.expose().as_bytes());
        let presented = presented.as_bytes();
        let admin = self
            .admin
            .as_ref()
            .is_some_and(|admin| bool::from(admin.ct_eq(presented)));
        let mut client = None;
        for (index, digest) in self.clients.iter().enumerate() {
            if bool::from(digest.ct_eq(presented)) && client.is_none() {
                client = Some(index + 1);
            }
        }
        if admin {
            Some(self.admin_principal.clone())
        } else {
            client.map(|position| self.client_principals[position - 1].clone())
        }
    }
}

impl std::fmt::Debug for EnvKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvKeys")
            .field("admin", &self.admin.is_some())
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}
