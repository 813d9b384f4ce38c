//! Test harness: one PostgreSQL cluster per test run (or `TEST_DATABASE_URL`), a migrated template
//! database, a fresh database per test cloned from it, and servers started on a free port.

use std::path::PathBuf;
use std::sync::OnceLock;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use stackgate::auth::jwt::JwtKeys;
use stackgate::config::Config;
use stackgate::devkit::embedded::{Durability, EmbeddedPostgres};
use stackgate::server::RunningServer;

pub mod bus;
pub mod nats;
pub mod replicas;
pub mod serve;
pub mod wait;
pub mod ws;

/// The `replica` label of in-process servers' metrics.
pub const REPLICA_ID: &str = "test-replica";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";
const TEMPLATE: &str = "stackgate_template";

/// The cluster every test of this run shares.
struct Cluster {
    /// URL without the database name, ending in `/`.
    base: String,
    /// The same as the serving login role (what servers under test log in as), ending in `/`.
    serving_base: String,
    _embedded: Option<EmbeddedPostgres>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(start_cluster)
            .join()
            .expect("cluster thread")
            .expect("test cluster starts")
    })
}

fn start_cluster() -> anyhow::Result<Cluster> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (base, embedded) = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => (
            url.rsplit_once('/')
                .map(|(b, _)| format!("{b}/"))
                .unwrap_or(url),
            None,
        ),
        Err(_) => {
            let dir = PathBuf::from(format!("/tmp/stackgate-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            if nix::unistd::geteuid().is_root() {
                let pg = nix::unistd::User::from_name("postgres")?.expect("postgres user");
                nix::unistd::chown(&dir, Some(pg.uid), Some(pg.gid))?;
            }
            let mut embedded = EmbeddedPostgres::start(&dir, None, Durability { ephemeral: true })?;
            embedded.stop_and_remove_when_process_exits(std::process::id(), &dir)?;
            let url = embedded.url("postgres");
            let base = url.expose_secret().trim_end_matches("postgres").to_owned();
            (base, Some(embedded))
        }
    };
    runtime
        .block_on(async {
            let mut admin = connect(&format!("{base}postgres")).await?;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
                .await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                .await?;
            stackgate::db::run_migrations(&SecretString::from(format!("{base}{TEMPLATE}"))).await?;
            serving_base(&base).await
        })
        .map(|serving_base| Cluster {
            base,
            serving_base,
            _embedded: embedded,
        })
}

/// Sets up the serving login role (see `stackgate::db::LOGIN_ROLE`) and returns the base URL
/// that logs in as it. Its password is derived from the cluster's URL, so that every test binary
/// sharing a cluster (`TEST_DATABASE_URL`) sets the same one.
async fn serving_base(base: &str) -> anyhow::Result<String> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{base}serving").as_bytes());
    let password: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let admin = SecretString::from(format!("{base}postgres"));
    stackgate::db::ensure_login_role(&admin, &SecretString::from(password.clone())).await?;
    let mut url = reqwest::Url::parse(base)?;
    url.set_username(stackgate::db::LOGIN_ROLE)
        .and_then(|()| url.set_password(Some(&password)))
        .map_err(|()| anyhow::anyhow!("cannot put credentials into the test cluster's URL"))?;
    Ok(url.to_string())
}

async fn connect(url: &str) -> anyhow::Result<AsyncPgConnection> {
    Ok(stackgate::db::connect_owner(&SecretString::from(url.to_owned())).await?)
}

