//! The JSON the fakes serve: each provider's routes, envelopes, items and error bodies.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{FakeKind, FakeResource, SECRET_MARKER};
use crate::sync::Kind;

/// Vercel's cursors are timestamps; the fake counts down from this one.
const VERCEL_EPOCH_MS: usize = 1_700_000_000_000;

/// The status words a provider uses for a kind, cycled over the generated resources.
pub fn status_words(fake: FakeKind, kind: Kind) -> &'static [&'static str] {
    match (fake, kind) {
        (FakeKind::DigitalOcean, Kind::Server) => &["active", "new", "off", "archive"],
        (FakeKind::DigitalOcean, Kind::WebService) => &["ACTIVE", "DEPLOYING", "ERROR", "CANCELED"],
        (FakeKind::DigitalOcean, Kind::Database) => &["online", "creating", "offline", "resizing"],
        (FakeKind::Linode, Kind::Server) => {
            &["running", "provisioning", "offline", "deleting", "booting"]
        }
        (FakeKind::Linode, Kind::Domain) => &["active", "disabled", "has_errors", "edit_mode"],
        (FakeKind::Linode, Kind::Database) => &["active", "provisioning", "suspended", "failed"],
        (FakeKind::Vercel, Kind::WebService) => &["READY", "BUILDING", "ERROR", "CANCELED"],
        (FakeKind::Vercel, Kind::Domain) => &["verified", "unverified"],
        (FakeKind::GridPane, Kind::Server) => &["active", "building", "inactive", "failed"],
        (FakeKind::GridPane, Kind::WebService) => &["active", "building", "disabled", "failed"],
        (FakeKind::GridPane, Kind::Domain) => &["active", "pending", "failed"],
        (FakeKind::Cloudflare, Kind::Domain) => &["active", "pending", "initializing", "moved"],
        _ => &["active"],
    }
}

pub fn default_name(kind: Kind, index: usize) -> String {
    match kind {
        Kind::Server => format!("server-{index:05}"),
        Kind::WebService => format!("app-{index:05}"),
        Kind::Domain => format!("site-{index:05}.invalid"),
        Kind::Database => format!("db-{index:05}"),
    }
}

/// The listing a path asks for, and its envelope key.
pub fn route(fake: FakeKind, path: &str) -> Option<(Kind, &'static str)> {
    let route = match (fake, path) {
        (FakeKind::DigitalOcean, "/v2/droplets") => (Kind::Server, "droplets"),
        (FakeKind::DigitalOcean, "/v2/apps") => (Kind::WebService, "apps"),
        (FakeKind::DigitalOcean, "/v2/domains") => (Kind::Domain, "domains"),
        (FakeKind::DigitalOcean, "/v2/databases") => (Kind::Database, "databases"),
        (FakeKind::Linode, "/v4/linode/instances") => (Kind::Server, "data"),
        (FakeKind::Linode, "/v4/domains") => (Kind::Domain, "data"),
        (FakeKind::Linode, "/v4/databases/instances") => (Kind::Database, "data"),
        (FakeKind::Vercel, "/v9/projects") => (Kind::WebService, "projects"),
        (FakeKind::Vercel, "/v5/domains") => (Kind::Domain, "domains"),
        (FakeKind::GridPane, "/oauth/api/v1/server") => (Kind::Server, "data"),
        (FakeKind::GridPane, "/oauth/api/v1/site") => (Kind::WebService, "data"),
        // Nested one level deeper: `{data: {domains: [...]}}`.
        (FakeKind::GridPane, "/oauth/api/v1/domain") => (Kind::Domain, "domains"),
        (FakeKind::Cloudflare, "/client/v4/zones") => (Kind::Domain, "result"),
        _ => return None,
    };
    Some(route)
}

/// The zone id of a Cloudflare `/zones/{id}/dns_records` path.
pub fn dns_records_zone(fake: FakeKind, path: &str) -> Option<&str> {
    if fake != FakeKind::Cloudflare {
        return None;
    }
    path.strip_prefix("/client/v4/zones/")?
        .strip_suffix("/dns_records")
        .filter(|id| !id.contains('/'))
}

/// The id of the Cloudflare zone generated at `index` (32 hex digits, like Cloudflare's).
pub fn cloudflare_zone_id(index: usize) -> String {
    format!(
        "{:032x}",
        0x023e_105f_4ece_f8ad_9ca3_1a83_72d0_0000u128 + index as u128
    )
}

