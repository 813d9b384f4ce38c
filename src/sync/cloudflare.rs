//! Cloudflare: zones → domains, each zone's DNS records kept in its `full_api_data`.
//!
//! API v4 (`https://api.cloudflare.com/client/v4`), `Authorization: Bearer <API token>`. Every
//! answer is the envelope `{success, errors: [{code, message}], messages, result, result_info:
//! {page, per_page, count, total_count, total_pages}}`; a page whose `success` is not `true`
//! fails the listing like a malformed one. Pages are numbered (`page`, `per_page`) up to
//! `result_info.total_pages`, which every page must carry. A 429 carries `retry-after`
//! (Cloudflare's own `ratelimit` / `ratelimit-policy` headers are not read).
//!
//! Endpoints: `GET /zones` (`per_page` 50, the most it serves) and, for each zone,
//! `GET /zones/{zone_id}/dns_records` (`per_page` 100). The key check lists one page of zones
//! (`per_page=5`), which any token able to sync can do, account-owned tokens included.
//!
//! Fields read: a zone's `id`, `name`, `status` (`active`, `pending`, `initializing`, `moved`,
//! `deactivated`). The zone object is kept (name servers, original name servers, plan, `paused`,
//! `type`, ...) with `owner.email` and `verification_key` removed, plus credential-named keys
//! ([`strip_secret_keys`]). Its DNS records are added as `dns_records`, at most
//! [`MAX_RECORDS_PER_ZONE`] of them (the first in Cloudflare's order), and
//! `dns_records_truncated` says whether the zone has more, so one huge zone cannot bloat a row
//! or a run (it costs at most one page past the cap).
//!
//! Actions: a zone's cache is purged entirely (`POST /zones/{zone_id}/purge_cache`). A zone id is sent back in a path, so it must be alphanumeric (Cloudflare's are 32 hex
//! digits); any other fails the listing.

use serde_json::{Value, json};

use super::action::{self, Summary};
use super::{
    Action, Collection, Details, FetchError, FetchErrorKind, Kind, Listing, NextPage, PageObserver,
    Paging, Provider, Record, Session, Status, Target, collection, id_string, list_pages, str_at,
    strip_secret_keys, walk_pages,
};

pub struct Cloudflare;

/// The largest page of zones Cloudflare serves.
pub const PER_PAGE: u32 = 50;
/// The page size asked for when listing a zone's DNS records.
pub const RECORDS_PER_PAGE: u32 = 100;
/// The most DNS records kept per zone.
pub const MAX_RECORDS_PER_ZONE: usize = 500;

const fn paging(size: u32) -> Paging {
    Paging {
        size: ("per_page", size),
        next: NextPage::Counted("/result_info/total_pages"),
        ok: Some("/success"),
    }
}

const PAGING: Paging = paging(PER_PAGE);
const RECORD_PAGING: Paging = paging(RECORDS_PER_PAGE);

const COLLECTIONS: [Collection; 1] = [collection("/zones", "result", Kind::Domain)];

#[async_trait::async_trait]
impl Provider for Cloudflare {
    fn name(&self) -> &'static str {
        "cloudflare"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.cloudflare.com/client/v4"
    }

    async fn list_all(
        &self,
        session: &mut Session,
        on_page: PageObserver<'_>,
    ) -> Result<Listing, FetchError> {
        let mut listing = list_pages(session, &PAGING, &COLLECTIONS, record, on_page).await?;
        for zone in &mut listing.records {
            let records = dns_records(session, &zone.provider_resource_id).await?;
            if let Some(map) = zone.full_api_data.as_object_mut() {
                map.extend(records);
            }
        }
        Ok(listing)
    }

    fn actions(&self, kind: Kind) -> &'static [Action] {
        match kind {
            Kind::Domain => &[Action::PurgeCache],
            _ => &[],
        }
    }

    /// `POST /zones/{zone_id}/purge_cache` with `{"purge_everything": true}`, answered with the
    /// envelope (`result: {id}`); a `success` that is not `true` is a refusal.
    async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        target: &Target,
    ) -> Result<Summary, FetchError> {
        let zone = action::segment(target)?;
        if action != Action::PurgeCache {
            return Err(action::lacking("/zones", "such zone action"));
        }
        let path = format!("/zones/{zone}/purge_cache");
        let body = json!({ "purge_everything": true });
        let answer = session.post_json(&path, &body).await?;
        if answer.get("success") != Some(&Value::Bool(true)) {
            let why = str_at(&answer, "/errors/0/message").unwrap_or_else(|| "no reason".into());
            return Err(action::refused(session, &path, &why));
        }
        Ok(format!("zone {zone}: everything purged"))
    }

    async fn verify(&self, session: &mut Session) -> Result<(), FetchError> {
        let body = session
            .get_json("/zones", &[("per_page", "5".to_owned())])
            .await?;
        match body["success"].as_bool() {
            Some(true) => Ok(()),
            _ => Err(FetchError::new(
                "/zones",
                FetchErrorKind::Malformed("`success` is not true".into()),
            )),
        }
    }
}

