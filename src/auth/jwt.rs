//! HS256 JWTs (DESIGN §3): `sub` = `users.external_id`, optional `org` = organization slug.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The claims stackgate reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
}

/// Verifies tokens (HS256 with the shared secret; RS256/RS384/RS512/PS256 or ES256/ES384 with a
/// configured public key) and mints HS256 ones. The token's `alg` picks the key family, so an
/// HMAC key is never built from the public key (no HS/RS confusion) and `none` never verifies.
/// Its `Debug` never shows a key.
#[derive(Clone)]
pub struct JwtKeys {
    hmac: Option<(EncodingKey, DecodingKey)>,
    public: Option<PublicKey>,
}

#[derive(Clone)]
struct PublicKey {
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const EC_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([redacted])")
    }
}

impl JwtKeys {
    /// Keys for HS256 with `secret`.
    pub fn hs256(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            hmac: Some((
                EncodingKey::from_secret(bytes),
                DecodingKey::from_secret(bytes),
            )),
            public: None,
        }
    }

    /// Keys from configuration: an optional HS256 secret and an optional PEM public key (RSA or
    /// EC, SPKI `PUBLIC KEY` or PKCS#1). At least one is needed.
    pub fn new(secret: Option<&SecretString>, public_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut keys = match secret {
            Some(secret) => Self::hs256(secret),
            None => Self {
                hmac: None,
                public: None,
            },
        };
        if let Some(pem) = public_pem {
            let public = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                PublicKey {
                    key,
                    algorithms: RSA_ALGORITHMS,
                }
            } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                PublicKey {
                    key,
                    algorithms: EC_ALGORITHMS,
                }
            } else {
                anyhow::bail!("the JWT public key is neither an RSA nor an EC key in PEM form");
            };
            keys.public = Some(public);
        }
        anyhow::ensure!(
            keys.hmac.is_some() || keys.public.is_some(),
            "set STACKGATE_JWT_SECRET or STACKGATE_JWT_PUBLIC_KEY_FILE"
        );
        Ok(keys)
    }

    /// Mints an HS256 token for `sub` (optionally pinned to org `org`) valid for `ttl_seconds`.
    pub fn mint(&self, sub: &str, org: Option<&str>, ttl_seconds: i64) -> anyhow::Result<String> {
        let (encoding, _) = self
            .hmac
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("minting needs STACKGATE_JWT_SECRET"))?;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            org: org.map(str::to_owned),
            exp: now + ttl_seconds,
            iat: now,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            encoding,
        )?)
    }

    /// Verifies signature, algorithm and expiry; the error says which failed, never a key.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let rejected = |why: &str| ApiError::Unauthenticated(why.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| rejected("token is malformed"))?;
        let key = match (&self.hmac, &self.public) {
            (Some((_, key)), _) if header.alg == Algorithm::HS256 => key,
            (_, Some(public)) if public.algorithms.contains(&header.alg) => &public.key,
            _ => return Err(rejected("token algorithm is not accepted")),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                rejected(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidSignature => "token signature is invalid",
                    ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (sub, exp)",
                    _ => "token is malformed",
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::hs256(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn minted_tokens_verify() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let token = k.mint("alice", Some("acme"), 60).expect("mint");
        let claims = k.verify(&token).expect("verify");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.org.as_deref(), Some("acme"));
    }

    #[test]
    fn expired_and_foreign_tokens_fail() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let expired = k.mint("alice", None, -60).expect("mint");
        assert!(
            matches!(k.verify(&expired), Err(ApiError::Unauthenticated(m)) if m.contains("expired"))
        );
        let other = keys("another-secret-another-secret-xx")
            .mint("alice", None, 60)
            .expect("mint");
        assert!(
            matches!(k.verify(&other), Err(ApiError::Unauthenticated(m)) if m.contains("signature"))
        );
        assert!(k.verify("not.a.jwt").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(
            format!("{:?}", keys("0123456789abcdef0123456789abcdef")),
            "JwtKeys([redacted])"
        );
    }
}
