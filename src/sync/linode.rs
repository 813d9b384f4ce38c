//! Linode (Akamai): instances → servers, domains, managed databases.
//!
//! Envelope `{data: [...], page, pages, results}`, pages by `page` and `page_size` (25 to 500),
//! `Authorization: Bearer`, rate limits in `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (epoch seconds). Database passwords live behind a separate credentials
//! endpoint that is never called; any credential-named key is still stripped.
//!
//! Actions: instances reboot, shut down (power off) and boot (power on).

use serde_json::{Value, json};

use super::action::{self, Summary};
use super::{
    Action, Collection, Details, FetchError, Kind, Listing, NextPage, PageObserver, Paging,
    Provider, Record, Session, Status, Target, collection, id_string, int_at, list_pages, str_at,
    strip_secret_keys,
};

pub struct Linode;

/// The largest page Linode serves.
pub const PAGE_SIZE: u32 = 500;

/// Numbered pages up to the count every envelope carries.
const PAGING: Paging = Paging {
    size: ("page_size", PAGE_SIZE),
    next: NextPage::Counted("/pages"),
    ok: None,
};

/// Every collection's items are in `data`.
const COLLECTIONS: [Collection; 3] = [
    collection("/linode/instances", "data", Kind::Server),
    collection("/domains", "data", Kind::Domain),
    collection("/databases/instances", "data", Kind::Database),
];

#[async_trait::async_trait]
impl Provider for Linode {
    fn name(&self) -> &'static str {
        "linode"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.linode.com/v4"
    }

    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError> {
        list_pages(session, &PAGING, &COLLECTIONS, record, on_page).await
    }

    async fn verify(&self, session: &mut Session) -> Result<(), FetchError> {
        session.get_json("/profile", &[]).await.map(drop)
    }

    fn actions(&self, kind: Kind) -> &'static [Action] {
        match kind {
            Kind::Server => &[Action::Reboot, Action::PowerOff, Action::PowerOn],
            _ => &[],
        }
    }

    /// `POST /linode/instances/{id}/reboot`, `/shutdown` (power off) or `/boot` (power on), with
    /// an empty object, answered `200 {}`; the instance's `status` follows (`rebooting`,
    /// `shutting_down`, `booting`, then `running` or `offline`). A refusal (booting a running
    /// instance) is a 400 with `{errors: [{reason}]}`.
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<Summary, FetchError> {
        let id = action::segment(target)?;
        let word = match action {
            Action::Reboot => "reboot",
            Action::PowerOff => "shutdown",
            Action::PowerOn => "boot",
            _ => return Err(action::lacking("/linode/instances", "such instance action")),
        };
        let path = format!("/linode/instances/{id}/{word}");
        session.post_json(&path, &json!({})).await?;
        Ok(format!("instance {id}: {word} accepted"))
    }
}

fn record(kind: Kind, mut raw: Value) -> Option<Record> {
    let id = id_string(raw.get("id")?)?;
    let word = str_at(&raw, "/status");
    let (name, status, details) = match kind {
        Kind::Server => instance(&raw, word.as_deref()),
        Kind::Domain => domain(&raw, word.as_deref()),
        _ => database(&raw, word.as_deref()),
    };
    let region = str_at(&raw, "/region");
    strip_secret_keys(&mut raw);
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

type Mapped = (Option<String>, Status, Details);

fn instance(raw: &Value, word: Option<&str>) -> Mapped {
    let status = match word {
        Some("running") => Status::Active,
        Some(
            "booting" | "rebooting" | "provisioning" | "migrating" | "rebuilding" | "cloning"
            | "restoring" | "resizing",
        ) => Status::Provisioning,
        Some("offline" | "shutting_down" | "stopped") => Status::Stopped,
        Some("deleting") => Status::Deleted,
        _ => Status::Unknown,
    };
    let details = Details::Server {
        primary_ip_address: str_at(raw, "/ipv4/0"),
        ipv6: str_at(raw, "/ipv6").map(|v| v.split('/').next().unwrap_or_default().to_owned()),
        vcpus: int_at(raw, "/specs/vcpus"),
        memory_mb: int_at(raw, "/specs/memory"),
        disk_gb: int_at(raw, "/specs/disk").map(|mb| mb / 1024),
        image: str_at(raw, "/image"),
    };
    (str_at(raw, "/label"), status, details)
}

fn domain(raw: &Value, word: Option<&str>) -> Mapped {
    let status = match word {
        Some("active") => Status::Active,
        Some("disabled") => Status::Stopped,
        Some("edit_mode") => Status::Provisioning,
        Some("has_errors") => Status::Error,
        _ => Status::Unknown,
    };
    let name = str_at(raw, "/domain").unwrap_or_default();
    let details = Details::Domain {
        domain_name: name.clone(),
        expires_at: None,
        auto_renew: None,
    };
    (Some(name), status, details)
}

fn database(raw: &Value, word: Option<&str>) -> Mapped {
    let status = match word {
        Some("active" | "backing_up") => Status::Active,
        Some("provisioning" | "resuming" | "restoring" | "updating" | "resizing" | "migrating") => {
            Status::Provisioning
        }
        Some("suspending" | "suspended") => Status::Stopped,
        Some("failed" | "degraded") => Status::Error,
        _ => Status::Unknown,
    };
    let details = Details::Database {
        engine: str_at(raw, "/engine"),
        version: str_at(raw, "/version"),
        host: str_at(raw, "/hosts/primary"),
        port: int_at(raw, "/port"),
    };
    (str_at(raw, "/label"), status, details)
}
