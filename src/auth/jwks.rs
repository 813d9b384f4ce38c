//! Verification keys published as a JWKS document (RFC 7517), the way identity providers such as
//! Clerk or Auth0 publish theirs: read from a file, or fetched from an `http(s)` URL.
//!
//! Keys are cached by `kid`. A token naming a `kid` the cache lacks makes one reload, at most once
//! per refresh period (so a flood of made-up `kid`s costs the provider one request per period),
//! and concurrent reloads coalesce into one. A cache older than [`MAX_AGE`] is reloaded in the
//! background, so a key the provider withdrew stops verifying. Only signature keys of the RSA and
//! EC families are taken: a JWKS never yields an HMAC key, so a public key can never be used as an
//! HMAC secret (no HS/RS confusion).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// A key and the algorithms it may verify.
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

pub(crate) const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The shortest time between two reloads triggered by unknown `kid`s.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
/// How old the cache may grow before it is reloaded in the background.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// The longest a fetch may take, from connecting to the last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read; providers publish a few keys, a few KB.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The most keys taken from one document.
const MAX_KEYS: usize = 100;

/// Where a JWKS document is published. Shown (`Display`, `Debug`) without a URL's credentials
/// or query.
#[derive(Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(reqwest::Url),
}

impl JwksSource {
    /// An `http(s)://` URL, or else a file path; other schemes are refused.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = reqwest::Url::parse(text)
                .map_err(|e| anyhow::anyhow!("STACKGATE_JWT_JWKS is not a valid URL: {e}"))?;
            anyhow::ensure!(url.has_host(), "STACKGATE_JWT_JWKS names no host");
            return Ok(Self::Url(url));
        }
        anyhow::ensure!(
            !text.contains("://"),
            "STACKGATE_JWT_JWKS must be a file path or an http(s) URL"
        );
        Ok(Self::File(PathBuf::from(text)))
    }
}

impl std::fmt::Display for JwksSource {
    /// A path, or a URL without credentials or query (either may carry a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => write!(
                f,
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
            .and_then(|()| f.write_str(url.path())),
        }
    }
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwksSource({self})")
    }
}

type Keys = HashMap<String, Arc<VerifyingKey>>;

struct Cache {
    keys: Keys,
    loaded_at: Option<Instant>,
}

