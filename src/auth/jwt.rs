//! JWTs (see `docs/security.md`): `sub` = `users.external_id`, optional `org` = organization
//! slug. HS256 with the shared secret, or RS/ES with a PEM public key or a JWKS document's keys.
//! `exp` is required and has no leeway; `nbf` and `iat` are checked with [`LEEWAY_SECONDS`] of clock skew; `iss`
//! and `aud` are enforced when configured.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::jwks::{self, Jwks, RSA_ALGORITHMS, VerifyingKey};
use crate::error::ApiError;
use crate::security::settings::JwtSettings;

/// Clock skew tolerated between the token's issuer and this server, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims stackgate reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    /// The person's e-mail: a new subject's user is created with it (auto-provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person's display name, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The claims as a token may carry them: a missing `sub` or `exp` is reported by the
/// validation (as a missing claim), not by deserialization (as a malformed token).
#[derive(Deserialize)]
struct Received {
    sub: Option<String>,
    #[serde(default)]
    org: Option<String>,
    exp: Option<i64>,
    #[serde(default)]
    iat: i64,
    #[serde(default)]
    nbf: i64,
    #[serde(default)]
    email: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<serde_json::Value>,
}

/// What [`JwtKeys::mint`] writes: the claims, plus the configured issuer and audience so that a
/// minted token passes this server's own checks.
#[derive(Serialize)]
struct Minted<'a> {
    #[serde(flatten)]
    claims: Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Verifies tokens (HS256 with the shared secret; RS256/RS384/RS512/PS256/PS384/PS512 or
/// ES256/ES384 with a configured public key or a JWKS key named by the token's `kid`) and mints
/// HS256 ones. The token's `alg` picks the key family, and a key verifies only the algorithms
/// of its own family, so an HMAC key is never built from a public key (no HS/RS confusion) and
/// `none` never verifies. Its `Debug` never shows a key.
#[derive(Clone)]
pub struct JwtKeys {
    hmac: Option<(EncodingKey, Arc<VerifyingKey>)>,
    public: Option<Arc<VerifyingKey>>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Vec<String>,
}

const EC_ALGORITHMS: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([redacted])")
    }
}

