//! Credential encryption (docs/security.md, "Credentials at rest"): AES-256-GCM, a fresh random 96-bit nonce per encryption.
//!
//! A stored value is `len(key_id) (1 byte) || key_id || nonce (12 bytes) || ciphertext+tag`. The
//! associated data binds it to its organization, row and column, so a ciphertext copied onto
//! another row (or another column) fails to decrypt. Keys come from `STACKGATE_ENCRYPTION_KEYS`
//! (`key_id:base64(32 bytes)`, comma-separated, the first active); older keys stay listed until
//! `stackgate rotate-keys` has re-encrypted every row to the active one.
//!
//! Plaintexts come back as [`SecretString`] / [`SecretSlice`]; neither this module's types nor
//! its errors ever show a key or a plaintext in `Debug` or `Display`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, Nonce, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use uuid::Uuid;

/// The column of `docks` that holds a dock's provider API key.
pub const DOCK_API_KEY: &str = "docks.encrypted_api_key";
/// The column of `operation_services` that holds a service's configuration.
pub const OPERATION_CONFIG: &str = "operation_services.encrypted_config";
/// The column of `notification_channels` that holds a webhook's signing secret or a Slack URL.
pub const NOTIFICATION_SECRET: &str = "notification_channels.encrypted_secret";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 32;
const AAD_VERSION: &[u8] = b"stackgate/v1";

/// Why a key list or a ciphertext was refused. No variant carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("no encryption keys configured (set STACKGATE_ENCRYPTION_KEYS)")]
    NoKeys,
    #[error("STACKGATE_ENCRYPTION_KEYS entry {entry}: {reason}")]
    BadKeySpec { entry: usize, reason: &'static str },
    #[error("ciphertext uses key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext does not decrypt for this row (wrong key, row or column, or tampered)")]
    Decrypt,
    #[error("plaintext is not UTF-8")]
    NotUtf8,
}

/// Where a ciphertext lives: it decrypts only there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding<'a> {
    pub org_id: Uuid,
    pub row_id: Uuid,
    pub column: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(org_id: Uuid, row_id: Uuid, column: &'a str) -> Self {
        Self {
            org_id,
            row_id,
            column,
        }
    }

    /// The associated data: version, key id, org, row and column, each unambiguous.
    fn aad(&self, key_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + key_id.len() + self.column.len());
        aad.extend_from_slice(AAD_VERSION);
        aad.push(key_id.len() as u8);
        aad.extend_from_slice(key_id.as_bytes());
        aad.extend_from_slice(self.org_id.as_bytes());
        aad.extend_from_slice(self.row_id.as_bytes());
        aad.extend_from_slice(self.column.as_bytes());
        aad
    }
}

struct KeyEntry {
    id: String,
    cipher: Aes256Gcm,
}

