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

/// Signs and verifies tokens with one shared secret. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([redacted])")
    }
}

impl JwtKeys {
    /// Keys for HS256 with `secret`.
    pub fn hs256(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    /// Mints a token for `sub` (optionally pinned to org `org`) valid for `ttl_seconds`.
    pub fn mint(&self, sub: &str, org: Option<&str>, ttl_seconds: i64) -> anyhow::Result<String> {
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
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm and expiry; the error says which failed, never the secret.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidSignature => "token signature is invalid",
                    ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (sub, exp)",
                    _ => "token is malformed",
                };
                ApiError::Unauthenticated(why.to_owned())
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