/// A database for one test, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    /// The cluster's base URLs (owner's, serving role's) when not the shared one's: a cluster
    /// of the test's own, thrown away whole.
    own: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database with every migration applied (cloned from the template).
    pub async fn migrated() -> Self {
        Self::create(Some(TEMPLATE)).await
    }

    /// A fresh empty database (for migration tests).
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let template = template
            .map(|t| format!(" TEMPLATE {t}"))
            .unwrap_or_default();
        let mut admin = connect(&format!("{}postgres", cluster().base))
            .await
            .expect("admin connection");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}{template}"))
            .await
            .expect("create test database");
        Self { name, own: None }
    }

    /// Database `name` of a cluster of the test's own, reached at `base` (owner) and
    /// `serving_base` (serving role), each ending in `/`.
    pub fn on_own_cluster(name: &str, base: String, serving_base: String) -> Self {
        Self {
            name: name.to_owned(),
            own: Some((base, serving_base)),
        }
    }

    pub fn url(&self) -> SecretString {
        let base = self.own.as_ref().map_or(&cluster().base, |(b, _)| b);
        SecretString::from(format!("{base}{}", self.name))
    }

    /// The URL servers under test log in with: the serving login role, not the owner.
    pub fn app_url(&self) -> SecretString {
        let base = self
            .own
            .as_ref()
            .map_or(&cluster().serving_base, |(_, b)| b);
        SecretString::from(format!("{base}{}", self.name))
    }

    /// A connection as the schema owner (a superuser): fixtures and inspection.
    pub async fn owner(&self) -> AsyncPgConnection {
        connect(self.url().expose_secret())
            .await
            .expect("owner connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.own.is_some() {
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin_url = format!("{}postgres", cluster().base);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                connect(&admin_url)
                    .await?
                    .batch_execute(&sql)
                    .await
                    .map_err(anyhow::Error::from)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// An outbox relay on `db` (as servers run one), for tests that write and LISTEN without a
/// server, once it has published what set-up committed: LISTEN after it to receive only what
/// follows.
pub async fn relay(db: &TestDb) -> stackgate::events::RelayHandle {
    let relay = stackgate::events::Relay::new(db.app_url(), Default::default()).spawn();
    let mut conn = db.owner().await;
    wait::wait_until("the outbox to be drained", wait::PATIENCE, async || {
        crate::fixtures::outbox_rows(&mut conn).await == 0
    })
    .await;
    relay
}

/// A server on a free port over its own migrated database.
pub struct TestApp {
    pub db: TestDb,
    /// What the server was started with (a replica starts with the same).
    pub config: Config,
    pub server: Option<RunningServer>,
    pub client: reqwest::Client,
    pub jwt: JwtKeys,
    /// How many receivers the server's own parts hold on its event bus (the response cache's).
    bus_baseline: usize,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server, letting the test adjust its configuration first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_over(TestDb::migrated().await, adjust).await
    }

    /// Starts a server over `db`, letting the test adjust its configuration first.
    pub async fn spawn_over(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            replica_id: REPLICA_ID.to_owned(),
            database_url: db.app_url(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            jwt_secret: Some(SecretString::from(JWT_SECRET.to_owned())),
            jwt_public_key: None,
            graphiql_assets: None,
            graphiql_headers: None,
            pool_size: 4,
            body_limit: 1024 * 1024,
            limits: Default::default(),
            auth_cache_seconds: 0,
            encryption_keys: Some(stackgate::crypto::Keyring::generate_spec("test")),
            run_scheduler: false,
            sync: Default::default(),
            health: Default::default(),
            run_health: false,
            notify: Default::default(),
            run_notifications: false,
            security: stackgate::security::settings::SecuritySettings {
                allow_private_endpoints: true,
                rates: stackgate::security::rate::RateSettings::off(),
                // Tests write rows directly, without the events that invalidate cached answers;
                // the cache's own tests turn it on.
                response_cache_bytes: 0,
                ..Default::default()
            },
            reads: Default::default(),
            events: Default::default(),
        };
        adjust(&mut config);
        let jwt = JwtKeys::hs256(&SecretString::from(JWT_SECRET.to_owned()));
        let server = stackgate::server::start(config.clone())
            .await
            .expect("server starts");
        let bus_baseline = server.state.events.subscribers();
        Self {
            db,
            config,
            server: Some(server),
            client: reqwest::Client::new(),
            jwt,
            bus_baseline,
        }
    }

    /// Another replica: a second server on the same database, with the same settings.
    pub async fn replica(&self) -> RunningServer {
        stackgate::server::start(self.config.clone())
            .await
            .expect("replica starts")
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.server.as_ref().expect("running").addr
        )
    }

    /// Waits until the server has received every event committed so far (see
    /// [`TestApp::settle_events_on`]).
    pub async fn settle_events(&self) {
        self.settle_events_on(self.server.as_ref().expect("running"))
            .await;
    }

    /// Waits until `server` (this app's or a replica) has received every event committed so
    /// far: publishes a marker (a `change` of no organization's) through the outbox and waits for
    /// it; the relay publishes in order, so every event committed before it came first.
    pub async fn settle_events_on(&self, server: &RunningServer) {
        use stackgate::events::{Delivery, Event};
        let mut events = server.state.events.subscribe();
        let marker = uuid::Uuid::new_v4();
        let payload = json!({ "type": "change", "org_id": uuid::Uuid::new_v4(),
            "table": "settle", "id": marker });
        self.db
            .owner()
            .await
            .batch_execute(&format!("select stackgate_publish(null, '{payload}')"))
            .await
            .expect("marker");
        let seen = async {
            loop {
                match events.recv().await {
                    Ok(Delivery::Event(envelope)) => {
                        if matches!(&envelope.event, Event::Change(c) if c.id == marker) {
                            return;
                        }
                    }
                    Ok(Delivery::Gap) | Err(_) => {}
                }
            }
        };
        tokio::time::timeout(wait::PATIENCE, seen)
            .await
            .expect("the marker event in time");
    }

    /// Waits until `n` subscriptions listen on the server's event bus (a subscription gives its
    /// client no acknowledgement; events published before it listens are not its).
    pub async fn wait_subscribed(&self, n: usize) {
        let bus = &self.server.as_ref().expect("running").state.events;
        let what = format!("{n} subscriptions on the event bus");
        let n = n + self.bus_baseline;
        wait::wait_until(&what, wait::PATIENCE, async || bus.subscribers() >= n).await;
    }

    /// The server's GraphQL WebSocket endpoint (`http://.../graphql/ws`).
    pub fn ws_url(&self) -> String {
        self.url("/graphql/ws")
    }

    /// Waits until the sync run `run` (a global id) has finished, asking as `token`; its
    /// `status`, `created` and `error`.
    pub async fn finished_run(&self, token: &str, run: &Value) -> Value {
        let query = "query($id: ID!) { node(id: $id) { ... on SyncRun { status created error } } }";
        wait::wait_for("the sync run to finish", wait::PATIENCE, async || {
            let (_, body) = self.graphql(Some(token), query, json!({ "id": run })).await;
            let node = &body["data"]["node"];
            if node["status"] == "SUCCESS" || node["status"] == "ERROR" {
                Ok(node.clone())
            } else {
                Err(body.to_string())
            }
        })
        .await
    }

    /// `(action, result)` of the newest 100 audit entries with one of `actions` of the
    /// organization `token` acts in, oldest first.
    pub async fn audit(&self, token: &str, actions: &[&str]) -> Vec<(String, String)> {
        let query = "query($a: [String!]) { viewer { organization { \
            auditLogs(first: 100, actions: $a) { nodes { action result } } } } }";
        let (_, body) = self
            .graphql(Some(token), query, json!({ "a": actions }))
            .await;
        let nodes = body["data"]["viewer"]["organization"]["auditLogs"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("audit log: {body}"))
            .clone();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        nodes
            .iter()
            .rev()
            .map(|n| (text(&n["action"]), text(&n["result"])))
            .collect()
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response.expect("sent").text().await.expect("text")
    }

    /// The global id of row `id` of GraphQL type `type_name`, as the server encodes it.
    pub fn global_id(type_name: &str, id: uuid::Uuid) -> String {
        stackgate::graphql::ids::encode(type_name, id).0
    }

    /// A token for `sub`, optionally pinned to an org, valid for an hour.
    pub fn token(&self, sub: &str, org: Option<&str>) -> String {
        self.jwt.mint(sub, org, 3600).expect("mint")
    }

    /// POSTs a GraphQL request with an optional bearer token; returns status and JSON body.
    pub async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }
}

/// The `extensions.code` of the first error of a GraphQL response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

/// The `id` of the element of the JSON list `list` whose `key` is `value`.
pub fn id_where(list: &Value, key: &str, value: &str) -> Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == value))
        .map(|i| i["id"].clone())
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

/// The user id of the member with `email` of an `Organization` (with `members { user { id email } }`).
pub fn member_id(org: &Value, email: &str) -> Value {
    org["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"]["email"] == email))
        .map(|m| m["user"]["id"].clone())
        .unwrap_or_else(|| panic!("no member {email} in {org}"))
}