/// The configured keys; the first is active (new ciphertexts use it).
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active_key_id())
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// Parses `key_id:base64(32 bytes)[,key_id:base64(32 bytes)...]`, the first active.
    pub fn parse(spec: &str) -> Result<Self, CryptoError> {
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for (n, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let bad = |reason| CryptoError::BadKeySpec {
                entry: n + 1,
                reason,
            };
            let (id, b64) = entry.split_once(':').ok_or(bad("expected key_id:base64"))?;
            let id = id.trim();
            check_key_id(id).map_err(bad)?;
            if keys.iter().any(|(k, _)| k == id) {
                return Err(bad("duplicate key id"));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| bad("key is not valid base64"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad("key must be exactly 32 bytes"))?;
            keys.push((id.to_owned(), key));
        }
        Self::from_keys(keys)
    }

    /// Reads the keys from the `--encryption-keys` / `STACKGATE_ENCRYPTION_KEYS` setting.
    pub fn from_config(setting: Option<&str>) -> Result<Self, CryptoError> {
        Self::parse(setting.ok_or(CryptoError::NoKeys)?)
    }

    /// A keyring from raw keys, the first active.
    pub fn from_keys(keys: Vec<(String, [u8; 32])>) -> Result<Self, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        let keys = keys
            .into_iter()
            .map(|(id, key)| KeyEntry {
                id,
                cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)),
            })
            .collect();
        Ok(Self { keys })
    }

    /// A fixed, public key with id `test`: tests and fixtures only.
    pub fn for_testing() -> Self {
        Self::from_keys(vec![("test".to_owned(), [0x42; 32])]).expect("one key")
    }

    /// A random key named `id` (the demo, which keeps nothing between runs).
    pub fn random(id: &str) -> Self {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        Self::from_keys(vec![(id.to_owned(), key.into())]).expect("one key")
    }

    /// A fresh `STACKGATE_ENCRYPTION_KEYS` entry: `id:base64(32 random bytes)`.
    pub fn generate_spec(id: &str) -> SecretString {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        SecretString::from(format!("{id}:{b64}"))
    }

    /// The id of the key new ciphertexts use.
    pub fn active_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Encrypts `plaintext` for `binding` with the active key and a fresh nonce.
    pub fn encrypt(&self, plaintext: &[u8], binding: Binding<'_>) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = binding.aad(&key.id);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of a bounded message cannot fail");
        let mut out = Vec::with_capacity(1 + key.id.len() + NONCE_LEN + sealed.len());
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Encrypts a secret string.
    pub fn encrypt_str(&self, plaintext: &SecretString, binding: Binding<'_>) -> Vec<u8> {
        self.encrypt(plaintext.expose_secret().as_bytes(), binding)
    }

    /// Decrypts a stored value for `binding`.
    pub fn decrypt(
        &self,
        stored: &[u8],
        binding: Binding<'_>,
    ) -> Result<SecretSlice<u8>, CryptoError> {
        let (key_id, nonce, sealed) = split(stored)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let aad = binding.aad(key_id);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        key.cipher
            .decrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(SecretSlice::from)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Decrypts a stored value that holds UTF-8 text (an API key).
    pub fn decrypt_str(
        &self,
        stored: &[u8],
        binding: Binding<'_>,
    ) -> Result<SecretString, CryptoError> {
        let bytes = self.decrypt(stored, binding)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| CryptoError::NotUtf8)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// The id of the key a stored value was encrypted with.
    pub fn key_id_of(stored: &[u8]) -> Result<&str, CryptoError> {
        split(stored).map(|(id, _, _)| id)
    }

    /// Re-encrypts `stored` with the active key; `None` when it already uses it.
    pub fn reencrypt(
        &self,
        stored: &[u8],
        binding: Binding<'_>,
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        if Self::key_id_of(stored)? == self.active_key_id() {
            return Ok(None);
        }
        let plaintext = self.decrypt(stored, binding)?;
        Ok(Some(self.encrypt(plaintext.expose_secret(), binding)))
    }
}

/// What a client may see of a key: its last 4 characters, only when the key is long enough (12+
/// characters) that they give nothing useful away.
pub fn hint(secret: &SecretString) -> Option<String> {
    let chars: Vec<char> = secret.expose_secret().chars().collect();
    (chars.len() >= 12).then(|| chars[chars.len() - 4..].iter().collect())
}

fn check_key_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
        return Err("key id must be 1 to 32 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err("key id may hold only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Splits a stored value into key id, nonce and ciphertext+tag.
fn split(stored: &[u8]) -> Result<(&str, &[u8], &[u8]), CryptoError> {
    let (&len, rest) = stored.split_first().ok_or(CryptoError::Malformed)?;
    let len = usize::from(len);
    if len == 0 || len > MAX_KEY_ID_LEN || rest.len() < len + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (id, rest) = rest.split_at(len);
    let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    Ok((id, nonce, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding<'static> {
        Binding::new(Uuid::from_u128(1), Uuid::from_u128(2), DOCK_API_KEY)
    }

    fn spec(id: &str, byte: u8) -> String {
        format!(
            "{id}:{}",
            base64::engine::general_purpose::STANDARD.encode([byte; 32])
        )
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let ring = Keyring::for_testing();
        let secret = SecretString::from("dop_v1_abcdef0123456789");
        let a = ring.encrypt_str(&secret, binding());
        let b = ring.encrypt_str(&secret, binding());
        assert_ne!(a, b, "each encryption uses a fresh nonce");
        assert_eq!(Keyring::key_id_of(&a), Ok("test"));
        let back = ring.decrypt_str(&a, binding()).expect("decrypts");
        assert_eq!(back.expose_secret(), "dop_v1_abcdef0123456789");
    }

    #[test]
    fn another_row_org_or_column_fails() {
        let ring = Keyring::for_testing();
        let stored = ring.encrypt(b"secret", binding());
        let b = binding();
        for other in [
            Binding {
                row_id: Uuid::from_u128(3),
                ..b
            },
            Binding {
                org_id: Uuid::from_u128(3),
                ..b
            },
            Binding {
                column: OPERATION_CONFIG,
                ..b
            },
        ] {
            assert_eq!(
                ring.decrypt(&stored, other).err(),
                Some(CryptoError::Decrypt)
            );
        }
    }

    #[test]
    fn tampering_fails() {
        let ring = Keyring::for_testing();
        let stored = ring.encrypt(b"secret", binding());
        for i in 1 + 4..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x01;
            assert!(ring.decrypt(&bad, binding()).is_err(), "byte {i} flipped");
        }
        assert_eq!(
            ring.decrypt(&stored[..stored.len() - 1], binding()).err(),
            Some(CryptoError::Decrypt)
        );
        assert_eq!(
            ring.decrypt(&[], binding()).err(),
            Some(CryptoError::Malformed)
        );
        assert_eq!(
            ring.decrypt(&[0], binding()).err(),
            Some(CryptoError::Malformed)
        );
    }

    #[test]
    fn unknown_key_id_fails() {
        let old = Keyring::parse(&spec("old", 1)).expect("keys");
        let stored = old.encrypt(b"secret", binding());
        let other = Keyring::parse(&spec("new", 2)).expect("keys");
        assert_eq!(
            other.decrypt(&stored, binding()).err(),
            Some(CryptoError::UnknownKey("old".into()))
        );
        // The same id with different key bytes is a wrong key, not an unknown one.
        let impostor = Keyring::parse(&spec("old", 3)).expect("keys");
        assert_eq!(
            impostor.decrypt(&stored, binding()).err(),
            Some(CryptoError::Decrypt)
        );
    }

    #[test]
    fn rotation_reencrypts_to_the_active_key() {
        let old = Keyring::parse(&spec("k1", 1)).expect("keys");
        let stored = old.encrypt(b"secret", binding());
        let both = Keyring::parse(&format!("{}, {}", spec("k2", 2), spec("k1", 1))).expect("keys");
        assert_eq!(both.active_key_id(), "k2");
        assert_eq!(
            both.decrypt(&stored, binding())
                .expect("old key")
                .expose_secret(),
            b"secret"
        );
        let rotated = both
            .reencrypt(&stored, binding())
            .expect("ok")
            .expect("rotated");
        assert_eq!(Keyring::key_id_of(&rotated), Ok("k2"));
        assert_eq!(
            both.reencrypt(&rotated, binding()),
            Ok(None),
            "already current"
        );
        let new_only = Keyring::parse(&spec("k2", 2)).expect("keys");
        assert_eq!(
            new_only
                .decrypt(&rotated, binding())
                .expect("new key")
                .expose_secret(),
            b"secret"
        );
    }

    #[test]
    fn key_specs_are_checked_without_echoing_keys() {
        assert_eq!(Keyring::parse("").err(), Some(CryptoError::NoKeys));
        assert_eq!(Keyring::from_config(None).err(), Some(CryptoError::NoKeys));
        let short = format!(
            "k:{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 16])
        );
        let cases = [
            "nocolon".to_owned(),
            "k:!!!notbase64".to_owned(),
            short,
            format!("{},{}", spec("a", 1), spec("a", 2)),
            format!(
                "bad id:{}",
                base64::engine::general_purpose::STANDARD.encode([1u8; 32])
            ),
        ];
        for case in cases {
            let err = Keyring::parse(&case).expect_err(&case);
            assert!(
                matches!(err, CryptoError::BadKeySpec { .. }),
                "{case}: {err}"
            );
            let b64 = case.rsplit(':').next().unwrap_or_default();
            assert!(!err.to_string().contains(b64), "{err}");
        }
        let generated = Keyring::generate_spec("gen");
        assert!(Keyring::parse(generated.expose_secret()).is_ok());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let spec = spec("k1", 0xab);
        let ring = Keyring::parse(&spec).expect("keys");
        let shown = format!("{ring:?}");
        assert!(shown.contains("k1"));
        assert!(
            !shown.contains(spec.split(':').nth(1).unwrap_or("-")),
            "{shown}"
        );
        let secret = ring.decrypt_str(&ring.encrypt(b"plain-text-secret", binding()), binding());
        assert!(!format!("{secret:?}").contains("plain-text-secret"));
    }

    #[test]
    fn hints_show_only_the_tail_of_long_keys() {
        assert_eq!(
            hint(&SecretString::from("dop_v1_0123456789abcd")),
            Some("abcd".into())
        );
        assert_eq!(hint(&SecretString::from("short")), None);
    }
}