impl JwtKeys {
    /// Keys for HS256 with `secret`, checking no issuer or audience.
    pub fn hs256(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            hmac: Some((
                EncodingKey::from_secret(bytes),
                Arc::new(VerifyingKey {
                    key: DecodingKey::from_secret(bytes),
                    algorithms: vec![Algorithm::HS256],
                }),
            )),
            public: None,
            jwks: None,
            issuer: None,
            audience: Vec::new(),
        }
    }

    /// Requires (and, when minting, writes) the issuer and audience of `settings`.
    pub fn with_claims(mut self, settings: &JwtSettings) -> Self {
        self.issuer.clone_from(&settings.issuer);
        self.audience.clone_from(&settings.audience);
        self
    }

    /// Keys from configuration: an optional HS256 secret, an optional PEM public key (RSA or
    /// EC, SPKI `PUBLIC KEY` or PKCS#1) and an optional JWKS document; at least one is needed.
    /// A JWKS file is read here (an error if it cannot be); a JWKS URL is fetched in the
    /// background.
    pub fn new(
        secret: Option<&SecretString>,
        public_pem: Option<&[u8]>,
        settings: &JwtSettings,
    ) -> anyhow::Result<Self> {
        let mut keys = match secret {
            Some(secret) => Self::hs256(secret),
            None => Self {
                hmac: None,
                public: None,
                jwks: None,
                issuer: None,
                audience: Vec::new(),
            },
        }
        .with_claims(settings);
        if let Some(pem) = public_pem {
            keys.public = Some(Arc::new(public_key(pem)?));
        }
        if let Some(source) = &settings.jwks {
            keys.jwks = Some(Jwks::start(source.clone(), jwks::MIN_REFRESH)?);
        }
        anyhow::ensure!(
            keys.hmac.is_some() || keys.public.is_some() || keys.jwks.is_some(),
            "set STACKGATE_JWT_SECRET, STACKGATE_JWT_PUBLIC_KEY_FILE or STACKGATE_JWT_JWKS"
        );
        Ok(keys)
    }

    /// Mints an HS256 token for `sub` (optionally pinned to org `org`) valid for `ttl_seconds`,
    /// with the configured issuer and first audience.
    pub fn mint(&self, sub: &str, org: Option<&str>, ttl_seconds: i64) -> anyhow::Result<String> {
        self.mint_profile(sub, org, None, ttl_seconds)
    }

    /// Like [`JwtKeys::mint`], with the `email` and `name` claims a new subject is provisioned
    /// from.
    pub fn mint_profile(
        &self,
        sub: &str,
        org: Option<&str>,
        profile: Option<(&str, &str)>,
        ttl_seconds: i64,
    ) -> anyhow::Result<String> {
        let (encoding, _) = self
            .hmac
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("minting needs STACKGATE_JWT_SECRET"))?;
        let now = chrono::Utc::now().timestamp();
        let claims = Minted {
            claims: Claims {
                sub: sub.to_owned(),
                org: org.map(str::to_owned),
                exp: now + ttl_seconds,
                iat: now,
                email: profile.map(|(email, _)| email.to_owned()),
                name: profile.map(|(_, name)| name.to_owned()),
            },
            iss: self.issuer.as_deref(),
            aud: self.audience.first().map(String::as_str),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            encoding,
        )?)
    }

    /// Verifies signature, algorithm and claims; the error says which failed, never a key.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| rejected("token is malformed"))?;
        let key = self.key_for(&header).await?;
        let received =
            jsonwebtoken::decode::<Received>(token, &key.key, &self.validation(header.alg))
                .map(|data| data.claims)
                .map_err(|e| rejected(describe(e.kind())))?;
        let now = chrono::Utc::now().timestamp();
        if received.iat > now.saturating_add(LEEWAY_SECONDS as i64) {
            return Err(rejected("token was issued in the future (iat)"));
        }
        if received.nbf > now.saturating_add(LEEWAY_SECONDS as i64) {
            return Err(rejected("token is not valid yet (nbf)"));
        }
        let (Some(sub), Some(exp)) = (received.sub, received.exp) else {
            return Err(rejected(describe(&ErrorKind::MissingRequiredClaim(
                "exp".into(),
            ))));
        };
        // Profile claims only feed provisioning: one of another JSON type is ignored, not fatal.
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Claims {
            sub,
            org: received.org,
            exp,
            iat: received.iat,
            email: text(received.email),
            name: text(received.name),
        })
    }

    /// The key for the token's `alg` (and `kid`, when a JWKS is configured).
    async fn key_for(&self, header: &Header) -> Result<Arc<VerifyingKey>, ApiError> {
        let fits = |key: &Arc<VerifyingKey>| key.algorithms.contains(&header.alg);
        let not_accepted = || rejected("token algorithm is not accepted");
        if let Some((_, key)) = &self.hmac
            && fits(key)
        {
            return Ok(key.clone());
        }
        if let (Some(jwks), Some(kid)) = (&self.jwks, &header.kid)
            && !matches!(
                header.alg,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            )
        {
            match jwks.key(kid).await {
                Some(key) if fits(&key) => return Ok(key),
                Some(_) => return Err(rejected("token algorithm does not match its key")),
                None if self.public.is_none() => {
                    return Err(rejected("token names an unknown key (kid)"));
                }
                None => {}
            }
        }
        match &self.public {
            Some(key) if fits(key) => Ok(key.clone()),
            None if self.jwks.is_some() && header.kid.is_none() => {
                Err(rejected("token names no key (kid)"))
            }
            _ => Err(not_accepted()),
        }
    }

    /// `exp` and `sub` required, `exp` without leeway (a token ends when it says; `nbf` and `iat`
    /// are checked with leeway in [`JwtKeys::verify`]); `iss` and `aud` required and checked
    /// when set.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = false;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

fn rejected(why: &str) -> ApiError {
    ApiError::Unauthenticated(why.to_owned())
}

/// A client-facing reason for a failed check.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "token signature is invalid",
        ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
        ErrorKind::InvalidIssuer => "token issuer is not accepted (iss)",
        ErrorKind::InvalidAudience => "token audience is not accepted (aud)",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => "token lacks a required claim (iss)",
            "aud" => "token lacks a required claim (aud)",
            _ => "token lacks a required claim (sub, exp)",
        },
        ErrorKind::InvalidClaimFormat(_) => "token has a malformed claim (exp, nbf)",
        _ => "token is malformed",
    }
}