/// A 404 body as the provider words it.
pub fn not_found(fake: FakeKind) -> String {
    match fake {
        FakeKind::Cloudflare => {
            r#"{"success":false,"errors":[{"code":7003,"message":"Could not route to /zones, perhaps your object identifier is invalid?"}],"messages":[],"result":null}"#
        }
        _ => r#"{"message":"not found"}"#,
    }
    .to_owned()
}

/// The account endpoints credentials checks use.
pub fn is_profile(fake: FakeKind, path: &str) -> bool {
    matches!(
        (fake, path),
        (FakeKind::DigitalOcean, "/v2/account")
            | (FakeKind::Linode, "/v4/profile")
            | (FakeKind::Vercel, "/v2/user")
            | (FakeKind::GridPane, "/oauth/api/v1/user")
    )
}

/// The slice of a listing one request asks for.
pub struct Page {
    pub offset: usize,
    pub size: usize,
}

impl Page {
    pub fn from_query(fake: FakeKind, query: &HashMap<String, String>, cap: Option<usize>) -> Self {
        let num = |key: &str| query.get(key).and_then(|v| v.parse::<usize>().ok());
        if fake == FakeKind::Cloudflare {
            return Self::numbered(query, 20, 50, cap);
        }
        let (size, max) = match fake {
            FakeKind::DigitalOcean => (num("per_page").unwrap_or(20), 200),
            FakeKind::Linode => (num("page_size").unwrap_or(100), 500),
            FakeKind::Vercel => (num("limit").unwrap_or(20), 100),
            FakeKind::GridPane => (num("per_page").unwrap_or(10), 100),
            FakeKind::Cloudflare => (num("per_page").unwrap_or(20), 50),
        };
        let size = size.clamp(1, max).min(cap.unwrap_or(usize::MAX));
        let offset = match fake {
            FakeKind::Vercel => num("until").map_or(0, |u| VERCEL_EPOCH_MS.saturating_sub(u)),
            _ => (num("page").unwrap_or(1).max(1) - 1) * size,
        };
        Self { offset, size }
    }

    /// `page` and `per_page` (from `default` up to `max`, and at most `cap`).
    pub fn numbered(
        query: &HashMap<String, String>,
        default: usize,
        max: usize,
        cap: Option<usize>,
    ) -> Self {
        let num = |key: &str| query.get(key).and_then(|v| v.parse::<usize>().ok());
        let size = num("per_page")
            .unwrap_or(default)
            .clamp(1, max)
            .min(cap.unwrap_or(usize::MAX));
        let offset = (num("page").unwrap_or(1).max(1) - 1) * size;
        Self { offset, size }
    }

    /// 1-based page number (faults are keyed on it).
    pub fn number(&self) -> usize {
        self.offset / self.size + 1
    }
}

/// One page of a listing in the provider's envelope.
pub fn envelope(
    fake: FakeKind,
    kind: Kind,
    key: &str,
    all: &[FakeResource],
    page: &Page,
    base: &str,
) -> Value {
    let total = all.len();
    let end = (page.offset + page.size).min(total);
    let items: Vec<Value> = all
        .get(page.offset.min(total)..end)
        .unwrap_or_default()
        .iter()
        .map(|r| item(fake, kind, r))
        .collect();
    let more = end < total;
    match fake {
        FakeKind::DigitalOcean => {
            let n = page.number();
            let url = |p: usize| format!("{base}/v2/{key}?page={p}&per_page={}", page.size);
            let last = total.div_ceil(page.size).max(1);
            let mut pages = serde_json::Map::new();
            if n > 1 {
                pages.insert("first".into(), json!(url(1)));
                pages.insert("prev".into(), json!(url(n - 1)));
            }
            if more {
                pages.insert("next".into(), json!(url(n + 1)));
                pages.insert("last".into(), json!(url(last)));
            }
            json!({ key: items, "links": { "pages": pages }, "meta": { "total": total } })
        }
        FakeKind::Linode => json!({
            "data": items, "page": page.number(),
            "pages": total.div_ceil(page.size).max(1), "results": total
        }),
        FakeKind::Vercel => {
            let next = more.then(|| VERCEL_EPOCH_MS - end);
            let prev = (page.offset > 0).then(|| VERCEL_EPOCH_MS - page.offset);
            json!({ key: items, "pagination": { "count": items.len(), "next": next, "prev": prev } })
        }
        FakeKind::Cloudflare => cloudflare_envelope(items, total, page),
        FakeKind::GridPane => {
            // Laravel's paginated resource collection.
            let n = page.number();
            let path = format!("{base}/oauth/api/v1/{}", gridpane_path(kind));
            let url = |p: usize| format!("{path}?page={p}");
            let last = total.div_ceil(page.size).max(1);
            let data = match kind {
                Kind::Domain => json!({ "domains": items }),
                _ => json!(items),
            };
            json!({
                "data": data,
                "links": { "first": url(1), "last": url(last),
                           "prev": (n > 1).then(|| url(n - 1)), "next": more.then(|| url(n + 1)) },
                "meta": { "current_page": n, "from": page.offset + 1, "last_page": last,
                          "per_page": page.size, "to": end, "total": total, "path": path }
            })
        }
    }
}

