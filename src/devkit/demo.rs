//! `stackgate demo`'s data: the `acme` organization, its owner, a few projects, and fake
//! DigitalOcean, Linode, Vercel, GridPane and Cloudflare accounts served from this process, one
//! dock each, synced and linked to the projects.
//!
//! [`prepare`] does it all and returns a [`Demo`] that keeps the fakes running. Running it again
//! on the same database reuses the docks (by name) and points them at the new fakes' ports. The
//! fake web services answer at local HTTP [`ProbeTarget`]s and the databases at local TCP ones
//! (one of each kind steady, one flipping up and down), so health probes have something real to
//! reach; servers carry the address 127.0.0.1 and domains are named under `acme.localhost`: no
//! address in the demo can leave the machine. A webhook notification channel points at a
//! receiver in this process ([`WebhookPrinter`]) that prints every alert delivered to it.

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;
use uuid::Uuid;

use crate::crypto::Keyring;
use crate::db::models::{credentials, membership, organization, project, user};
use crate::db::{DbError, Scope};
use crate::devkit::fake::targets::ProbeTarget;
use crate::devkit::fake::{FakeKind, FakeProvider, Script};
use crate::sync::engine::{Engine, EngineConfig, RunReport};
use crate::sync::scheduler::{Scheduler, SchedulerConfig};
use crate::sync::{Kind, Registry};

/// The demo owner's identity-provider subject (the printed token's `sub`).
pub const OWNER_EXTERNAL_ID: &str = "acme-owner";
/// The demo organization's slug.
pub const ORG_SLUG: &str = "acme";

const PROJECTS: [(&str, &str, &str); 3] = [
    (
        "Marketing website",
        "website",
        "The public site and its CDN",
    ),
    (
        "Mobile API",
        "mobile-api",
        "Backend for the iOS and Android apps",
    ),
    (
        "Data platform",
        "data-platform",
        "Warehouse, pipelines and dashboards",
    ),
];

/// How often the flapping probe targets change state.
const FLIP_EVERY: Duration = Duration::from_secs(45);
/// How often the scheduler re-syncs the demo docks.
const SYNC_INTERVAL_SECONDS: i32 = 300;