/// An RSA or EC public key in PEM form, with its family's algorithms.
fn public_key(pem: &[u8]) -> anyhow::Result<VerifyingKey> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(VerifyingKey {
            key,
            algorithms: RSA_ALGORITHMS.to_vec(),
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(VerifyingKey {
            key,
            algorithms: EC_ALGORITHMS.to_vec(),
        });
    }
    anyhow::bail!("the JWT public key is neither an RSA nor an EC key in PEM form")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::hs256(&SecretString::from(secret.to_owned()))
    }

    /// An HS256 token with exactly `claims`.
    fn signed(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    async fn refusal(keys: &JwtKeys, token: &str) -> String {
        match keys.verify(token).await {
            Err(ApiError::Unauthenticated(why)) => why,
            other => panic!("expected UNAUTHENTICATED, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn minted_tokens_verify() {
        let k = keys(SECRET);
        let token = k.mint("alice", Some("acme"), 60).expect("mint");
        let claims = k.verify(&token).await.expect("verify");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.org.as_deref(), Some("acme"));
    }

    #[tokio::test]
    async fn expired_and_foreign_tokens_fail() {
        let k = keys(SECRET);
        let expired = k.mint("alice", None, -60).expect("mint");
        assert!(refusal(&k, &expired).await.contains("expired"));
        let other = keys("another-secret-another-secret-xx")
            .mint("alice", None, 60)
            .expect("mint");
        assert!(refusal(&k, &other).await.contains("signature"));
        assert!(k.verify("not.a.jwt").await.is_err());
    }

    /// Row I: `exp` is required; `nbf` and `iat` ahead of the clock (beyond the leeway) are
    /// refused, within it accepted.
    #[tokio::test]
    async fn time_claims_are_checked_with_a_small_leeway() {
        let k = keys(SECRET);
        let (now, skew) = (now(), LEEWAY_SECONDS as i64);
        let no_exp = signed(serde_json::json!({ "sub": "a" }));
        let why = refusal(&k, &no_exp).await;
        assert!(why.contains("required claim"), "{why}");
        let later = signed(serde_json::json!({ "sub": "a", "exp": now + 7200, "nbf": now + 3600 }));
        assert!(refusal(&k, &later).await.contains("not valid yet"));
        let future =
            signed(serde_json::json!({ "sub": "a", "exp": now + 7200, "iat": now + 3600 }));
        assert!(refusal(&k, &future).await.contains("issued in the future"));
        let skewed = signed(serde_json::json!({
            "sub": "a", "exp": now + 600, "nbf": now + skew / 2, "iat": now + skew / 2
        }));
        assert!(k.verify(&skewed).await.is_ok(), "within the leeway");
    }

    /// Row I: `aud` as a string or an array; accepted when no audience is configured, checked
    /// when one is; `iss` enforced when configured.
    #[tokio::test]
    async fn issuer_and_audience_are_enforced_when_configured() {
        let exp = now() + 600;
        let with = |claims: serde_json::Value| {
            let mut c = serde_json::json!({ "sub": "a", "exp": exp });
            c.as_object_mut()
                .expect("object")
                .extend(claims.as_object().expect("object").clone());
            signed(c)
        };
        let open = keys(SECRET);
        assert!(
            open.verify(&with(serde_json::json!({ "aud": "x" })))
                .await
                .is_ok()
        );
        assert!(
            open.verify(&with(serde_json::json!({ "aud": ["x", "y"] })))
                .await
                .is_ok()
        );

        let strict = keys(SECRET).with_claims(&JwtSettings {
            issuer: Some("https://idp.invalid".into()),
            audience: vec!["api".into(), "dashboard".into()],
            jwks: None,
        });
        let iss = "https://idp.invalid";
        for good in [
            serde_json::json!({ "iss": iss, "aud": "api" }),
            serde_json::json!({ "iss": iss, "aud": ["other", "dashboard"] }),
        ] {
            assert!(strict.verify(&with(good)).await.is_ok());
        }
        for (bad, why) in [
            (
                serde_json::json!({ "iss": iss, "aud": "other" }),
                "audience",
            ),
            (
                serde_json::json!({ "iss": iss, "aud": ["x", "y"] }),
                "audience",
            ),
            (serde_json::json!({ "iss": iss }), "(aud)"),
            (
                serde_json::json!({ "iss": "https://evil.invalid", "aud": "api" }),
                "issuer",
            ),
            (serde_json::json!({ "aud": "api" }), "(iss)"),
        ] {
            let why_not = refusal(&strict, &with(bad.clone())).await;
            assert!(why_not.contains(why), "{bad}: {why_not}");
        }
        let minted = strict.mint("alice", None, 60).expect("mint");
        assert!(
            strict.verify(&minted).await.is_ok(),
            "minting writes iss and aud"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(format!("{:?}", keys(SECRET)), "JwtKeys([redacted])");
    }
}