/// A zone's DNS records, at most [`MAX_RECORDS_PER_ZONE`], as the keys added to its object:
/// `dns_records` and `dns_records_truncated`.
async fn dns_records(
    session: &mut Session,
    zone: &str,
) -> Result<serde_json::Map<String, Value>, FetchError> {
    if zone.is_empty() || zone.len() > 64 || !zone.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let what = "a zone id that is not alphanumeric".to_owned();
        return Err(FetchError::new("/zones", FetchErrorKind::Malformed(what)));
    }
    let path = format!("/zones/{zone}/dns_records");
    let mut records = Vec::new();
    // One item past the cap tells a zone that has more from one that has exactly the cap.
    walk_pages(session, &RECORD_PAGING, &path, "result", &mut |items| {
        for mut item in items {
            strip_secret_keys(&mut item);
            records.push(item);
        }
        Ok(records.len() <= MAX_RECORDS_PER_ZONE)
    })
    .await?;
    let truncated = records.len() > MAX_RECORDS_PER_ZONE;
    records.truncate(MAX_RECORDS_PER_ZONE);
    let mut out = serde_json::Map::new();
    out.insert("dns_records".into(), Value::Array(records));
    out.insert("dns_records_truncated".into(), json!(truncated));
    Ok(out)
}

fn record(_: Kind, mut raw: Value) -> Option<Record> {
    let id = id_string(raw.get("id")?)?;
    let word = str_at(&raw, "/status");
    let status = match word.as_deref() {
        Some("active") => Status::Active,
        Some("pending" | "initializing") => Status::Provisioning,
        Some("moved" | "deactivated") => Status::Stopped,
        _ => Status::Unknown,
    };
    let name = str_at(&raw, "/name").unwrap_or_default();
    strip(&mut raw);
    Some(Record {
        name: if name.is_empty() {
            id.clone()
        } else {
            name.clone()
        },
        provider_resource_id: id,
        status,
        provider_status: word,
        region: None,
        full_api_data: raw,
        details: Details::Domain {
            domain_name: name,
            expires_at: None,
            auto_renew: None,
        },
    })
}

/// Removes the owner's e-mail, a partial zone's verification key and credential-named keys.
fn strip(raw: &mut Value) {
    if let Some(map) = raw.as_object_mut() {
        map.remove("verification_key");
        if let Some(owner) = map.get_mut("owner").and_then(Value::as_object_mut) {
            owner.remove("email");
        }
    }
    strip_secret_keys(raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_keep_plan_and_name_servers_but_not_the_owner_email() {
        let raw = json!({"id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "a.invalid",
            "status": "pending", "name_servers": ["x.ns.invalid"], "plan": {"name": "Free"},
            "owner": {"id": "o1", "type": "user", "email": "me@example.invalid"},
            "verification_key": "v-123"});
        let r = record(Kind::Domain, raw).expect("record");
        assert_eq!(r.status, Status::Provisioning);
        assert_eq!(
            r.full_api_data,
            json!({"id": "023e105f4ecef8ad9ca31a8372d0c353", "name": "a.invalid",
                   "status": "pending", "name_servers": ["x.ns.invalid"],
                   "plan": {"name": "Free"}, "owner": {"id": "o1", "type": "user"}})
        );
    }
}
