//! Second-factor material: TOTP secrets (RFC 6238, SHA-1, 6 digits, 30 s,
//! one step of skew either way), their encryption at rest under a key
//! derived from the session secret, the QR code that carries them, and
//! recovery codes.

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use qrcode::render::svg;
use qrcode::QrCode;
use rand::rngs::OsRng;
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use totp_rs::{Algorithm, Secret, Totp};

const ISSUER: &str = "Portico";
const SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 12;
const KEY_CONTEXT: &str = "Portico 2026-11 two-factor secret encryption v1";
/// Crockford's base32 alphabet: no I, L, O or U to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
pub const RECOVERY_CODE_COUNT: usize = 10;

/// A TOTP shared secret in clear; lives only while a request needs it.
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// 160 random bits from the operating system, as RFC 4226 recommends.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random source works");
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    fn totp(&self, account: &str) -> anyhow::Result<Totp> {
        totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(Secret::from(self.0.expose_secret().clone()))
            .with_issuer(Some(ISSUER))
            .with_account_name(account)
            .build()
            .map_err(|err| anyhow::anyhow!("cannot build a TOTP: {err}"))
    }

    /// The secret for typing into an authenticator app.
    pub fn base32(&self) -> String {
        Secret::from(self.0.expose_secret().clone()).to_base32()
    }

    /// The 6-digit code of the time step containing `unix_time`.
    pub fn code_at(&self, unix_time: u64) -> anyhow::Result<String> {
        Ok(self.totp("code")?.generate(unix_time).to_string())
    }

    /// The time step `code` belongs to, if it is the code of the step at
    /// `unix_time` or of one step either side.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp("code").ok()?.check(code, unix_time)
    }

    /// The `otpauth://` URL as an inline SVG QR code (no script, no
    /// request, no `data:` URL) for `account` on this Portico.
    pub fn qr_svg(&self, account: &str) -> anyhow::Result<String> {
        let url = self
            .totp(account)?
            .to_url()
            .map_err(|err| anyhow::anyhow!("cannot build the otpauth URL: {err}"))?;
        let code = QrCode::new(url.as_bytes())?;
        let image = code
            .render::<svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build();
        // The renderer writes a standalone document; inline SVG needs none
        // of its XML prologue.
        Ok(image
            .find("<svg")
            .map_or(image.clone(), |start| image[start..].to_owned()))
    }
}

/// Encrypts and decrypts TOTP secrets (AES-256-GCM; the key is derived from
/// the session secret, the user id is bound in as associated data).
pub struct SecretCipher(Aes256Gcm);

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher([redacted])")
    }
}

impl SecretCipher {
    pub fn from_session_secret(session_secret: &[u8]) -> Self {
        let key = blake3::derive_key(KEY_CONTEXT, session_secret);
        Self(Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)))
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`.
    pub fn seal(&self, secret: &TotpSecret, user_id: &str) -> anyhow::Result<String> {
        let nonce = Nonce::generate();
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.0.expose_secret(),
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting a TOTP secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(BASE64.encode(out))
    }

    pub fn open(&self, sealed: &str, user_id: &str) -> anyhow::Result<TotpSecret> {
        let bytes = BASE64.decode(sealed)?;
        anyhow::ensure!(
            bytes.len() > NONCE_BYTES,
            "a sealed TOTP secret is too short"
        );
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce = Nonce::try_from(nonce).map_err(|_| anyhow::anyhow!("bad nonce length"))?;
        let plain = self
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a TOTP secret cannot be decrypted: SESSION_SECRET (or the \
                     data dir's session-secret file) changed since it was enrolled"
                )
            })?;
        Ok(TotpSecret::from_bytes(plain))
    }
}

/// A recovery code: `xxxxx-xxxxx`, 10 characters of Crockford base32, 50 bits.
pub fn generate_recovery_code() -> SecretString {
    let mut bytes = [0u8; 10];
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source works");
    let chars: String = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
        .collect();
    SecretString::from(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// What a typed recovery code means: case and dashes ignored, the letters
/// people confuse with digits read as those digits; `None` when it cannot
/// be one.
pub fn normalize_recovery_code(typed: &str) -> Option<SecretString> {
    let chars: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        })
        .collect();
    let valid = chars.len() == 10 && chars.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then(|| SecretString::from(format!("{}-{}", &chars[..5], &chars[5..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, secret "12345678901234567890", last six digits.
    #[test]
    fn codes_follow_the_rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(secret.code_at(time).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_step_either_side_only() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        let code = secret.code_at(now).unwrap();
        assert_eq!(secret.matching_step(&code, now), Some(now / 30));
        assert_eq!(secret.matching_step(&code, now + 30), Some(now / 30));
        assert_eq!(secret.matching_step(&code, now - 30), Some(now / 30));
        assert_eq!(secret.matching_step(&code, now + 60), None);
        assert_eq!(secret.matching_step("12345", now), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let cipher = SecretCipher::from_session_secret(b"one secret");
        let secret = TotpSecret::generate();
        let sealed = cipher.seal(&secret, "user-a").unwrap();
        assert!(!sealed.contains(&secret.base32()));
        let opened = cipher.open(&sealed, "user-a").unwrap();
        assert_eq!(opened.base32(), secret.base32());
        assert!(cipher.open(&sealed, "user-b").is_err());
        let other = SecretCipher::from_session_secret(b"another secret");
        assert!(other.open(&sealed, "user-a").is_err());
    }

    #[test]
    fn recovery_codes_are_fifty_bits_in_two_groups_and_read_forgivingly() {
        let code = generate_recovery_code();
        let text = code.expose_secret();
        assert_eq!(text.len(), 11);
        assert_eq!(&text[5..6], "-");
        assert_eq!(
            normalize_recovery_code(&text.to_uppercase().replace('-', " "))
                .unwrap()
                .expose_secret(),
            text
        );
        assert_eq!(
            normalize_recovery_code("ABCDE-FGHIO")
                .unwrap()
                .expose_secret(),
            "abcde-fgh10"
        );
        assert!(normalize_recovery_code("abcde-fghu0").is_none());
        assert!(normalize_recovery_code("123456").is_none());
        assert_eq!(RECOVERY_ALPHABET.len(), 32);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secret = TotpSecret::generate();
        let cipher = SecretCipher::from_session_secret(b"session secret");
        let printed = format!("{secret:?} {cipher:?}");
        assert_eq!(printed, "TotpSecret([redacted]) SecretCipher([redacted])");
    }

    #[test]
    fn the_qr_code_is_inline_svg() {
        let svg = TotpSecret::generate().qr_svg("owner").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(!svg.contains("data:") && !svg.contains("<script"));
    }
}
