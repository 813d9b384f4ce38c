//! DigitalOcean: droplets → servers, apps → web services, domains, database clusters → databases.
//!
//! Envelope `{<collection>: [...], links: {pages: {next}}, meta: {total}}`, pages by `page` and
//! `per_page` (at most 200), `Authorization: Bearer`, rate limits in `ratelimit-limit`,
//! `ratelimit-remaining` and `ratelimit-reset` (epoch seconds). Database clusters carry their
//! passwords and connection URIs (`connection`, `private_connection`, standby connections and
//! `users[].password`): those are removed before `full_api_data` is stored.
//!
//! Actions: droplets reboot, power off and power on (`POST /v2/droplets/{id}/actions`).

use serde_json::{Value, json};

use super::action::{self, Summary};
use super::{
    Action, Collection, Details, FetchError, Kind, Listing, NextPage, PageObserver, Paging,
    Provider, Record, Session, Status, Target, collection, id_string, int_at, list_pages, str_at,
    strip_secret_keys,
};

pub struct DigitalOcean;

/// The largest page DigitalOcean serves.
pub const PER_PAGE: u32 = 200;

/// Numbered pages while the envelope links a next one.
const PAGING: Paging = Paging {
    size: ("per_page", PER_PAGE),
    next: NextPage::Linked("/links/pages/next"),
    ok: None,
};

/// The collections listed, with the envelope key of each and its kind.
const COLLECTIONS: [Collection; 4] = [
    collection("/v2/droplets", "droplets", Kind::Server),
    collection("/v2/apps", "apps", Kind::WebService),
    collection("/v2/domains", "domains", Kind::Domain),
    collection("/v2/databases", "databases", Kind::Database),
];

#[async_trait::async_trait]
impl Provider for DigitalOcean {
    fn name(&self) -> &'static str {
        "digitalocean"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.digitalocean.com"
    }

    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError> {
        list_pages(session, &PAGING, &COLLECTIONS, record, on_page).await
    }

    fn actions(&self, kind: Kind) -> &'static [Action] {
        match kind {
            Kind::Server => &[Action::Reboot, Action::PowerOff, Action::PowerOn],
            _ => &[],
        }
    }

    /// A droplet action: `POST /v2/droplets/{id}/actions` with `{"type": "reboot" | "power_off"
    /// | "power_on"}`, answered `201 {action: {id, status: "in-progress", type, ...}}`; the
    /// droplet's `status` follows (`off`, then `active` again after a reboot).
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<Summary, FetchError> {
        let id = action::segment(target)?;
        let word = match action {
            Action::Reboot | Action::PowerOff | Action::PowerOn => action.as_str(),
            _ => return Err(action::lacking("/v2/droplets", "such droplet action")),
        };
        let path = format!("/v2/droplets/{id}/actions");
        let answer = session.post_json(&path, &json!({ "type": word })).await?;
        let run = answer.get("action").unwrap_or(&Value::Null);
        Ok(format!(
            "droplet action {} ({word}): {}",
            run.get("id")
                .and_then(id_string)
                .unwrap_or_else(|| "?".into()),
            str_at(run, "/status").unwrap_or_else(|| "accepted".into())
        ))
    }

    async fn verify(&self, session: &mut Session) -> Result<(), FetchError> {
        session.get_json("/v2/account", &[]).await.map(drop)
    }
}