/// A cached JWKS document; shared by every request of the server.
pub struct Jwks {
    source: JwksSource,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// Held while reloading; holds when the last reload after start-up began.
    reloading: Arc<Mutex<Option<Instant>>>,
    min_refresh: Duration,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("source", &self.source.to_string())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// Loads the document once: a file that cannot be read or parsed is an error; a URL is
    /// fetched in the background (when called inside a Tokio runtime), a failure logged and
    /// retried when a token needs a key. Requests arriving meanwhile wait for that fetch.
    pub fn start(source: JwksSource, min_refresh: Duration) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let jwks = Arc::new(Self {
            source,
            client,
            cache: RwLock::new(Cache {
                keys: Keys::new(),
                loaded_at: None,
            }),
            reloading: Arc::new(Mutex::new(None)),
            min_refresh,
        });
        match &jwks.source {
            JwksSource::File(path) => {
                let keys = read_file(path)
                    .and_then(|bytes| parse(&bytes))
                    .map_err(|e| anyhow::anyhow!("STACKGATE_JWT_JWKS {}: {e}", path.display()))?;
                jwks.store(keys);
            }
            JwksSource::Url(_) => {
                if let (Ok(runtime), Ok(guard)) = (
                    tokio::runtime::Handle::try_current(),
                    jwks.reloading.clone().try_lock_owned(),
                ) {
                    let first = jwks.clone();
                    runtime.spawn(async move {
                        first.reload().await;
                        drop(guard);
                    });
                }
            }
        }
        Ok(jwks)
    }

    /// The key named `kid`, reloading the document first when it is unknown (see the module doc).
    pub async fn key(self: &Arc<Self>, kid: &str) -> Option<Arc<VerifyingKey>> {
        if let Some(key) = self.cached(kid) {
            self.refresh_if_stale();
            return Some(key);
        }
        let mut last = self.reloading.lock().await;
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return None;
        }
        *last = Some(Instant::now());
        self.reload().await;
        self.cached(kid)
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.keys.get(kid).cloned()
    }

    fn store(&self, keys: Keys) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.keys = keys;
        cache.loaded_at = Some(Instant::now());
    }

    /// Starts a background reload when the cache is older than [`MAX_AGE`], unless one runs or
    /// ran within the refresh period.
    fn refresh_if_stale(self: &Arc<Self>) {
        let loaded_at = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .loaded_at;
        if loaded_at.is_some_and(|at| at.elapsed() < MAX_AGE) {
            return;
        }
        let Ok(mut last) = self.reloading.clone().try_lock_owned() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        let jwks = self.clone();
        tokio::spawn(async move {
            jwks.reload().await;
            drop(last);
        });
    }

    /// Fetches and parses the document; on failure keeps the keys it had and logs why.
    async fn reload(&self) {
        let fetched = match &self.source {
            JwksSource::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file(&path))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
            JwksSource::Url(url) => self.download(url).await,
        };
        match fetched.and_then(|bytes| parse(&bytes)) {
            Ok(keys) => {
                tracing::debug!(source = %self.source, keys = keys.len(), "JWKS loaded");
                self.store(keys);
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = %e, "cannot load the JWKS; keeping the keys loaded before");
            }
        }
    }

    /// GETs the document: no redirects, a total timeout, and at most [`MAX_DOCUMENT_BYTES`].
    async fn download(&self, url: &reqwest::Url) -> Result<Vec<u8>, String> {
        let failed = |e: reqwest::Error| e.without_url().to_string();
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(format!("the JWKS URL answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large() -> String {
    format!("the JWKS document is larger than {MAX_DOCUMENT_BYTES} bytes")
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_DOCUMENT_BYTES as u64 {
        return Err(too_large());
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The usable keys of a JWKS document; keys of other kinds or uses are skipped.
fn parse(document: &[u8]) -> Result<Keys, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(document)
        .map_err(|e| format!("not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
    Ok(document
        .keys
        .into_iter()
        .take(MAX_KEYS)
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| usable(&jwk))
        .collect())
}

/// A signature key of the RSA or EC family with a `kid`, and the algorithms it verifies: the
/// one its `alg` names, else its family's (an EC key's curve fixes its algorithm).
fn usable(jwk: &Jwk) -> Option<(String, Arc<VerifyingKey>)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGORITHMS,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(named) => {
            let named = Algorithm::try_from(named).ok()?;
            family.contains(&named).then(|| vec![named])?
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(VerifyingKey { key, algorithms })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_paths() {
        assert!(matches!(
            JwksSource::parse("https://idp.invalid/.well-known/jwks.json"),
            Ok(JwksSource::Url(_))
        ));
        assert!(matches!(
            JwksSource::parse("/etc/stackgate/jwks.json"),
            Ok(JwksSource::File(_))
        ));
        assert!(JwksSource::parse("ftp://idp.invalid/jwks").is_err());
        let shown = JwksSource::parse("https://user:pw@idp.invalid:8443/keys?token=secret")
            .expect("url")
            .to_string();
        assert_eq!(shown, "https://idp.invalid:8443/keys");
        let debug = format!(
            "{:?}",
            JwksSource::parse("https://u:pw@idp.invalid/k?t=s").expect("url")
        );
        assert!(!debug.contains("pw") && !debug.contains("t=s"), "{debug}");
    }

    #[test]
    fn only_signature_keys_of_rsa_and_ec_with_a_kid_are_taken() {
        let document = serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
            { "kty": "RSA", "n": "AQAB", "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB" },
            { "kty": "RSA", "kid": "rs384", "alg": "RS384", "n": "AQAB", "e": "AQAB" },
            { "kty": "RSA", "kid": "mislabelled", "alg": "ES256", "n": "AQAB", "e": "AQAB" },
            { "kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AQAB" },
            { "kty": "weird", "kid": "w" }
        ]});
        let keys = parse(document.to_string().as_bytes()).expect("parsed");
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["rs384", "rsa"]);
        assert_eq!(keys["rs384"].algorithms, [Algorithm::RS384]);
        assert_eq!(keys["rsa"].algorithms, RSA_ALGORITHMS);
        assert!(parse(b"[]").is_err());
    }
}
