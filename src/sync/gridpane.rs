//! GridPane: servers → servers, sites → web services, domains → domains.
//!
//! GridPane publishes its API as a Postman collection rather than a reference, so parts of what
//! follows are assumptions taken from responses other clients recorded; they are marked so.
//!
//! - Base URL `https://my.gridpane.com/oauth/api/v1`, `Authorization: Bearer <personal token>`;
//!   the key check is `GET /user`.
//! - Lists `GET /server`, `GET /site`, `GET /domain` in Laravel's paginated envelope
//!   `{data: [...], links: {first, last, prev, next}, meta: {current_page, last_page, per_page,
//!   total}}`; pages are numbered (`page`), and the next one is followed while `links.next` is
//!   a link, so an unpaginated answer (no `links`) is one page. `per_page=100` is asked for
//!   (assumed accepted; GridPane answers 10 per page by default, and the walk does not depend
//!   on the size served). Domains are nested one level deeper, `{data: {domains: [...]}}`
//!   (assumed from recorded responses).
//! - Rate limits are Laravel's: `X-RateLimit-Limit` / `X-RateLimit-Remaining`, and a 429 with
//!   `Retry-After` (`X-RateLimit-Reset` epoch seconds). Errors are `{"message": "..."}`
//!   (`Unauthenticated.` on a 401).
//!
//! Fields read: a server's `id`, `label`, `ip`, `ipv6`, `status`, `cpu`, `ram` (MB, assumed),
//! `os_version`, `region`; a site's `id`, `url`, `status`, `is_ssl`, `is_wsod`, `type`
//! (`primary`, `staging`, `canary`); a domain's `id`, `url`, `status`. Everything else stays in
//! `full_api_data`, after stripping what could be a credential: system users' and databases'
//! passwords (`*_pass`, `*_password`), HTTP basic-auth (`htpasswd`), WordPress salts and keys,
//! a DNS integration's keys (`user_dns` keeps its provider's name only), plus every
//! credential-named key ([`strip_secret_keys`]).
//!
//! Actions: a site's cache is purged with `POST /site/{id}/purge-cache` (assumed: GridPane's
//! panel offers the purge; the path follows its API's naming).

use serde_json::{Value, json};

use super::action::{self, Summary};
use super::{
    Action, Collection, Details, FetchError, Kind, Listing, NextPage, PageObserver, Paging,
    Provider, Record, Session, Status, Target, collection, id_string, int_at, list_pages, str_at,
    strip_secret_keys,
};

pub struct GridPane;

/// The page size asked for.
pub const PER_PAGE: u32 = 100;

/// Numbered pages while the envelope links a next one.
const PAGING: Paging = Paging {
    size: ("per_page", PER_PAGE),
    next: NextPage::Linked("/links/next"),
    ok: None,
};

const COLLECTIONS: [Collection; 3] = [
    collection("/server", "data", Kind::Server),
    collection("/site", "data", Kind::WebService),
    collection("/domain", "/data/domains", Kind::Domain),
];

#[async_trait::async_trait]
impl Provider for GridPane {
    fn name(&self) -> &'static str {
        "gridpane"
    }

    fn default_base_url(&self) -> &'static str {
        "https://my.gridpane.com/oauth/api/v1"
    }

    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError> {
        list_pages(session, &PAGING, &COLLECTIONS, record, on_page).await
    }

    async fn verify(&self, session: &mut Session) -> Result<(), FetchError> {
        session.get_json("/user", &[]).await.map(drop)
    }

    fn actions(&self, kind: Kind) -> &'static [Action] {
        match kind {
            Kind::WebService => &[Action::PurgeCache],
            _ => &[],
        }
    }

    /// A site's cache purge: `POST /site/{id}/purge-cache` (assumed, see the module's
    /// comment), answered `{success: true, message}`; a `success` that is not `true` is a
    /// refusal.
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<Summary, FetchError> {
        let id = action::segment(target)?;
        if action != Action::PurgeCache {
            return Err(action::lacking("/site", "such site action"));
        }
        let path = format!("/site/{id}/purge-cache");
        let answer = session.post_json(&path, &json!({})).await?;
        if answer.get("success") == Some(&Value::Bool(false)) {
            return Err(action::refused(
                session,
                &path,
                &str_at(&answer, "/message").unwrap_or_default(),
            ));
        }
        Ok(format!("site {id}: cache purged"))
    }
}

fn record(kind: Kind, mut raw: Value) -> Option<Record> {
    let id = id_string(raw.get("id")?)?;
    let (name, word, status, details) = match kind {
        Kind::Server => server(&raw),
        Kind::WebService => site(&raw),
        _ => domain(&raw),
    };
    let region = str_at(&raw, "/region").or_else(|| str_at(&raw, "/server/region"));
    strip(&mut raw);
    Some(Record {
        name: name.unwrap_or_else(|| id.clone()),
        provider_resource_id: id,
        status,
        provider_status: word,
        region,
        full_api_data: raw,
        details,
    })
}

type Mapped = (Option<String>, Option<String>, Status, Details);

