//! Syncing provider accounts ("docks") into the universal resource tables (DESIGN §6).
//!
//! - [`Provider`]: one implementation per provider ([`digitalocean`], [`linode`], [`vercel`]) lists
//!   every resource of an account, page by page, as [`Record`]s. Adding a provider is one module
//!   plus one line in [`Registry::default`].
//! - [`http`]: the shared client (timeouts, retries of 429/5xx with a wait budget, rate limits).
//! - [`engine`]: one run: fetch everything, then apply it in one transaction.
//! - [`scheduler`]: which replica syncs which dock, through leases.
//! - [`verify`]: a key checked with its provider before it is stored, as callers are told.

pub mod digitalocean;
pub mod engine;
pub mod http;
pub mod linode;
pub mod scheduler;
pub mod vercel;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::db::models::resource::Kind;
pub use http::{FetchError, FetchErrorKind, HttpPolicy, Session};

/// The normalized status words of DESIGN §1 (`resources.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Provisioning,
    Stopped,
    Error,
    Deleted,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Provisioning => "provisioning",
            Status::Stopped => "stopped",
            Status::Error => "error",
            Status::Deleted => "deleted",
            Status::Unknown => "unknown",
        }
    }
}

/// A resource's kind-specific columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Details {
    Server {
        primary_ip_address: Option<String>,
        ipv6: Option<String>,
        vcpus: Option<i32>,
        memory_mb: Option<i32>,
        disk_gb: Option<i32>,
        image: Option<String>,
    },
    WebService {
        production_url: Option<String>,
        environment: Option<String>,
        framework: Option<String>,
    },
    Domain {
        domain_name: String,
        expires_at: Option<DateTime<Utc>>,
        auto_renew: Option<bool>,
    },
    Database {
        engine: Option<String>,
        version: Option<String>,
        host: Option<String>,
        port: Option<i32>,
    },
}

/// One provider object, normalized: what a sync writes into one resource row.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub provider_resource_id: String,
    pub name: String,
    pub status: Status,
    /// The provider's own status word.
    pub provider_status: Option<String>,
    pub region: Option<String>,
    /// The provider's object with secrets stripped.
    pub full_api_data: Value,
    pub details: Details,
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self.details {
            Details::Server { .. } => Kind::Server,
            Details::WebService { .. } => Kind::WebService,
            Details::Domain { .. } => Kind::Domain,
            Details::Database { .. } => Kind::Database,
        }
    }
}

/// Everything one complete listing returned.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<Record>,
}

/// Called after each page: the kind listed and the items fetched so far in the run.
pub type PageObserver<'a> = &'a mut (dyn FnMut(Kind, usize) + Send);

/// A provider's REST API turned into [`Record`]s.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The name stored in `docks.provider` (`digitalocean`, ...).
    fn name(&self) -> &'static str;

    /// The API's base URL when the dock has no `endpoint`.
    fn default_base_url(&self) -> &'static str;

    /// Lists every resource of the account, following every page; any failure fails the listing
    /// (a partial listing is never returned).
    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError>;

    /// Checks the credentials with one cheap request (`createDock` calls this before saving).
    async fn verify(&self, session: &mut Session) -> Result<(), FetchError>;
}

/// The providers this build knows, by name.
#[derive(Clone)]
pub struct Registry {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut registry = Self {
            providers: BTreeMap::new(),
        };
        registry.register(Arc::new(digitalocean::DigitalOcean));
        registry.register(Arc::new(linode::Linode));
        registry.register(Arc::new(vercel::Vercel));
        registry
    }
}

impl Registry {
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.name(), provider);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// Every registered provider name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.providers.keys().copied().collect()
    }
}

/// Removes every key named like a credential (`password`, `secret`, `token`, ...) at any depth:
/// the last line of defence after each adapter's own stripping.
pub fn strip_secret_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_secret_key(k));
            map.values_mut().for_each(strip_secret_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secret_keys),
        _ => {}
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "private_key", "api_key"]
        .iter()
        .any(|s| key.contains(s))
}

/// A JSON value as a string: strings as they are, numbers in decimal.
pub(crate) fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn str_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

pub(crate) fn int_at(value: &Value, pointer: &str) -> Option<i32> {
    value
        .pointer(pointer)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_stripped_at_any_depth() {
        let mut v = serde_json::json!({
            "name": "db", "connection": {"host": "h", "password": "p"},
            "users": [{"name": "u", "password": "p"}], "env": [{"secretValue": "s"}],
            "access_token": "t"
        });
        strip_secret_keys(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"name": "db", "connection": {"host": "h"},
                               "users": [{"name": "u"}], "env": [{}]})
        );
    }

    #[test]
    fn the_registry_knows_each_provider() {
        assert_eq!(
            Registry::default().names(),
            ["digitalocean", "linode", "vercel"]
        );
    }
}