/// Cloudflare's v4 envelope around one page of `total` items.
fn cloudflare_envelope(items: Vec<Value>, total: usize, page: &Page) -> Value {
    json!({
        "success": true, "errors": [], "messages": [], "result": items,
        "result_info": { "page": page.number(), "per_page": page.size, "count": items.len(),
                         "total_count": total, "total_pages": total.div_ceil(page.size).max(1) }
    })
}

/// One page of a zone's DNS records: the apex, then a cycle of record types, every address on
/// loopback.
pub fn dns_records(zone: &FakeResource, page: &Page) -> Value {
    let total = zone.dns_records;
    let end = (page.offset + page.size).min(total);
    let zone_id = cloudflare_zone_id(zone.index);
    let items = (page.offset.min(end)..end)
        .map(|j| {
            let name = match j {
                0 => zone.name.clone(),
                _ => format!("r{j}.{}", zone.name),
            };
            let (kind, content) = match j % 5 {
                0 => ("A", format!("127.2.{}.{}", (j / 250) % 250, j % 250 + 1)),
                1 => ("AAAA", "::1".to_owned()),
                2 => ("CNAME", zone.name.clone()),
                3 => ("TXT", "v=spf1 -all".to_owned()),
                _ => ("MX", format!("mail.{}", zone.name)),
            };
            json!({
                "id": format!("{:032x}", (zone.index as u128) << 32 | j as u128),
                "zone_id": zone_id, "zone_name": zone.name, "name": name, "type": kind,
                "content": content, "proxiable": kind != "TXT" && kind != "MX",
                "proxied": j % 2 == 0 && kind == "A", "ttl": 1, "comment": null, "tags": [],
                "created_on": "2025-01-01T00:00:00Z", "modified_on": "2025-01-01T00:00:00Z"
            })
        })
        .collect();
    cloudflare_envelope(items, total, page)
}

fn gridpane_path(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "server",
        Kind::WebService => "site",
        _ => "domain",
    }
}

/// What a provider answers with a 429 and with a 5xx.
pub fn error_bodies(fake: FakeKind) -> (&'static str, &'static str) {
    match fake {
        FakeKind::Cloudflare => (
            r#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}"#,
            r#"{"success":false,"errors":[{"code":10001,"message":"Internal server error"}],"messages":[],"result":null}"#,
        ),
        FakeKind::GridPane => (
            r#"{"message":"Too Many Attempts."}"#,
            r#"{"message":"Server Error"}"#,
        ),
        _ => (
            r#"{"id":"too_many_requests","message":"API Rate limit exceeded."}"#,
            r#"{"id":"server_error","message":"Server was unable to give you a response."}"#,
        ),
    }
}

/// A 401 body as the provider words it.
pub fn unauthorized(fake: FakeKind) -> String {
    match fake {
        FakeKind::DigitalOcean => r#"{"id":"unauthorized","message":"Unable to authenticate you"}"#,
        FakeKind::Linode => r#"{"errors":[{"reason":"Invalid Token"}]}"#,
        FakeKind::Vercel => r#"{"error":{"code":"forbidden","message":"Not authorized"}}"#,
        FakeKind::GridPane => r#"{"message":"Unauthenticated."}"#,
        FakeKind::Cloudflare => {
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#
        }
    }
    .to_owned()
}

/// One resource as the provider's JSON object.
pub fn item(fake: FakeKind, kind: Kind, r: &FakeResource) -> Value {
    match fake {
        FakeKind::DigitalOcean => digitalocean(kind, r),
        FakeKind::Linode => linode(kind, r),
        FakeKind::Vercel => vercel(kind, r),
        FakeKind::GridPane => gridpane(kind, r),
        FakeKind::Cloudflare => cloudflare(r),
    }
}