fn server(raw: &Value) -> Mapped {
    let word = str_at(raw, "/status");
    let status = match word.as_deref() {
        Some("active") => Status::Active,
        Some("building" | "provisioning" | "installing" | "pending" | "rebooting") => {
            Status::Provisioning
        }
        Some("inactive" | "stopped" | "offline") => Status::Stopped,
        Some("failed" | "error") => Status::Error,
        Some("deleted" | "deleting") => Status::Deleted,
        _ => Status::Unknown,
    };
    let details = Details::Server {
        primary_ip_address: str_at(raw, "/ip"),
        ipv6: str_at(raw, "/ipv6"),
        vcpus: int_at(raw, "/cpu"),
        memory_mb: int_at(raw, "/ram"),
        disk_gb: int_at(raw, "/disk"),
        image: str_at(raw, "/os_version"),
    };
    (str_at(raw, "/label"), word, status, details)
}

fn site(raw: &Value) -> Mapped {
    let wsod = raw["is_wsod"].as_bool() == Some(true);
    // A white screen of death is GridPane's own failure signal, whatever the status says.
    let word = match wsod {
        true => Some("wsod".to_owned()),
        false => str_at(raw, "/status"),
    };
    let status = match word.as_deref() {
        Some("active") => Status::Active,
        Some("building" | "provisioning" | "cloning" | "migrating" | "pending") => {
            Status::Provisioning
        }
        Some("disabled" | "suspended" | "inactive") => Status::Stopped,
        Some("failed" | "error" | "wsod") => Status::Error,
        _ => Status::Unknown,
    };
    let url = str_at(raw, "/url");
    let scheme = match raw["is_ssl"].as_bool() {
        Some(false) => "http",
        _ => "https",
    };
    let production_url = url.as_ref().map(|u| match u.contains("://") {
        true => u.clone(),
        false => format!("{scheme}://{u}"),
    });
    let environment = match str_at(raw, "/type").as_deref() {
        None | Some("primary") => "production".to_owned(),
        Some(other) => other.to_owned(),
    };
    let details = Details::WebService {
        production_url,
        environment: Some(environment),
        framework: Some("wordpress".to_owned()),
    };
    (url, word, status, details)
}

fn domain(raw: &Value) -> Mapped {
    let word = str_at(raw, "/status");
    let status = match word.as_deref() {
        Some("active" | "resolved") => Status::Active,
        Some("pending" | "unresolved" | "propagating") => Status::Provisioning,
        Some("failed" | "error") => Status::Error,
        _ => Status::Unknown,
    };
    let name = str_at(raw, "/url").unwrap_or_default();
    let details = Details::Domain {
        domain_name: name.clone(),
        expires_at: None,
        auto_renew: None,
    };
    (Some(name), word, status, details)
}

/// Keys removed at any depth beyond the credential-named ones: basic-auth pairs, WordPress
/// salts and keys.
const SECRET_KEYS: [&str; 4] = ["htpasswd", "basic_auth", "salts", "wp_keys"];

/// Removes credentials: `*_pass` / `*_password` values, [`SECRET_KEYS`], a DNS integration's
/// details but its provider, then every credential-named key.
fn strip(raw: &mut Value) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| {
                    let k = k.to_ascii_lowercase();
                    !(k.ends_with("_pass") || k == "pass" || SECRET_KEYS.contains(&k.as_str()))
                });
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(dns) = raw.get_mut("user_dns").and_then(Value::as_object_mut) {
        dns.retain(|k, _| k == "id" || k == "dns_provider_id" || k == "provider");
    }
    walk(raw);
    strip_secret_keys(raw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sites_lose_their_credentials_and_map_their_state() {
        let raw = json!({"id": 7, "url": "shop.example.invalid", "status": "active",
            "is_ssl": false, "is_wsod": false, "type": "staging",
            "db_pass": "s1", "htpasswd": {"user": "u", "password": "s2"},
            "system_user": {"username": "shop", "sftp_pass": "s3"},
            "wp_keys": {"AUTH_KEY": "s4"}, "server": {"id": 1, "region": "nyc1"}});
        let r = record(Kind::WebService, raw).expect("record");
        let text = r.full_api_data.to_string();
        for s in ["s1", "s2", "s3", "s4"] {
            assert!(!text.contains(&format!("\"{s}\"")), "{s} in {text}");
        }
        assert!(text.contains("\"username\":\"shop\""), "{text}");
        assert_eq!(
            (r.status, r.name.as_str()),
            (Status::Active, "shop.example.invalid")
        );
        assert_eq!(r.region.as_deref(), Some("nyc1"));
        assert_eq!(
            r.details,
            Details::WebService {
                production_url: Some("http://shop.example.invalid".into()),
                environment: Some("staging".into()),
                framework: Some("wordpress".into()),
            }
        );
        let wsod = json!({"id": 8, "url": "x.invalid", "status": "active", "is_wsod": true});
        let r = record(Kind::WebService, wsod).expect("record");
        assert_eq!(
            (r.status, r.provider_status.as_deref()),
            (Status::Error, Some("wsod"))
        );
    }

    #[test]
    fn a_dns_integration_keeps_only_its_provider() {
        let raw = json!({"id": 3, "url": "a.invalid", "status": "active",
            "user_dns": {"id": 1, "dns_provider_id": 2, "provider": {"id": 2, "name": "cloudflare"},
                         "email": "ops@example.invalid", "key": "s5"}});
        let r = record(Kind::Domain, raw).expect("record");
        assert_eq!(
            r.full_api_data["user_dns"],
            json!({"id": 1, "dns_provider_id": 2, "provider": {"id": 2, "name": "cloudflare"}})
        );
    }
}
