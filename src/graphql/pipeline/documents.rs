//! Trusted documents: which GraphQL documents an operation may run, and each document's id.
//!
//! - **Automatic persisted queries** (Apollo's protocol): a request may carry
//!   `extensions.persistedQuery = {version: 1, sha256Hash}` instead of its text. A hash this
//!   replica knows (from the manifest, or registered earlier) supplies the text; an unknown one
//!   answers `PERSISTED_QUERY_NOT_FOUND` with the message `PersistedQueryNotFound`, on which
//!   Apollo clients resend the text with the hash, and the pair is remembered (after checking that
//!   the hash is the text's SHA-256). Registered texts live in a cache bounded in bytes.
//! - **A manifest of allowed documents** (`STACKGATE_TRUSTED_DOCUMENTS_MANIFEST`): an Apollo
//!   persisted-query manifest, a JSON object of `hash → text`, or a directory of `.graphql`
//!   files; every entry's id is checked to be its text's SHA-256 at start-up. The mode
//!   (`STACKGATE_TRUSTED_DOCUMENTS`) says what happens to a document outside it: `off` nothing,
//!   `log` a warning (once per document, for a bounded number of documents), `enforce` a refusal
//!   (`PERSISTED_QUERY_NOT_IN_LIST`) before the document is parsed. An API key may be limited to
//!   the manifest whatever the mode.
//!
//! Every operation gets a [`Document`]: its id (the SHA-256 of its text, lowercase hex) and its
//! manifest name, which label its metrics.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use async_graphql::{Request, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::security::settings::{DocumentSettings, TrustMode};

/// The document an operation runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The SHA-256 of the text, lowercase hex.
    pub id: String,
    /// The manifest's name for it, when it is in the manifest.
    pub trusted_name: Option<Arc<str>>,
}

impl Document {
    /// Whether the manifest holds it.
    pub fn trusted(&self) -> bool {
        self.trusted_name.is_some()
    }
}

/// One manifest entry.
struct Entry {
    name: Arc<str>,
    text: Arc<str>,
}

/// Registered texts by hash, least recently used first out, bounded in bytes.
struct Registered {
    texts: lru::LruCache<String, Arc<str>>,
    bytes: usize,
    max_bytes: usize,
}

impl Registered {
    fn get(&mut self, hash: &str) -> Option<Arc<str>> {
        self.texts.get(hash).cloned()
    }