/// A made-up public address that can never leave the machine (127.1.0.0/16).
fn ip(i: usize) -> String {
    format!("127.1.{}.{}", (i / 250) % 250, i % 250 + 1)
}

fn digitalocean(kind: Kind, r: &FakeResource) -> Value {
    let i = r.index;
    let secret = format!("{SECRET_MARKER}-pw-{i}");
    match kind {
        Kind::Server => json!({
            "id": 100_000 + i, "name": r.name, "memory": 1024, "vcpus": 1, "disk": 25,
            "locked": false, "status": r.status, "created_at": "2025-01-01T00:00:00Z",
            "image": {"id": 1, "name": "24.04 (LTS) x64", "distribution": "Ubuntu", "slug": "ubuntu-24-04-x64"},
            "size_slug": "s-1vcpu-1gb",
            "networks": {
                "v4": [{"ip_address": format!("127.10.0.{}", i % 250 + 1), "type": "private"},
                       {"ip_address": r.address.clone().unwrap_or_else(|| ip(i)), "type": "public"}],
                "v6": [{"ip_address": "::1", "type": "public"}]
            },
            "region": {"slug": "nyc3", "name": "New York 3"}, "tags": ["fake"]
        }),
        Kind::WebService => json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "spec": {"name": r.name, "region": "nyc",
                     "services": [{"name": "web", "environment_slug": "node-js"}]},
            "default_ingress": format!("https://{}.ondigitalocean.localhost", r.name),
            "live_url": r.address.clone()
                .unwrap_or_else(|| format!("https://{}.ondigitalocean.localhost", r.name)),
            "region": {"slug": "nyc"},
            "active_deployment": {"id": format!("dep-{i}"), "phase": r.status}
        }),
        Kind::Domain => {
            json!({ "name": r.name, "ttl": 1800, "zone_file": format!("$ORIGIN {}.", r.name) })
        }
        Kind::Database => {
            let host = r
                .address
                .clone()
                .unwrap_or_else(|| format!("db-{i}.db.ondigitalocean.localhost"));
            let port = r.port.unwrap_or(25060);
            let connection = |host: &str| {
                json!({
                    "protocol": "postgresql", "database": "defaultdb", "host": host, "port": port,
                    "user": "doadmin", "password": secret, "ssl": true,
                    "uri": format!("postgresql://doadmin:{secret}@{host}:{port}/defaultdb?sslmode=require")
                })
            };
            json!({
                "id": format!("9cc10173-0000-4000-8000-{i:012}"), "name": r.name, "engine": "pg",
                "version": "16", "status": r.status, "num_nodes": 1, "size": "db-s-1vcpu-1gb",
                "region": "nyc1", "connection": connection(&host),
                "private_connection": connection(&format!("private-{host}")),
                "users": [{"name": "doadmin", "role": "primary", "password": secret}],
                "db_names": ["defaultdb"]
            })
        }
    }
}

fn linode(kind: Kind, r: &FakeResource) -> Value {
    let i = r.index;
    match kind {
        Kind::Server => json!({
            "id": 2_000_000 + i, "label": r.name, "status": r.status, "region": "us-east",
            "type": "g6-standard-1", "image": "linode/ubuntu24.04",
            "ipv4": [r.address.clone().unwrap_or_else(|| ip(i))],
            "ipv6": "::1/128",
            "specs": {"vcpus": 1, "memory": 2048, "disk": 51200, "transfer": 2000},
            // Not in the real API: proves credential-named keys never get stored.
            "root_password": format!("{SECRET_MARKER}-root-{i}")
        }),
        Kind::Database => json!({
            "id": 400_000 + i, "label": r.name, "engine": "postgresql", "version": "16.4",
            "status": r.status, "region": "us-east", "port": r.port.unwrap_or(5432), "ssl_connection": true,
            "hosts": {"primary": r.address.clone()
                          .unwrap_or_else(|| format!("lin-{i}-pgsql-primary.linodedb.localhost")),
                      "secondary": null},
            "root_password": format!("{SECRET_MARKER}-db-{i}")
        }),
        _ => json!({
            "id": 300_000 + i, "domain": r.name, "status": r.status, "type": "master",
            "soa_email": format!("admin@{}", r.name)
        }),
    }
}

