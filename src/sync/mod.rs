//! Syncing provider accounts ("docks") into the universal resource tables (docs/sync.md).
//!
//! - [`Provider`]: one implementation per provider ([`cloudflare`], [`digitalocean`],
//!   [`gridpane`], [`linode`], [`vercel`]) lists
//!   every resource of an account, page by page, as [`Record`]s. Adding a provider is one module
//!   plus one line in [`Registry::default`].
//! - [`list_pages`]: the one pagination loop. An adapter names its [`Collection`]s and its
//!   [`Paging`] (numbered pages while linked or up to a count, or a cursor) and maps items to
//!   records; the loop fetches, checks each page and stops.
//! - [`http`]: the shared client (timeouts, retries of 429/5xx with a wait budget, rate limits).
//! - [`engine`]: one run: fetch everything, then apply it in one transaction.
//! - [`scheduler`]: which replica syncs which dock, through leases; [`settings`]: their timing.
//! - [`verify`]: a key checked with its provider before it is stored, as callers are told.
//! - [`action`]: what a provider can be asked to do to one resource (reboot, redeploy, purge).

pub mod action;
pub mod cloudflare;
pub mod digitalocean;
pub mod engine;
pub mod gridpane;
pub mod http;
pub mod linode;
pub mod scheduler;
pub mod settings;
pub mod vercel;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::db::models::resource::Kind;
pub use action::{Action, Target};
pub use http::{FetchError, FetchErrorKind, HttpPolicy, Session};

/// The normalized status words of `resources.status` (docs/architecture.md).
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

    /// The actions it performs on a resource of `kind` (none by default).
    fn actions(&self, kind: Kind) -> &'static [Action] {
        let _ = kind;
        &[]
    }

    /// Asks the provider to perform `action` on `target` (one of [`Self::actions`] for its
    /// kind) and summarizes the answer from named fields only.
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<action::Summary, FetchError> {
        let _ = (session, target);
        Err(FetchError::post(
            action.as_str(),
            FetchErrorKind::Malformed(format!("`{}` does not perform actions", self.name())),
        ))
    }
}

/// One collection of a provider's API: where it is listed, the envelope key holding a page's
/// items, and the kind of resource they become.
#[derive(Clone, Copy, Debug)]
pub struct Collection {
    pub path: &'static str,
    pub key: &'static str,
    pub kind: Kind,
}

/// A [`Collection`] (a `const fn`, for adapters' tables).
pub const fn collection(path: &'static str, key: &'static str, kind: Kind) -> Collection {
    Collection { path, key, kind }
}

/// How a provider's API pages its collections: the page size asked for, and how the envelope
/// tells where the next page is. [`list_pages`] walks any of them.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// The page-size parameter and the size asked for (the provider's largest).
    pub size: (&'static str, u32),
    pub next: NextPage,
    /// A JSON pointer to a flag every page must carry as `true` (Cloudflare's `/success`), or
    /// `None` for envelopes without one.
    pub ok: Option<&'static str>,
}