/// One fake account: its provider, its dock's name, how many of each kind, and names for them.
struct Account {
    fake: FakeKind,
    dock: &'static str,
    resources: &'static [(Kind, &'static [&'static str])],
}

const ACCOUNTS: [Account; 5] = [
    Account {
        fake: FakeKind::DigitalOcean,
        dock: "DigitalOcean (demo)",
        resources: &[
            (
                Kind::Server,
                &["api-prod-1", "api-prod-2", "worker-1", "staging", "bastion"],
            ),
            (Kind::WebService, &["mobile-api", "admin-panel", "docs"]),
            (Kind::Domain, &["acme.localhost", "api.acme.localhost"]),
            (Kind::Database, &["api-postgres", "sessions-redis"]),
        ],
    },
    Account {
        fake: FakeKind::Linode,
        dock: "Linode (demo)",
        resources: &[
            (Kind::Server, &["etl-1", "etl-2", "warehouse", "airflow"]),
            (Kind::Domain, &["data.acme.localhost", "bi.acme.localhost"]),
            (Kind::Database, &["warehouse-pg", "metrics-mysql"]),
        ],
    },
    Account {
        fake: FakeKind::Vercel,
        dock: "Vercel (demo)",
        resources: &[
            (
                Kind::WebService,
                &["marketing-site", "blog", "landing-pages", "status-page"],
            ),
            (Kind::Domain, &["www.acme.localhost", "blog.acme.localhost"]),
        ],
    },
    // GridPane's sites are named by their domain, so the demo lists its WordPress servers and
    // domains only (every demo web service answers at a local probe target).
    Account {
        fake: FakeKind::GridPane,
        dock: "GridPane (demo)",
        resources: &[
            (Kind::Server, &["wp-prod-1", "wp-staging"]),
            (
                Kind::Domain,
                &["shop.acme.localhost", "careers.acme.localhost"],
            ),
        ],
    },
    Account {
        fake: FakeKind::Cloudflare,
        dock: "Cloudflare (demo)",
        resources: &[(Kind::Domain, &["acme.localhost", "status.acme.localhost"])],
    },
];

/// Which resources each project gets: (project slug, provider, kind, resource names).
const LINKS: [(&str, &str, Kind, &[&str]); 9] = [
    (
        "website",
        "vercel",
        Kind::WebService,
        &["marketing-site", "blog"],
    ),
    (
        "website",
        "vercel",
        Kind::Domain,
        &["www.acme.localhost", "blog.acme.localhost"],
    ),
    ("website", "digitalocean", Kind::Domain, &["acme.localhost"]),
    (
        "mobile-api",
        "digitalocean",
        Kind::Server,
        &["api-prod-1", "api-prod-2", "worker-1"],
    ),
    (
        "mobile-api",
        "digitalocean",
        Kind::WebService,
        &["mobile-api"],
    ),
    (
        "mobile-api",
        "digitalocean",
        Kind::Database,
        &["api-postgres"],
    ),
    (
        "data-platform",
        "linode",
        Kind::Server,
        &["etl-1", "warehouse"],
    ),
    ("data-platform", "linode", Kind::Database, &["warehouse-pg"]),
    (
        "data-platform",
        "linode",
        Kind::Domain,
        &["bi.acme.localhost"],
    ),
];

/// The bearer token each fake accepts (stored encrypted in its dock, as any key would be).
pub fn fake_token(fake: FakeKind) -> String {
    format!("demo-{}-token-0000", fake.provider())
}

/// The organization and owner [`seed`] made sure of.
#[derive(Clone, Copy, Debug)]
pub struct Seeded {
    pub org_id: Uuid,
    pub owner_id: Uuid,
}

/// Seeds the demo organization, owner and projects; running it again changes nothing.
pub async fn seed(conn: &mut AsyncPgConnection) -> Result<Seeded, DbError> {
    let org = organization::ensure(conn, "Acme Inc", ORG_SLUG).await?;
    let owner = user::ensure(conn, OWNER_EXTERNAL_ID, "owner@acme.example", "Ada Owner").await?;
    Scope::org(org.id, owner.id)
        .transaction_on(conn, async |conn| {
            membership::ensure(conn, org.id, owner.id, "owner").await?;
            for (name, slug, description) in PROJECTS {
                project::ensure(conn, org.id, name, slug, description).await?;
            }
            Ok(())
        })
        .await?;
    Ok(Seeded {
        org_id: org.id,
        owner_id: owner.id,
    })
}

/// The running fakes and probe targets; dropping it stops them all.
pub struct FakeWorld {
    pub fakes: Vec<(FakeKind, FakeProvider)>,
    pub targets: Vec<ProbeTarget>,
}

impl FakeWorld {
    /// Starts the fake accounts and the four probe targets on 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let web_ok = ProbeTarget::http().await?;
        let web_flaky = ProbeTarget::http().await?.flipping(FLIP_EVERY);
        let db_ok = ProbeTarget::tcp().await?;
        let db_flaky = ProbeTarget::tcp().await?.flipping(FLIP_EVERY);
        let mut fakes = Vec::new();
        for account in &ACCOUNTS {
            let mut script = Script::new(&fake_token(account.fake))
                .web_urls(vec![web_ok.url(), web_flaky.url()])
                .server_ips(vec!["127.0.0.1".to_owned()])
                .database_endpoints(vec![
                    (db_ok.addr().ip().to_string(), db_ok.addr().port()),
                    (db_flaky.addr().ip().to_string(), db_flaky.addr().port()),
                ]);
            for (kind, names) in account.resources {
                script = script.count(*kind, names.len());
            }
            let (_, fake) = FakeProvider::start(account.fake, script).await?;
            for (kind, names) in account.resources {
                for (position, name) in names.iter().enumerate() {
                    fake.rename(*kind, position, name);
                }
            }
            fakes.push((account.fake, fake));
        }
        Ok(Self {
            fakes,
            targets: vec![web_ok, web_flaky, db_ok, db_flaky],
        })
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Creates the demo's dock for each fake, or points the existing one (same name) at the fake's
/// current URL with its key encrypted again; returns the docks' ids.
pub async fn ensure_docks(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    seeded: Seeded,
    world: &FakeWorld,
) -> Result<Vec<Uuid>, DbError> {
    let org_id = seeded.org_id;
    let mut ids = Vec::new();
    for (fake, handle) in &world.fakes {
        let Some(account) = ACCOUNTS.iter().find(|a| a.fake == *fake) else {
            continue;
        };
        let key = SecretString::from(fake_token(*fake));
        let endpoint = handle.base_url();
        let id = Scope::org(org_id, seeded.owner_id)
            .transaction_on(conn, async |conn| {
                let existing: Option<IdRow> = diesel::sql_query(
                    "update docks set endpoint = $3 \
                     where org_id = $1 and name = $2 and deleted_at is null returning id",
                )
                .bind::<SqlUuid, _>(org_id)
                .bind::<Text, _>(account.dock)
                .bind::<Text, _>(endpoint)
                .get_result(conn)
                .await
                .map(Some)
                .or_else(|e| match e {
                    diesel::result::Error::NotFound => Ok(None),
                    e => Err(e),
                })?;
                match existing {
                    Some(row) => {
                        credentials::update_dock_key(conn, keyring, org_id, row.id, &key).await?;
                        Ok(row.id)
                    }
                    None => {
                        let dock = credentials::NewDock {
                            org_id,
                            name: account.dock,
                            provider: fake.provider(),
                            api_key: &key,
                            endpoint: Some(endpoint),
                            sync_interval_seconds: SYNC_INTERVAL_SECONDS,
                        };
                        credentials::create_dock(conn, keyring, &dock).await
                    }
                }
            })
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Links the demo's chosen resources to its projects (existing links are kept).
pub async fn link_resources(conn: &mut AsyncPgConnection, seeded: Seeded) -> Result<(), DbError> {
    Scope::org(seeded.org_id, seeded.owner_id)
        .transaction_on(conn, async |conn| {
            for (slug, provider, kind, names) in LINKS {
                let table = kind.table();
                let column = format!("{}_id", kind.as_str());
                diesel::sql_query(format!(
                    "insert into project_resources (org_id, project_id, resource_kind, {column}, \
                                                    denormalized_name, denormalized_status, linked_by) \
                     select r.org_id, p.id, $4, r.id, r.name, r.status, $5 \
                       from {table} r \
                       join docks d on d.id = r.dock_id and d.deleted_at is null \
                       join projects p on p.org_id = r.org_id and p.slug = $2 and p.deleted_at is null \
                      where r.org_id = $1 and d.provider = $3 and r.name = any($6) \
                     on conflict (project_id, resource_id) do nothing"
                ))
                .bind::<SqlUuid, _>(seeded.org_id)
                .bind::<Text, _>(slug)
                .bind::<Text, _>(provider)
                .bind::<Text, _>(kind.as_str())
                .bind::<SqlUuid, _>(seeded.owner_id)
                .bind::<Array<Text>, _>(names)
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
}

/// A prepared demo: its organization, docks, first runs, and the fakes they sync from (stopped
/// when this is dropped).
pub struct Demo {
    pub seeded: Seeded,
    /// The local endpoint of the demo's webhook channel, printing each delivery.
    pub receiver: WebhookPrinter,
    pub docks: Vec<Uuid>,
    /// The first sync of each dock (`None`: another replica held its lease).
    pub runs: Vec<Option<RunReport>>,
    pub world: FakeWorld,
}

/// Seeds the demo, starts its fakes, ensures its docks, syncs each once through the scheduler's
/// leased path, and links resources to the projects. `url` is the schema owner's.
pub async fn prepare(url: &SecretString, keyring: Arc<Keyring>) -> anyhow::Result<Demo> {
    let mut conn = crate::db::connect_owner(url).await?;
    let seeded = seed(&mut conn).await?;
    let world = FakeWorld::start().await?;
    let docks = ensure_docks(&mut conn, &keyring, seeded, &world).await?;
    let pool = crate::db::build_pool(url, 2)?;
    // The demo's own docks point at its fakes on 127.0.0.1.
    let config = EngineConfig {
        allow_private_endpoints: true,
        ..EngineConfig::default()
    };
    let engine = Engine::new(pool, keyring.clone(), Registry::default(), config);
    let scheduler = Scheduler::new(engine, SchedulerConfig::default());
    let mut runs = Vec::new();
    for dock in &docks {
        let run = scheduler.run_now(seeded.org_id, *dock).await?;
        if let Some(report) = run.as_ref().filter(|r| !r.succeeded()) {
            tracing::warn!(%dock, error = ?report.error, "demo sync failed");
        }
        runs.push(run);
    }
    link_resources(&mut conn, seeded).await?;
    let receiver = WebhookPrinter::start().await?;
    ensure_channel(&mut conn, &keyring, seeded, &receiver).await?;
    Ok(Demo {
        seeded,
        receiver,
        docks,
        runs,
        world,
    })
}

/// The name of the demo's webhook channel.
pub const CHANNEL_NAME: &str = "Demo webhook receiver";

/// A webhook endpoint on 127.0.0.1 inside the demo process: it checks each delivery's signature
/// and prints one line per delivery, so a new user sees an alert arrive.
pub struct WebhookPrinter {
    pub url: String,
    secret: Arc<std::sync::Mutex<Option<SecretString>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookPrinter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookPrinter {
    pub async fn start() -> std::io::Result<Self> {
        let secret: Arc<std::sync::Mutex<Option<SecretString>>> = Arc::default();
        let shared = secret.clone();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
                let secret = shared.clone();
                async move {
                    print_delivery(&headers, &body, secret.lock().ok().and_then(|s| s.clone()));
                    axum::http::StatusCode::NO_CONTENT
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/alerts", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, secret, task })
    }
}

fn print_delivery(headers: &axum::http::HeaderMap, body: &str, secret: Option<SecretString>) {
    use crate::notify::send;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let signature = header(send::SIGNATURE_HEADER);
    let verified = secret.is_some_and(|secret| {
        signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(','))
            .and_then(|(t, _)| t.parse::<i64>().ok())
            .is_some_and(|t| send::signature(&secret, t, body.as_bytes()) == signature)
    });
    let payload: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = payload["alert"]["message"]
        .as_str()
        .unwrap_or("(test message)");
    let line = format!(
        "webhook received {} ({}): {text}",
        header(send::EVENT_HEADER),
        if verified {
            "signature verified"
        } else {
            "SIGNATURE NOT VERIFIED"
        },
    );
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Creates the demo's webhook channel (or points the existing one at `receiver`) with a fresh
/// signing secret, which the receiver keeps to check signatures.
async fn ensure_channel(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    seeded: Seeded,
    receiver: &WebhookPrinter,
) -> Result<(), DbError> {
    use crate::db::models::notification::{self as q, NewChannel, Routing, Target};
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = SecretString::from(format!("whsec_{hex}"));
    let org_id = seeded.org_id;
    Scope::org(org_id, seeded.owner_id)
        .transaction_on(conn, async |conn| {
            diesel::sql_query("delete from notification_channels where org_id = $1 and name = $2")
                .bind::<SqlUuid, _>(org_id)
                .bind::<Text, _>(CHANNEL_NAME)
                .execute(conn)
                .await?;
            let channel = NewChannel {
                org_id,
                name: CHANNEL_NAME,
                target: Target::Webhook {
                    url: &receiver.url,
                    secret: &secret,
                },
                routing: Routing {
                    min_severity: "warning",
                    project_id: None,
                    resource_kind: None,
                },
                enabled: true,
            };
            q::create_channel(conn, keyring, &channel).await
        })
        .await?;
    if let Ok(mut kept) = receiver.secret.lock() {
        *kept = Some(secret);
    }
    Ok(())
}