fn record(kind: Kind, mut raw: Value) -> Option<Record> {
    // Domains have no id: their name is the identifier.
    let id = match kind {
        Kind::Domain => str_at(&raw, "/name")?,
        _ => id_string(raw.get("id")?)?,
    };
    let (name, word, status, details) = match kind {
        Kind::Server => server(&raw),
        Kind::WebService => app(&raw),
        Kind::Domain => domain(&raw),
        Kind::Database => database(&raw),
    };
    let region = str_at(&raw, "/region/slug")
        .or_else(|| str_at(&raw, "/region"))
        .or_else(|| str_at(&raw, "/spec/region"));
    strip(kind, &mut raw);
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
        Some("new") => Status::Provisioning,
        Some("off" | "archive") => Status::Stopped,
        _ => Status::Unknown,
    };
    let public_ip = |version: &str| {
        raw.pointer(&format!("/networks/{version}"))
            .and_then(Value::as_array)
            .and_then(|nets| nets.iter().find(|n| n["type"] == "public"))
            .and_then(|n| n["ip_address"].as_str())
            .map(str::to_owned)
    };
    let details = Details::Server {
        primary_ip_address: public_ip("v4"),
        ipv6: public_ip("v6"),
        vcpus: int_at(raw, "/vcpus"),
        memory_mb: int_at(raw, "/memory"),
        disk_gb: int_at(raw, "/disk"),
        image: str_at(raw, "/image/slug").or_else(|| str_at(raw, "/image/name")),
    };
    (str_at(raw, "/name"), word, status, details)
}

fn app(raw: &Value) -> Mapped {
    let word = str_at(raw, "/in_progress_deployment/phase")
        .or_else(|| str_at(raw, "/active_deployment/phase"));
    let status = match word.as_deref() {
        Some("ACTIVE" | "SUPERSEDED") => Status::Active,
        Some("PENDING_BUILD" | "BUILDING" | "PENDING_DEPLOY" | "DEPLOYING") => Status::Provisioning,
        Some("ERROR") => Status::Error,
        Some("CANCELED") => Status::Stopped,
        _ => Status::Unknown,
    };
    let details = Details::WebService {
        production_url: str_at(raw, "/live_url").or_else(|| str_at(raw, "/default_ingress")),
        environment: Some("production".to_owned()),
        framework: str_at(raw, "/spec/services/0/environment_slug"),
    };
    (str_at(raw, "/spec/name"), word, status, details)
}

fn domain(raw: &Value) -> Mapped {
    let name = str_at(raw, "/name").unwrap_or_default();
    let details = Details::Domain {
        domain_name: name.clone(),
        expires_at: None,
        auto_renew: None,
    };
    (Some(name), None, Status::Active, details)
}

fn database(raw: &Value) -> Mapped {
    let word = str_at(raw, "/status");
    let status = match word.as_deref() {
        Some("online") => Status::Active,
        Some("creating" | "resizing" | "migrating" | "forking") => Status::Provisioning,
        Some("offline") => Status::Stopped,
        _ => Status::Unknown,
    };
    let details = Details::Database {
        engine: str_at(raw, "/engine"),
        version: str_at(raw, "/version"),
        host: str_at(raw, "/connection/host"),
        port: int_at(raw, "/connection/port"),
    };
    (str_at(raw, "/name"), word, status, details)
}

/// Removes credentials: a cluster's passwords and URIs, its private and standby connections.
fn strip(kind: Kind, raw: &mut Value) {
    if kind == Kind::Database
        && let Some(map) = raw.as_object_mut()
    {
        for key in [
            "private_connection",
            "standby_connection",
            "standby_private_connection",
        ] {
            map.remove(key);
        }
        if let Some(conn) = map.get_mut("connection").and_then(Value::as_object_mut) {
            conn.remove("password");
            conn.remove("uri");
        }
    }
    strip_secret_keys(raw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn database_clusters_lose_their_credentials() {
        let raw = json!({"id": "db-1", "name": "main", "engine": "pg", "version": "16",
            "status": "online", "region": "nyc1",
            "connection": {"host": "h", "port": 25060, "user": "doadmin", "password": "pw",
                           "uri": "postgresql://doadmin:pw@h:25060/defaultdb"},
            "private_connection": {"host": "p", "password": "pw"},
            "users": [{"name": "doadmin", "role": "primary", "password": "pw"}]});
        let r = record(Kind::Database, raw).expect("record");
        let text = r.full_api_data.to_string();
        assert!(!text.contains("pw"), "{text}");
        assert_eq!(r.status, Status::Active);
        assert_eq!(r.region.as_deref(), Some("nyc1"));
        assert_eq!(
            r.details,
            Details::Database {
                engine: Some("pg".into()),
                version: Some("16".into()),
                host: Some("h".into()),
                port: Some(25060)
            }
        );
    }
}