/// Where the envelope says the next page is (each field a JSON pointer into the envelope).
#[derive(Clone, Copy, Debug)]
pub enum NextPage {
    /// Numbered pages (`page=1, 2, …`) while the envelope has a link (a string) at the pointer:
    /// DigitalOcean's `/links/pages/next`.
    Linked(&'static str),
    /// Numbered pages up to the page count at the pointer, which every page must carry:
    /// Linode's `/pages`, or Cloudflare's `/result_info/total_pages`.
    Counted(&'static str),
    /// A cursor at `at` (a string or a number), sent back as the `param` query parameter, until
    /// a page brings none or no items: Vercel's `/pagination/next` as `until`.
    Cursor {
        at: &'static str,
        param: &'static str,
    },
}

/// Where the listing of one collection has got to: the page number (from 1) and, for an API
/// paged by cursor, the cursor of the next page.
struct Position {
    page: u64,
    cursor: Option<String>,
}

impl Paging {
    /// The query asking for the page at `at`.
    fn query(&self, at: &Position) -> Vec<(&'static str, String)> {
        let size = (self.size.0, self.size.1.to_string());
        match self.next {
            NextPage::Linked(_) | NextPage::Counted(_) => vec![("page", at.page.to_string()), size],
            NextPage::Cursor { param, .. } => {
                let cursor = at.cursor.clone().map(|c| (param, c));
                std::iter::once(size).chain(cursor).collect()
            }
        }
    }

    /// Moves `at` to the page after it, as `body` (with `items` items) says; false after the
    /// last page, an error for an envelope without the page count it must carry.
    fn advance(&self, at: &mut Position, body: &Value, items: usize) -> Result<bool, String> {
        let more = match self.next {
            NextPage::Linked(link) => body.pointer(link).and_then(Value::as_str).is_some(),
            NextPage::Counted(count) => {
                let pages = body.pointer(count).and_then(Value::as_u64);
                at.page < pages.ok_or_else(|| format!("no `{}`", &count[1..]))?
            }
            NextPage::Cursor { at: next, .. } => {
                at.cursor = body.pointer(next).and_then(id_string);
                at.cursor.is_some() && items > 0
            }
        };
        at.page += 1;
        Ok(more)
    }
}

/// Lists every collection, following every page as `paging` says, and turns each item into a
/// [`Record`] with `record` (`None`: the item has no id). Any failure fails the whole listing:
/// a request's (after its retries), a page without its items array or page count, an item
/// without an id. The session refuses more than [`HttpPolicy::max_pages`] pages.
pub async fn list_pages(
    session: &mut Session,
    paging: &Paging,
    collections: &[Collection],
    record: fn(Kind, Value) -> Option<Record>,
    on_page: PageObserver<'_>,
) -> Result<Listing, FetchError> {
    let mut listing = Listing::default();
    for &Collection { path, key, kind } in collections {
        let records = &mut listing.records;
        walk_pages(session, paging, path, key, &mut |items: Vec<Value>| {
            for item in items {
                let row = record(kind, item).ok_or_else(|| {
                    let what = format!("a `{}` item has no id", key.trim_start_matches('/'));
                    FetchError::new(path, FetchErrorKind::Malformed(what))
                })?;
                records.push(row);
            }
            on_page(kind, records.len());
            Ok(true)
        })
        .await?;
    }
    Ok(listing)
}

/// Walks the pages of one collection at `path` as `paging` says, handing each page's items
/// (the array at `key`: an envelope key, or a JSON pointer when it starts with `/`) to `page`,
/// until the last page or until `page` answers false (the caller has enough). A page without
/// its items array, its page count, or (when `paging.ok` names one) its success flag fails.
pub async fn walk_pages(
    session: &mut Session,
    paging: &Paging,
    path: &str,
    key: &str,
    page: &mut (dyn FnMut(Vec<Value>) -> Result<bool, FetchError> + Send),
) -> Result<(), FetchError> {
    let malformed = |what: String| FetchError::new(path, FetchErrorKind::Malformed(what));
    let mut at = Position {
        page: 1,
        cursor: None,
    };
    loop {
        let mut body = session.get_json(path, &paging.query(&at)).await?;
        if let Some(ok) = paging.ok
            && body.pointer(ok) != Some(&Value::Bool(true))
        {
            return Err(malformed(format!("`{}` is not true", &ok[1..])));
        }
        let slot = match key.starts_with('/') {
            true => body.pointer_mut(key),
            false => body.get_mut(key),
        };
        let Some(Value::Array(items)) = slot.map(Value::take) else {
            let name = key.trim_start_matches('/');
            return Err(malformed(format!("no `{name}` array in the envelope")));
        };
        let count = items.len();
        let wanted = page(items)?;
        if !paging.advance(&mut at, &body, count).map_err(malformed)? || !wanted {
            return Ok(());
        }
    }
}

/// The actions `provider` performs on a resource of `kind`, as this build's providers say.
pub fn supported_actions(provider: &str, kind: Kind) -> &'static [Action] {
    static BUILT_IN: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::default);
    BUILT_IN.actions(provider, kind)
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
        registry.register(Arc::new(cloudflare::Cloudflare));
        registry.register(Arc::new(digitalocean::DigitalOcean));
        registry.register(Arc::new(gridpane::GridPane));
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

    /// The actions `provider` performs on a resource of `kind` (none for an unknown provider).
    pub fn actions(&self, provider: &str, kind: Kind) -> &'static [Action] {
        self.get(provider).map_or(&[], |p| p.actions(kind))
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
    fn each_paging_style_finds_its_next_page() {
        use serde_json::json;
        let first = || Position {
            page: 1,
            cursor: None,
        };
        let linked = Paging {
            size: ("per_page", 200),
            next: NextPage::Linked("/links/pages/next"),
            ok: None,
        };
        let mut at = first();
        let q = |k: &'static str, v: &str| (k, v.to_owned());
        assert_eq!(linked.query(&at), [q("page", "1"), q("per_page", "200")]);
        let more = json!({"links": {"pages": {"next": "https://x/?page=2"}}});
        assert_eq!(linked.advance(&mut at, &more, 1), Ok(true));
        assert_eq!(linked.query(&at), [q("page", "2"), q("per_page", "200")]);
        assert_eq!(linked.advance(&mut at, &json!({"links": {}}), 1), Ok(false));

        let counted = Paging {
            size: ("page_size", 500),
            next: NextPage::Counted("/pages"),
            ok: None,
        };
        let mut at = first();
        assert_eq!(counted.advance(&mut at, &json!({"pages": 2}), 0), Ok(true));
        assert_eq!(counted.advance(&mut at, &json!({"pages": 2}), 0), Ok(false));
        let no_count = counted.advance(&mut first(), &json!({}), 0);
        assert_eq!(no_count, Err("no `pages`".to_owned()));

        let cursor = Paging {
            size: ("limit", 100),
            next: NextPage::Cursor {
                at: "/pagination/next",
                param: "until",
            },
            ok: None,
        };
        let mut at = first();
        assert_eq!(cursor.query(&at), [q("limit", "100")]);
        let next = json!({"pagination": {"next": 1700000000000u64}});
        assert_eq!(cursor.advance(&mut at, &next, 3), Ok(true));
        assert_eq!(
            cursor.query(&at),
            [q("limit", "100"), q("until", "1700000000000")]
        );
        assert_eq!(
            cursor.advance(&mut at, &next, 0),
            Ok(false),
            "an empty page ends it"
        );
        let last = json!({"pagination": {"next": null}});
        assert_eq!(cursor.advance(&mut first(), &last, 3), Ok(false));
    }

    #[test]
    fn the_registry_knows_each_provider() {
        assert_eq!(
            Registry::default().names(),
            ["cloudflare", "digitalocean", "gridpane", "linode", "vercel"]
        );
    }
}
