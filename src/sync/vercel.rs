//! Vercel: projects → web services, domains.
//!
//! Envelope `{projects: [...], pagination: {count, next, prev}}` (and `{domains: ...}`): `next` is
//! a timestamp cursor passed back as `until` (`from` walks the other way), `limit` at most 100,
//! `Authorization: Bearer`, rate limits in `X-RateLimit-*`. A project's `env` (its environment
//! variables, values included) is dropped before `full_api_data` is stored.
//!
//! Actions: projects redeploy their latest deployment to production.

use chrono::DateTime;
use serde_json::{Value, json};

use super::action::{self, Summary};
use super::{
    Action, Collection, Details, FetchError, Kind, Listing, NextPage, PageObserver, Paging,
    Provider, Record, Session, Status, Target, collection, id_string, list_pages, str_at,
    strip_secret_keys,
};

pub struct Vercel;

/// The largest page Vercel serves.
pub const LIMIT: u32 = 100;

/// A timestamp cursor in `pagination.next`, passed back as `until`.
const PAGING: Paging = Paging {
    size: ("limit", LIMIT),
    next: NextPage::Cursor {
        at: "/pagination/next",
        param: "until",
    },
    ok: None,
};

const COLLECTIONS: [Collection; 2] = [
    collection("/v9/projects", "projects", Kind::WebService),
    collection("/v5/domains", "domains", Kind::Domain),
];

#[async_trait::async_trait]
impl Provider for Vercel {
    fn name(&self) -> &'static str {
        "vercel"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.vercel.com"
    }

    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError> {
        list_pages(session, &PAGING, &COLLECTIONS, record, on_page).await
    }

    async fn verify(&self, session: &mut Session) -> Result<(), FetchError> {
        session.get_json("/v2/user", &[]).await.map(drop)
    }

    fn actions(&self, kind: Kind) -> &'static [Action] {
        match kind {
            Kind::WebService => &[Action::Redeploy],
            _ => &[],
        }
    }

    /// A redeploy: `POST /v13/deployments` with `{name, project, deploymentId, target:
    /// "production"}`, where `deploymentId` is the project's latest deployment as the last sync
    /// recorded it (`latestDeployments[0].id`); answered with the new deployment
    /// `{id, readyState, ...}`.
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<Summary, FetchError> {
        const PATH: &str = "/v13/deployments";
        let project = action::segment(target)?;
        let latest = str_at(&target.api_data, "/latestDeployments/0/id")
            .filter(|id| action::is_path_safe(id));
        let (Action::Redeploy, Some(latest)) = (action, latest) else {
            return Err(action::lacking(PATH, "deployment to redeploy"));
        };
        let body = json!({
            "name": target.name, "project": project, "deploymentId": latest,
            "target": "production"
        });
        let answer = session.post_json(PATH, &body).await?;
        Ok(format!(
            "deployment {} of {latest}: {}",
            str_at(&answer, "/id").unwrap_or_else(|| "?".into()),
            str_at(&answer, "/readyState").unwrap_or_else(|| "accepted".into())
        ))
    }
}

fn record(kind: Kind, mut raw: Value) -> Option<Record> {
    let id = id_string(raw.get("id")?)?;
    let (name, word, status, details) = match kind {
        Kind::Domain => domain(&raw),
        _ => project(&raw),
    };
    if let Some(map) = raw.as_object_mut() {
        map.remove("env");
    }
    strip_secret_keys(&mut raw);
    Some(Record {
        name: name.unwrap_or_else(|| id.clone()),
        provider_resource_id: id,
        status,
        provider_status: word,
        region: str_at(&raw, "/serverlessFunctionRegion"),
        full_api_data: raw,
        details,
    })
}

type Mapped = (Option<String>, Option<String>, Status, Details);

fn project(raw: &Value) -> Mapped {
    let word = str_at(raw, "/latestDeployments/0/readyState");
    let status = match word.as_deref() {
        Some("READY") => Status::Active,
        Some("BUILDING" | "QUEUED" | "INITIALIZING") => Status::Provisioning,
        Some("ERROR") => Status::Error,
        Some("CANCELED") => Status::Stopped,
        _ => Status::Unknown,
    };
    let url = str_at(raw, "/targets/production/alias/0")
        .or_else(|| str_at(raw, "/alias/0/domain"))
        // An alias is a host name; one already written as a URL is kept as it is.
        .map(|alias| match alias.contains("://") {
            true => alias,
            false => format!("https://{alias}"),
        });
    let details = Details::WebService {
        production_url: url,
        environment: Some("production".to_owned()),
        framework: str_at(raw, "/framework"),
    };
    (str_at(raw, "/name"), word, status, details)
}

fn domain(raw: &Value) -> Mapped {
    let verified = raw["verified"].as_bool();
    let (word, status) = match verified {
        Some(true) => ("verified", Status::Active),
        Some(false) => ("unverified", Status::Provisioning),
        None => ("unknown", Status::Unknown),
    };
    let name = str_at(raw, "/name").unwrap_or_default();
    let details = Details::Domain {
        domain_name: name.clone(),
        expires_at: raw["expiresAt"]
            .as_i64()
            .and_then(DateTime::from_timestamp_millis),
        auto_renew: raw["renew"].as_bool(),
    };
    (Some(name), Some(word.to_owned()), status, details)
}