    fn put(&mut self, hash: String, text: Arc<str>) {
        if text.len() > self.max_bytes || self.texts.contains(&hash) {
            return;
        }
        self.bytes += text.len();
        self.texts.put(hash, text);
        while self.bytes > self.max_bytes {
            match self.texts.pop_lru() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

/// How many distinct untrusted documents `log` mode reports before it stops (bounds memory and
/// log volume against a caller sending endless new documents).
const MAX_LOGGED: usize = 1000;

/// The trusted-document rules of a server.
pub struct TrustedDocuments {
    mode: TrustMode,
    apq: bool,
    manifest: HashMap<String, Entry>,
    registered: Mutex<Registered>,
    logged: Mutex<HashSet<String>>,
}

impl TrustedDocuments {
    /// Loads the manifest the settings name; a malformed manifest, or an entry whose id is not
    /// its text's SHA-256, fails start-up.
    pub fn load(settings: &DocumentSettings) -> anyhow::Result<Self> {
        let manifest = match &settings.manifest {
            Some(path) => read_manifest(path)
                .with_context(|| format!("trusted documents manifest {}", path.display()))?,
            None => HashMap::new(),
        };
        if settings.mode == TrustMode::Enforce && manifest.is_empty() {
            bail!("STACKGATE_TRUSTED_DOCUMENTS=enforce needs a non-empty manifest");
        }
        Ok(Self {
            mode: settings.mode,
            apq: settings.apq,
            manifest,
            registered: Mutex::new(Registered {
                texts: lru::LruCache::unbounded(),
                bytes: 0,
                max_bytes: settings.apq_cache_bytes,
            }),
            logged: Mutex::new(HashSet::new()),
        })
    }

    /// How many documents the manifest holds.
    pub fn manifest_len(&self) -> usize {
        self.manifest.len()
    }

    /// Supplies the text of a persisted query, registers a new one, and applies the mode. Runs
    /// before the text is parsed.
    pub fn resolve(&self, request: &mut Request) -> Result<Document, ApiError> {
        let persisted = persisted_hash(request)?;
        let id = match persisted {
            Some(hash) if request.query.is_empty() => {
                request.query = self.text_of(&hash)?.to_string();
                hash
            }
            Some(hash) => {
                let actual = sha256_hex(&request.query);
                if actual != hash {
                    return Err(ApiError::BadUserInput(
                        "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query`"
                            .into(),
                    ));
                }
                if self.apq && self.mode != TrustMode::Enforce {
                    self.lock_registered()
                        .put(hash.clone(), Arc::from(request.query.as_str()));
                }
                hash
            }
            None => sha256_hex(&request.query),
        };
        let document = Document {
            trusted_name: self.manifest.get(&id).map(|e| e.name.clone()),
            id,
        };
        if !document.trusted() {
            match self.mode {
                TrustMode::Off => {}
                TrustMode::Log => self.log_untrusted(&document),
                TrustMode::Enforce => return Err(not_in_list()),
            }
        }
        Ok(document)
    }

    /// Refuses a document outside the manifest for a caller limited to it (an API key created
    /// with `trustedDocumentsOnly`).
    pub fn check_limited(&self, document: &Document) -> Result<(), ApiError> {
        if document.trusted() {
            Ok(())
        } else {
            Err(not_in_list())
        }
    }

    fn text_of(&self, hash: &str) -> Result<Arc<str>, ApiError> {
        if let Some(entry) = self.manifest.get(hash) {
            return Ok(entry.text.clone());
        }
        if self.apq
            && let Some(text) = self.lock_registered().get(hash)
        {
            return Ok(text);
        }
        Err(ApiError::PersistedQueryNotFound)
    }

    fn lock_registered(&self) -> std::sync::MutexGuard<'_, Registered> {
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log_untrusted(&self, document: &Document) {
        let mut logged = self
            .logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if logged.len() < MAX_LOGGED && logged.insert(document.id.clone()) {
            tracing::warn!(
                document = %document.id,
                "an operation ran a document outside the trusted documents manifest"
            );
        }
    }
}

fn not_in_list() -> ApiError {
    ApiError::PersistedQueryNotInList(
        "this server runs only documents of its trusted documents manifest".into(),
    )
}

/// The hash of `extensions.persistedQuery`, if the request carries one.
fn persisted_hash(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let bad = |what: &str| ApiError::BadUserInput(format!("`extensions.persistedQuery` {what}"));
    let Value::Object(fields) = value else {
        return Err(bad("must be an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(bad("must have `version: 1`")),
    }
    let hash = match fields.get("sha256Hash") {
        Some(Value::String(h)) => h.to_ascii_lowercase(),
        _ => return Err(bad("must have a `sha256Hash` string")),
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("`sha256Hash` must be 64 hexadecimal digits"));
    }
    Ok(Some(hash))
}

/// The SHA-256 of `text`, lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Reads a manifest: a directory of `.graphql` files (named by their stem), an Apollo
/// persisted-query manifest (`{"format": "apollo-persisted-query-manifest", "operations": [{id,
/// name, body}]}`), or a JSON object `{"<sha256>": "<text>"}`.
fn read_manifest(path: &Path) -> anyhow::Result<HashMap<String, Entry>> {
    let mut entries = Vec::new();
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            entries.push((sha256_hex(&text), name, text));
        }
    } else {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        if let Some(operations) = json.get("operations").and_then(|o| o.as_array()) {
            for op in operations {
                let field = |k: &str| op.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                let body = field("body").ok_or_else(|| anyhow!("an operation has no `body`"))?;
                let id = field("id").ok_or_else(|| anyhow!("an operation has no `id`"))?;
                entries.push((id, field("name").unwrap_or_default(), body));
            }
        } else if let Some(map) = json.as_object() {
            for (id, body) in map {
                let body = body
                    .as_str()
                    .ok_or_else(|| anyhow!("entry {id} is not a string"))?;
                entries.push((id.clone(), String::new(), body.to_owned()));
            }
        } else {
            bail!("expected a directory, an Apollo manifest or a JSON object");
        }
    }
    let mut manifest = HashMap::new();
    for (id, name, text) in entries {
        let id = id.to_ascii_lowercase();
        let actual = sha256_hex(&text);
        if id != actual {
            bail!("entry {id} ({name}) is not the SHA-256 of its text ({actual})");
        }
        let name = if name.is_empty() {
            id[..12].to_owned()
        } else {
            name
        };
        manifest.insert(
            id,
            Entry {
                name: Arc::from(name),
                text: Arc::from(text),
            },
        );
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            Value::from_json(serde_json::json!({"version": 1, "sha256Hash": hash})).expect("ok"),
        );
        request
    }

    fn documents(mode: TrustMode, manifest: Option<PathBuf>, bytes: usize) -> TrustedDocuments {
        TrustedDocuments::load(&DocumentSettings {
            mode,
            manifest,
            apq: true,
            apq_cache_bytes: bytes,
        })
        .expect("ok")
    }

    #[test]
    fn the_id_is_the_sha256_of_the_text() {
        // echo -n '{ viewer { user { name } } }' | sha256sum
        let text = "{ viewer { user { name } } }";
        let docs = documents(TrustMode::Off, None, 1024);
        let doc = docs.resolve(&mut Request::new(text)).expect("ok");
        assert_eq!(doc.id, sha256_hex(text));
        assert_eq!(doc.id.len(), 64);
        assert!(!doc.trusted());
    }

    #[test]
    fn an_unknown_hash_is_not_found_until_registered() {
        let text = "{ viewer { user { name } } }";
        let hash = sha256_hex(text);
        let docs = documents(TrustMode::Off, None, 1024);
        let miss = docs
            .resolve(&mut persisted("", &hash))
            .expect_err("refused");
        assert_eq!(miss.code(), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(miss.message(), "PersistedQueryNotFound");
        docs.resolve(&mut persisted(text, &hash)).expect("ok");
        let mut again = persisted("", &hash);
        docs.resolve(&mut again).expect("ok");
        assert_eq!(again.query, text);
    }

    #[test]
    fn a_hash_that_is_not_the_text_s_is_refused_and_not_registered() {
        let hash = sha256_hex("{ a }");
        let docs = documents(TrustMode::Off, None, 1024);
        let err = docs
            .resolve(&mut persisted("{ b }", &hash))
            .expect_err("refused");
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert!(docs.resolve(&mut persisted("", &hash)).is_err());
    }

    #[test]
    fn registered_texts_are_bounded_in_bytes() {
        let docs = documents(TrustMode::Off, None, 100);
        let texts: Vec<String> = (0..10).map(|i| format!("{{ f{i:030} }}")).collect();
        for text in &texts {
            docs.resolve(&mut persisted(text, &sha256_hex(text)))
                .expect("ok");
        }
        assert!(docs.lock_registered().bytes <= 100);
        // The newest survive, the oldest went first.
        let newest = texts.last().expect("ok");
        assert!(
            docs.resolve(&mut persisted("", &sha256_hex(newest)))
                .is_ok()
        );
        assert!(
            docs.resolve(&mut persisted("", &sha256_hex(&texts[0])))
                .is_err()
        );
    }

    #[test]
    fn malformed_persisted_query_extensions_are_bad_input() {
        let docs = documents(TrustMode::Off, None, 1024);
        for hash in ["abc", &"z".repeat(64)] {
            let err = docs.resolve(&mut persisted("", hash)).expect_err("refused");
            assert_eq!(err.code(), "BAD_USER_INPUT", "{hash}");
        }
    }

    #[test]
    fn a_manifest_entry_whose_id_lies_fails_start_up() {
        let dir = std::env::temp_dir().join(format!("sg-manifest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("ok");
        let file = dir.join("m.json");
        std::fs::write(
            &file,
            format!(r#"{{"{}": "{{ b }}"}}"#, sha256_hex("{ a }")),
        )
        .expect("ok");
        let err = TrustedDocuments::load(&DocumentSettings {
            manifest: Some(file),
            ..DocumentSettings::default()
        })
        .err()
        .expect("refused");
        assert!(format!("{err:#}").contains("is not the SHA-256"), "{err:#}");
        std::fs::remove_dir_all(dir).expect("ok");
    }

    #[test]
    fn enforce_runs_only_manifest_documents_and_never_registers() {
        let dir = std::env::temp_dir().join(format!("sg-manifest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("ok");
        std::fs::write(dir.join("Me.graphql"), "{ viewer { user { name } } }").expect("ok");
        let docs = documents(TrustMode::Enforce, Some(dir.clone()), 1024);
        let ok = docs
            .resolve(&mut Request::new("{ viewer { user { name } } }"))
            .expect("ok");
        assert_eq!(ok.trusted_name.as_deref(), Some("Me"));
        let err = docs.resolve(&mut Request::new("{ viewer { user { id } } }"));
        assert_eq!(
            err.expect_err("refused").code(),
            "PERSISTED_QUERY_NOT_IN_LIST"
        );
        let other = "{ viewer { user { email } } }";
        let err = docs.resolve(&mut persisted(other, &sha256_hex(other)));
        assert_eq!(
            err.expect_err("refused").code(),
            "PERSISTED_QUERY_NOT_IN_LIST"
        );
        assert_eq!(docs.lock_registered().texts.len(), 0);
        std::fs::remove_dir_all(dir).expect("ok");
    }
}