fn vercel(kind: Kind, r: &FakeResource) -> Value {
    let i = r.index;
    match kind {
        Kind::Domain => json!({
            "id": format!("dom_{i:08}"), "name": r.name, "verified": r.status == "verified",
            "expiresAt": 1_893_456_000_000i64 + i as i64 * 86_400_000, "renew": true,
            "serviceType": "external"
        }),
        _ => json!({
            "id": format!("prj_{i:08}"), "name": r.name, "framework": "nextjs",
            "accountId": "team_fake", "createdAt": VERCEL_EPOCH_MS - i,
            "latestDeployments": [{"id": format!("dpl_{i}"), "readyState": r.status,
                                   "url": format!("{}-abc123.vercel.localhost", r.name)}],
            "targets": {"production": {
                "alias": [r.address.clone().unwrap_or_else(|| format!("{}.vercel.localhost", r.name))],
                "readyState": r.status}},
            "env": [{"key": "DATABASE_URL", "value": format!("{SECRET_MARKER}-env-{i}"), "type": "encrypted"}]
        }),
    }
}

fn gridpane(kind: Kind, r: &FakeResource) -> Value {
    let i = r.index;
    let secret = |what: &str| format!("{SECRET_MARKER}-{what}-{i}");
    match kind {
        Kind::Server => json!({
            "id": 50_000 + i, "label": r.name, "ip": r.address.clone().unwrap_or_else(|| ip(i)),
            "ipv6": "::1", "region": "nyc1", "region_label": "New York 1", "status": r.status,
            "database": "mariadb", "webserver": "nginx", "os_version": "ubuntu 24.04",
            "cpu": 2, "ram": 4096, "sub_id": format!("sub-{i}"), "user_id": 1, "provider_id": 3,
            "provider": {"id": 3, "name": "digitalocean"},
            "sites": [{"id": 70_000 + i, "url": format!("{}.gridpane.invalid", r.name)}],
            // Not all in the real API: proves passwords by any name never get stored.
            "system_users": [{"id": i, "username": "gpuser", "sudo_pass": secret("sudo")}],
            "mysql_root_password": secret("mysql"),
            "ssh_keys": [{"id": 1, "name": "deploy"}]
        }),
        Kind::WebService => json!({
            "id": 70_000 + i, "url": r.address.clone().unwrap_or_else(|| r.name.clone()),
            "status": r.status, "is_ssl": true, "is_wsod": false, "ssl_status": "succeed",
            "is_sso": false, "type": "primary", "php_version": "8.3", "server_id": 50_000 + i,
            "user_id": 1, "system_user_id": i, "domain_id": 90_000 + i,
            "server": {"id": 50_000 + i, "label": format!("server-{i:05}"), "region": "nyc1"},
            "db_pass": secret("db"), "htpasswd": {"user": "staff", "pass": secret("basic")},
            "wp_keys": {"AUTH_KEY": secret("salt")}
        }),
        _ => json!({
            "id": 90_000 + i, "url": r.name, "route": "primary", "type": "primary",
            "status": r.status, "is_ssl": true, "ssl_status": "succeed", "is_wildcard": false,
            "site_id": 70_000 + i, "server_id": 50_000 + i, "user_id": 1,
            "dns_management_id": 2, "creds_need_updating": false,
            "user_dns": {"id": 4, "dns_provider_id": 2, "provider": {"id": 2, "name": "cloudflare"},
                         "key": secret("dns"), "email": format!("{SECRET_MARKER}@example.invalid")}
        }),
    }
}

fn cloudflare(r: &FakeResource) -> Value {
    let i = r.index;
    json!({
        "id": cloudflare_zone_id(i), "name": r.name, "status": r.status, "paused": false,
        "type": if r.status == "pending" { "partial" } else { "full" },
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.invalid", "bob.ns.cloudflare.invalid"],
        "original_name_servers": ["ns1.registrar.invalid", "ns2.registrar.invalid"],
        "original_registrar": null, "original_dnshost": null,
        "created_on": "2025-01-01T00:00:00Z", "modified_on": "2025-01-02T00:00:00Z",
        "activated_on": "2025-01-02T00:00:00Z",
        "owner": {"id": "owner-1", "type": "user",
                  "email": format!("{SECRET_MARKER}-owner-{i}@example.invalid")},
        "account": {"id": "account-1", "name": "Acme"},
        "permissions": ["#zone:read", "#dns_records:read"],
        "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0,
                 "currency": "USD", "frequency": "", "is_subscribed": false,
                 "can_subscribe": false, "legacy_id": "free", "legacy_discount": false,
                 "externally_managed": false},
        "meta": {"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3,
                 "phishing_detected": false},
        "verification_key": format!("{SECRET_MARKER}-verify-{i}")
    })
}
