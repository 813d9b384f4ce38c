//! Live dashboards (issue 12): N WebSocket live queries of the dashboard, spread over the ten
//! seeded organizations and their four built-in roles, while changes commit at a fixed rate on
//! another replica. Target: 10,000 live queries on one 2-core process at 10 commits a second,
//! commit → push p99 ≤ 250 ms, no missed update, re-runs per commit ≤ the distinct (query,
//! permission set) pairs it touches.
//!
//! ```sh
//! cargo bench --bench live -- [--live 10000] [--seconds 30] [--rate 10] [--scale 1] [--per-socket 50]
//! ```
//!
//! 1. PostgreSQL: `DATABASE_URL`, else a throwaway private cluster; migrated, seeded at
//!    `--scale` (`org-0` … `org-9`, users `org-K-owner|admin|member|viewer`), analyzed.
//! 2. Two `stackgate serve` processes (the release binary built with this bench), health monitor
//!    off and no scheduler: replica A serves the live queries, replica B takes the link changes.
//!    Both get socket, subscription and per-principal rate budgets that fit N live queries.
//! 3. Live queries: `bench/dashboard.graphql` with `@live` on the operation, subscribed over
//!    `graphql-transport-ws` on replica A; live query i belongs to user i mod 40 (organization
//!    (i mod 40) / 4, role (i mod 40) mod 4), `--per-socket` of one user's live queries share a
//!    socket. Each socket subscribes one at a time, waiting for the first result, which is
//!    checked (no errors, the organization's project count, 20 links per project).
//! 4. Writes: `--rate` a second for `--seconds`, round-robin over the organizations; each
//!    organization alternates a link change — `unlinkResource`/`linkResource` through replica B's
//!    GraphQL API as `org-K-owner` — and a health transition committed by the bench's own
//!    connection, standing in for another replica's monitor: what the monitor's `transition`
//!    does in one transaction (lock the row, append the check, write the state, resolve/open the
//!    alert, publish the `HealthEvent`). Resources rotate (a resource unlinked is linked back
//!    three to five link changes of its organization later, a health resource is touched again after
//!    all the others), and links and health use disjoint resources.
//! 5. Each pushed result is matched against the commits of its organization not yet seen in it:
//!    it reflects a link change when the resource's id is present (linked) or absent (unlinked),
//!    a health transition when the resource's `health.state` is the new state. Latency = receipt
//!    − commit time: when COMMIT returned (health) or the mutation's HTTP response arrived (links;
//!    a push can arrive before that response and counts as 0 ms). A live query that has not
//!    reflected a commit 5 s after the last commit missed it.
//!
//! It reports commit → push percentiles, deliveries and misses, re-runs per commit from replica
//! A's `/metrics`, CPU per process from `/proc`, replica A's RSS, and exits non-zero when a first
//! result is wrong, a pushed result carries errors, or an update was missed.

mod support;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
// Not `RunQueryDsl`: its methods, implemented for every type, shadow `load` and `first` here.
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use stackgate::db::models::resource::Kind;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use support::{BenchDatabase, CLOCK_TICKS, ChildGuard};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const USAGE: &str = "\
usage: cargo bench --bench live -- [options]

  --live N          live queries of the dashboard on replica A (default 10000, at most 20000)
  --seconds S       seconds of writes (default 30)
  --rate R          committed changes a second, round-robin over the 10 orgs (default 10)
  --scale K         seed scale: 10·K projects × 20 links per org (default 1)
  --per-socket M    live queries per WebSocket connection (default 50)

Replica A serves the live queries, replica B takes the link changes; health transitions are
committed by the bench's own connection. Both replicas run with the health monitor off and no
scheduler. Exits non-zero when a first result is wrong, a pushed result has errors, or an
update was missed (not reflected 5 s after the last commit).

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

/// The targets of issue 12.
const TARGET_P99_MS: f64 = 250.0;
/// How long after the last commit a live query may still reflect it.
const GRACE: Duration = Duration::from_secs(5);
/// Sockets connecting at once (the server admits 64 waiting for `connection_init`).
const CONNECTING: usize = 16;
/// Unlinked resources an organization keeps before it links the oldest back.
const UNLINKED_KEPT: usize = 3;
const ORGS: usize = stackgate::devkit::seed::ORGS as usize;
const ROLES: [&str; 4] = stackgate::devkit::seed::ROLES;

#[derive(Clone, Debug)]
struct Options {
    live: usize,
    seconds: f64,
    rate: f64,
    scale: u32,
    per_socket: usize,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        live: 10_000,
        seconds: 30.0,
        rate: 10.0,
        scale: 1,
        per_socket: 50,
    };
    support::parse_flags(USAGE, |flag, value| {
        match flag {
            "--live" => o.live = value()?.parse().context("--live")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--rate" => o.rate = value()?.parse().context("--rate")?,
            "--scale" => o.scale = value()?.parse().context("--scale")?,
            "--per-socket" => o.per_socket = value()?.parse().context("--per-socket")?,
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
        Ok(())
    })?;
    if !(1..=20_000).contains(&o.live) {
        bail!("--live must be from 1 to 20000");
    }
    if !(1.0..=600.0).contains(&o.seconds) {
        bail!("--seconds must be from 1 to 600");
    }
    if !(0.1..=100.0).contains(&o.rate) {
        bail!("--rate must be from 0.1 to 100 commits a second");
    }
    if !(1..=20).contains(&o.scale) {
        bail!("--scale must be from 1 to 20 (the dashboard shows at most 50 projects)");
    }
    if !(1..=1000).contains(&o.per_socket) {
        bail!("--per-socket must be from 1 to 1000");
    }
    if (o.rate * o.seconds).round() < 1.0 {
        bail!("--rate × --seconds must make at least one commit");
    }
    Ok(o)
}

fn main() -> ExitCode {
    support::main(parse_args(), run)
}

// ---------------------------------------------------------------------------------------------
// The run

/// One of the 40 seeded users with a built-in role.
struct User {
    org: usize,
    name: String,
    token: String,
}

/// The live queries one socket carries.
struct SocketSpec {
    user: usize,
    org: usize,
    subscriptions: usize,
}

async fn run(o: Options) -> anyhow::Result<bool> {
    let started = Instant::now();
    let logs = std::env::temp_dir().join(format!("stackgate-bench-{}-logs", std::process::id()));
    std::fs::create_dir_all(&logs)?;

    // 1. The database.
    let (db, mut conn, postmaster) = BenchDatabase::migrated().await?;
    let url = db.url.clone();
    let summary = stackgate::devkit::seed::seed(&mut conn, o.scale).await?;
    conn.batch_execute("ANALYZE").await?;
    let orgs = organizations(&mut conn).await?;
    println!("database: {}; seeded {summary}; analyzed", db.describe);

    // 2. The users, their sockets, and the two replicas.
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let users = users(&secret)?;
    let sockets = plan_sockets(&users, o.live, o.per_socket);
    let budgets = Budgets::fitting(&o, users.len());
    let (mut replica_a, base_a) = replica("replica-A", &url, &secret, &budgets, &logs).await?;
    let (mut replica_b, base_b) = replica("replica-B", &url, &secret, &budgets, &logs).await?;
    println!(
        "replicas: A {base_a} (live queries), B {base_b} (link changes); each with \
         STACKGATE_WS_MAX_PER_PRINCIPAL={} STACKGATE_WS_MAX_SUBSCRIPTIONS={} \
         STACKGATE_RATE_PER_PRINCIPAL={}, STACKGATE_LIVE_INTERVAL_MS default (250)",
        budgets.sockets_per_principal, budgets.subscriptions, budgets.rate_per_principal
    );

    // 3. What each organization's dashboard shows, read once over HTTP from replica B.
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let dashboard = read_root("bench/dashboard.graphql")?;
    let mut plans = Vec::with_capacity(ORGS);
    for (k, org) in orgs.iter().enumerate() {
        let owner = &users[k * ROLES.len()];
        let answer = post(&http, &base_b, &owner.token, &json!({ "query": dashboard })).await?;
        let shown = Shown::read(&answer, org)
            .with_context(|| format!("the dashboard of org-{k} as {}", owner.name))?;
        plans.push(OrgPlan::new(shown, org.id, k));
    }

    // 4. The live queries: subscribed, and each first result checked.
    let live_query = dashboard.replacen("query Dashboard {", "query Dashboard @live {", 1);
    if live_query == dashboard {
        bail!("bench/dashboard.graphql does not start its operation with `query Dashboard {{`");
    }
    let shared = Arc::new(Shared {
        ws_url: format!("ws://{base_a}/graphql/ws"),
        subscribe: json!({ "query": live_query, "operationName": "Dashboard" }),
        expected: orgs.iter().map(|org| org.projects).collect(),
        journal: Journal::new(),
        connecting: Semaphore::new(CONNECTING),
    });
    let rss_idle = rss_kb(replica_a.pid());
    let subscribing = Instant::now();
    let Some(live) = subscribe(&o, &shared, &users, &sockets).await? else {
        return Ok(false);
    };
    let rss_subscribed = rss_kb(replica_a.pid());
    println!(
        "{} live queries on {} sockets ({} per socket, {} users: 10 orgs × 4 roles) subscribed in \
         {:.1} s; every first result checked: no errors, {} projects, 20 links each",
        o.live,
        sockets.len(),
        o.per_socket,
        users.len(),
        subscribing.elapsed().as_secs_f64(),
        orgs[0].projects.min(50),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 5. The writes, measured until every live query reflected them or the grace ran out.
    let metrics_url = format!("http://{base_a}/metrics");
    let before = Counters::scrape(&http, &metrics_url).await;
    let cpu0 = Ticks::take(replica_a.pid(), replica_b.pid(), postmaster);
    let sampler = RssSampler::start(replica_a.pid());
    let writer = Writer {
        http: http.clone(),
        base_b: base_b.clone(),
        tokens: (0..ORGS)
            .map(|k| users[k * ROLES.len()].token.clone())
            .collect(),
        pool: stackgate::db::build_pool(&url, 4)?,
    };
    let per_org = live_per_org(&sockets);
    let (commits, writes_secs, measured_secs) =
        commit_at_rate(&o, &mut plans, &writer, &shared.journal, &per_org).await?;
    let cpu1 = Ticks::take(replica_a.pid(), replica_b.pid(), postmaster);
    let after = Counters::scrape(&http, &metrics_url).await;
    let rss = Rss {
        idle: rss_idle,
        subscribed: rss_subscribed,
        peak: sampler.stop().await,
        end: rss_kb(replica_a.pid()),
        hwm: hwm_kb(replica_a.pid()),
    };

    // 6. What every live query saw.
    let reports = live.stop().await?;
    replica_a.stop();
    replica_b.stop();
    let report = Report {
        o: &o,
        total: commits.len(),
        writes_secs,
        measured_secs,
        outcome: &Outcome::of(&reports, &commits),
        counters: (&before, &after),
        pairs: pairs_per_commit(&sockets, &commits),
        cpu: (&cpu0, &cpu1),
        rss,
    };
    let passed = report.print();
    println!(
        "\nlogs: {}; total time {:.0} s",
        logs.display(),
        started.elapsed().as_secs_f64()
    );
    drop(conn);
    drop(db);
    Ok(passed)
}

/// The 40 users of the seeded organizations' built-in roles, each with a token for its org.
fn users(secret: &str) -> anyhow::Result<Vec<User>> {
    let keys = stackgate::auth::jwt::JwtKeys::hs256(&SecretString::from(secret.to_owned()));
    let mut users = Vec::with_capacity(ORGS * ROLES.len());
    for org in 0..ORGS {
        for role in ROLES {
            let name = format!("org-{org}-{role}");
            let token = keys.mint(&name, Some(&format!("org-{org}")), 6 * 3600)?;
            users.push(User { org, name, token });
        }
    }
    Ok(users)
}

/// Live queries by organization.
fn live_per_org(sockets: &[SocketSpec]) -> [i64; ORGS] {
    let mut per_org = [0i64; ORGS];
    for s in sockets {
        per_org[s.org] += s.subscriptions as i64;
    }
    per_org
}

/// The distinct (query, permission set) pairs a commit touches, on average: the users of its
/// organization holding live queries (each built-in role is one permission set).
fn pairs_per_commit(sockets: &[SocketSpec], commits: &[Arc<Commit>]) -> f64 {
    let mut holding = [[false; 4]; ORGS];
    for s in sockets {
        holding[s.org][s.user % ROLES.len()] = true;
    }
    let touched: usize = commits
        .iter()
        .map(|c| holding[c.id % ORGS].iter().filter(|&&u| u).count())
        .sum();
    touched as f64 / commits.len().max(1) as f64
}

/// The socket tasks once every live query has its first result.
struct Subscribed {
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<LiveReport>>>>,
    stop: watch::Sender<bool>,
}

impl Subscribed {
    /// Stops every socket and returns what each live query saw.
    async fn stop(self) -> anyhow::Result<Vec<LiveReport>> {
        let _ = self.stop.send(true);
        let mut reports = Vec::new();
        for task in self.tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(joined) => reports.extend(joined.context("a socket task panicked")??),
                Err(_) => bail!("a socket task did not stop within 30 s"),
            }
        }
        Ok(reports)
    }
}

/// Opens every socket and subscribes its live queries; `None` (after saying why) when a first
/// result was wrong.
async fn subscribe(
    o: &Options,
    shared: &Arc<Shared>,
    users: &[User],
    sockets: &[SocketSpec],
) -> anyhow::Result<Option<Subscribed>> {
    let started = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(sockets.len());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::with_capacity(sockets.len());
    for spec in sockets {
        let (shared, ready, stopped) = (shared.clone(), ready_tx.clone(), stopped.clone());
        let token = users[spec.user].token.clone();
        let (org, n) = (spec.org, spec.subscriptions);
        tasks.push(tokio::spawn(async move {
            socket(shared, token, org, n, ready, stopped).await
        }));
    }
    drop(ready_tx);
    let live = Subscribed { tasks, stop };
    let limit = Duration::from_secs(60) + Duration::from_millis(30 * o.live as u64);
    let mut wrong = Vec::new();
    for _ in 0..sockets.len() {
        match tokio::time::timeout_at((started + limit).into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(why))) => wrong.push(why),
            Ok(None) => bail!("a socket task ended before it was ready"),
            Err(_) => bail!("the live queries were not all subscribed within {limit:?}"),
        }
    }
    if let Some(why) = wrong.first() {
        println!(
            "first results: {} of {} sockets WRONG; the first: {why}",
            wrong.len(),
            sockets.len()
        );
        let _ = live.stop.send(true);
        return Ok(None);
    }
    Ok(Some(live))
}

/// Commits `--rate` changes a second for `--seconds`, round-robin over the organizations, each
/// in its own task (a slow write does not delay the next), then waits until every live query
/// reflected every commit or [`GRACE`] passed. Returns the commits, the seconds of writing, and
/// the seconds measured (writes and grace).
async fn commit_at_rate(
    o: &Options,
    plans: &mut [OrgPlan],
    writer: &Writer,
    journal: &Journal,
    per_org: &[i64; ORGS],
) -> anyhow::Result<(Vec<Arc<Commit>>, f64, f64)> {
    let total = (o.rate * o.seconds).round() as usize;
    let period = Duration::from_secs_f64(1.0 / o.rate);
    let started = Instant::now();
    let mut writes = Vec::with_capacity(total);
    let mut commits = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until((started + period.mul_f64(i as f64)).into()).await;
        let k = i % ORGS;
        let action = plans[k]
            .next()
            .ok_or_else(|| anyhow!("org-{k}: nothing left to change"))?;
        let commit = Arc::new(Commit {
            id: i,
            kind: action.kind(),
            needle: format!("\"id\":\"{}\"", action.resource()),
            expect: action.expect(),
            committed: OnceLock::new(),
        });
        journal.issue(k, commit.clone(), per_org[k]);
        commits.push(commit.clone());
        let writer = writer.clone();
        writes.push(tokio::spawn(async move {
            let done = writer.write(&action).await;
            let _ = commit.committed.set(Instant::now());
            done
        }));
    }
    for write in writes {
        write.await.context("a write task panicked")??;
    }
    let last_commit = Instant::now();
    let writes_secs = started.elapsed().as_secs_f64();
    while journal.outstanding.load(Ordering::Acquire) > 0 && last_commit.elapsed() < GRACE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((commits, writes_secs, started.elapsed().as_secs_f64()))
}

/// Live query i goes to user i mod 40; each user's live queries fill sockets of `per_socket`.
fn plan_sockets(users: &[User], live: usize, per_socket: usize) -> Vec<SocketSpec> {
    let mut sockets = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let mine = live / users.len() + usize::from(u < live % users.len());
        let mut left = mine;
        while left > 0 {
            let n = left.min(per_socket);
            sockets.push(SocketSpec {
                user: u,
                org: user.org,
                subscriptions: n,
            });
            left -= n;
        }
    }
    sockets
}

fn read_root(relative: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(ROOT).join(relative);
    std::fs::read_to_string(&path).with_context(|| path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// The replicas

struct Budgets {
    sockets_per_principal: usize,
    subscriptions: usize,
    rate_per_principal: String,
}

impl Budgets {
    /// Room for every user's sockets, `--per-socket` subscriptions on each, and every user's
    /// live queries re-running many times a second.
    fn fitting(o: &Options, users: usize) -> Self {
        let per_user = o.live.div_ceil(users);
        Self {
            sockets_per_principal: (per_user.div_ceil(o.per_socket) + 4).max(32),
            subscriptions: o.per_socket.max(100),
            rate_per_principal: format!("{}/s", (per_user * 20).max(200)),
        }
    }
}

/// `stackgate serve` as the dashboard bench starts it (health monitor off; no credential keys,
/// so no scheduler), with budgets that fit the live queries.
async fn replica(
    name: &str,
    url: &SecretString,
    secret: &str,
    budgets: &Budgets,
    logs: &std::path::Path,
) -> anyhow::Result<(ChildGuard, String)> {
    let env = [
        (
            "STACKGATE_WS_MAX_PER_PRINCIPAL",
            budgets.sockets_per_principal.to_string(),
        ),
        (
            "STACKGATE_WS_MAX_SUBSCRIPTIONS",
            budgets.subscriptions.to_string(),
        ),
        (
            "STACKGATE_RATE_PER_PRINCIPAL",
            budgets.rate_per_principal.clone(),
        ),
    ];
    let log = logs.join(format!("{name}.log"));
    support::serve_with(name, url, secret, &log, "warn", &env).await
}

/// POSTs a GraphQL body as the token's user; the answer, which must have no `errors`.
async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let answer: Value = http
        .post(format!("http://{base}/graphql"))
        .bearer_auth(token)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .json()
        .await?;
    if let Some(errors) = answer.get("errors").filter(|e| !e.is_null()) {
        bail!("GraphQL errors: {errors}");
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------------------
// The organizations and what their dashboards show

struct Org {
    id: Uuid,
    /// Live projects: the dashboard's `totalCount`.
    projects: i64,
}

#[derive(QueryableByName)]
struct OrgRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    projects: i64,
}

async fn organizations(conn: &mut AsyncPgConnection) -> anyhow::Result<Vec<Org>> {
    let mut orgs = Vec::with_capacity(ORGS);
    for k in 0..ORGS {
        let query = diesel::sql_query(
            "select o.id, (select count(*) from projects p \
               where p.org_id = o.id and p.deleted_at is null) as projects \
             from organizations o where o.slug = $1",
        )
        .bind::<Text, _>(format!("org-{k}"));
        let row: OrgRow = diesel_async::RunQueryDsl::get_result(query, conn)
            .await
            .with_context(|| format!("organization org-{k}"))?;
        orgs.push(Org {
            id: row.id,
            projects: row.projects,
        });
    }
    Ok(orgs)
}

/// A link the dashboard shows.
#[derive(Clone)]
struct Link {
    project: String,
    resource: String,
}

/// A resource the dashboard shows, with its health.
struct HealthTarget {
    resource: String,
    kind: Kind,
    id: Uuid,
    /// The stored state word (`healthy`, `unhealthy`, ...), as the bench last left it.
    state: String,
}

/// An organization's dashboard as the bench uses it: the links it may change (each project's
/// even positions) and the resources whose health it may flip (the odd ones), disjoint.
struct Shown {
    links: Vec<Link>,
    health: Vec<HealthTarget>,
}

impl Shown {
    fn read(answer: &Value, org: &Org) -> anyhow::Result<Self> {
        let projects = &answer["data"]["viewer"]["organization"]["projects"];
        let edges = projects["edges"].as_array().map_or(&[][..], Vec::as_slice);
        if projects["totalCount"].as_i64() != Some(org.projects) || edges.is_empty() {
            bail!("unexpected projects: {}", projects["totalCount"]);
        }
        // Position-major, so consecutive changes land on different projects.
        let mut by_position: Vec<Vec<(String, &Value)>> = vec![Vec::new(); 20];
        for edge in edges {
            let project = edge["node"]["id"].as_str().unwrap_or_default().to_owned();
            let links = edge["node"]["resources"]["edges"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            for (i, link) in links.iter().enumerate().take(20) {
                by_position[i].push((project.clone(), &link["node"]));
            }
        }
        let (mut links, mut health) = (Vec::new(), Vec::new());
        for (i, at) in by_position.into_iter().enumerate() {
            for (project, node) in at {
                let resource = node["id"].as_str().unwrap_or_default().to_owned();
                if i % 2 == 0 {
                    links.push(Link { project, resource });
                    continue;
                }
                let (kind, id) = stackgate::graphql::ids::decode_resource(&resource)
                    .map_err(|_| anyhow!("not a resource id: {resource}"))?;
                let state = node["health"]["state"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_ascii_lowercase();
                health.push(HealthTarget {
                    resource,
                    kind,
                    id,
                    state,
                });
            }
        }
        if links.len() < 2 * UNLINKED_KEPT || health.is_empty() {
            bail!("too few links shown");
        }
        Ok(Self { links, health })
    }
}

/// What one commit does.
enum Action {
    Link {
        org: usize,
        link: Link,
        linked: bool,
    },
    Health {
        org: Uuid,
        kind: Kind,
        id: Uuid,
        resource: String,
        current: &'static str,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CommitKind {
    Link,
    Health,
}

impl Action {
    fn kind(&self) -> CommitKind {
        match self {
            Action::Link { .. } => CommitKind::Link,
            Action::Health { .. } => CommitKind::Health,
        }
    }

    fn resource(&self) -> &str {
        match self {
            Action::Link { link, .. } => &link.resource,
            Action::Health { resource, .. } => resource,
        }
    }

    fn expect(&self) -> Expect {
        match self {
            Action::Link { linked, .. } => Expect::Linked(*linked),
            Action::Health { current, .. } => Expect::Health(current),
        }
    }
}

/// The next changes of one organization: link changes and health transitions alternate.
struct OrgPlan {
    org: Uuid,
    index: usize,
    linked: VecDeque<Link>,
    unlinked: VecDeque<Link>,
    health: Vec<HealthTarget>,
    next_health: usize,
    count: usize,
}

impl OrgPlan {
    fn new(shown: Shown, org: Uuid, index: usize) -> Self {
        Self {
            org,
            index,
            linked: shown.links.into(),
            unlinked: VecDeque::new(),
            health: shown.health,
            next_health: 0,
            count: 0,
        }
    }

    /// The next change; `None` only if the dashboard showed too little to rotate.
    fn next(&mut self) -> Option<Action> {
        self.count += 1;
        if self.count % 2 == 1 {
            // Keep a few unlinked; link the oldest back, to the end of the rotation.
            let linked = self.unlinked.len() >= UNLINKED_KEPT;
            let link = if linked {
                let link = self.unlinked.pop_front()?;
                self.linked.push_back(link.clone());
                link
            } else {
                let link = self.linked.pop_front()?;
                self.unlinked.push_back(link.clone());
                link
            };
            return Some(Action::Link {
                org: self.index,
                link,
                linked,
            });
        }
        let i = self.next_health % self.health.len().max(1);
        self.next_health += 1;
        let target = self.health.get_mut(i)?;
        let current = if target.state == "healthy" {
            "unhealthy"
        } else {
            "healthy"
        };
        target.state = current.to_owned();
        Some(Action::Health {
            org: self.org,
            kind: target.kind,
            id: target.id,
            resource: target.resource.clone(),
            current,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The writes

#[derive(Clone)]
struct Writer {
    http: reqwest::Client,
    base_b: String,
    /// `org-K-owner`'s token, by K.
    tokens: Vec<String>,
    /// Connections as the server's role, as the monitor's pool.
    pool: stackgate::db::Pool,
}

impl Writer {
    async fn write(&self, action: &Action) -> anyhow::Result<()> {
        match action {
            Action::Link { org, link, linked } => self.link(*org, link, *linked).await,
            Action::Health {
                org,
                kind,
                id,
                current,
                ..
            } => self.health(*org, *kind, *id, current).await,
        }
    }

    /// `linkResource` or `unlinkResource` through replica B, as `org-K-owner`.
    async fn link(&self, org: usize, link: &Link, linked: bool) -> anyhow::Result<()> {
        let query = if linked {
            "mutation Link($p: ID!, $r: ID!) { linkResource(projectId: $p, resourceId: $r) { node { id } } }"
        } else {
            "mutation Unlink($p: ID!, $r: ID!) { unlinkResource(projectId: $p, resourceId: $r) }"
        };
        let body = json!({ "query": query,
            "variables": { "p": link.project, "r": link.resource } });
        let answer = post(&self.http, &self.base_b, &self.tokens[org], &body)
            .await
            .with_context(|| format!("{} on replica B", if linked { "link" } else { "unlink" }))?;
        let done = if linked {
            answer["data"]["linkResource"]["node"]["id"].as_str() == Some(&link.resource)
        } else {
            answer["data"]["unlinkResource"] == json!(true)
        };
        if !done {
            bail!("the link change did not happen: {answer}");
        }
        Ok(())
    }

    /// What the monitor commits on a confirmed transition, in one transaction in the resource's
    /// organization: lock the row, append the check, write the state (the lease released as the
    /// monitor does), resolve the open alert and open one when unhealthy, publish the event.
    async fn health(&self, org: Uuid, kind: Kind, id: Uuid, current: &str) -> anyhow::Result<()> {
        use stackgate::db::models::{alert, probe};
        let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let scope = stackgate::db::Scope {
            org_id: Some(org),
            ..Default::default()
        };
        scope
            .transaction(&self.pool, async |conn| {
                let lock = diesel::sql_query(format!(
                    "select dock_id, health_state from {} where id = $1 for update",
                    kind.table()
                ))
                .bind::<diesel::sql_types::Uuid, _>(id);
                let row: HealthRow = diesel_async::RunQueryDsl::get_result(lock, conn).await?;
                let message = "forced by cargo bench --bench live";
                probe::insert_check(conn, (org, kind, id), at, (current, Some(1), message)).await?;
                let recorded = probe::Recorded {
                    confirmed: current,
                    checked_at: at,
                    streak: None,
                    next_check_at: at + chrono::Duration::days(1),
                };
                probe::record_on_resource(conn, kind, id, &recorded).await?;
                alert::resolve_open(conn, id, at).await?;
                if current == "unhealthy" {
                    let text = format!("{} is unhealthy: {message}", kind.as_str());
                    alert::open(conn, (org, kind, id), "critical", &text, at).await?;
                }
                let event = stackgate::events::HealthEvent::new(
                    (org, row.dock_id, id),
                    kind.as_str(),
                    (row.health_state.as_str(), current),
                    at,
                );
                stackgate::events::publish(conn, &event.into()).await
            })
            .await
            .context("the health transition")
    }
}

#[derive(QueryableByName)]
struct HealthRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    dock_id: Uuid,
    #[diesel(sql_type = Text)]
    health_state: String,
}

// ---------------------------------------------------------------------------------------------
// Commits and what live queries must show of them

/// What a result shows once it reflects a commit.
#[derive(Clone, Copy)]
enum Expect {
    /// The resource is (or is no longer) on the dashboard.
    Linked(bool),
    /// The resource's `health.state`, as stored (lowercase).
    Health(&'static str),
}

struct Commit {
    id: usize,
    kind: CommitKind,
    /// `"id":"<the resource's global id>"`, as the result's JSON has it.
    needle: String,
    expect: Expect,
    /// When COMMIT returned, or the mutation's answer arrived.
    committed: OnceLock<Instant>,
}

impl Commit {
    /// Whether a result (the `next` message's text) reflects this commit.
    fn reflected_in(&self, text: &str) -> bool {
        let at = text.find(&self.needle);
        match self.expect {
            Expect::Linked(linked) => at.is_some() == linked,
            Expect::Health(state) => at.is_some_and(|at| {
                health_after(&text[at..]).is_some_and(|s| s.eq_ignore_ascii_case(state))
            }),
        }
    }
}

/// The `health.state` of the node whose id starts `text`.
fn health_after(text: &str) -> Option<&str> {
    let at = text.find("\"health\":")? + "\"health\":".len();
    let rest = text[at..].strip_prefix("{\"state\":\"")?;
    Some(&rest[..rest.find('"')?])
}

/// Every commit, by organization, issued before its write starts; and how many (live query,
/// commit) pairs are still unreflected.
struct Journal {
    orgs: Vec<Mutex<Vec<Arc<Commit>>>>,
    outstanding: AtomicI64,
}

impl Journal {
    fn new() -> Self {
        Self {
            orgs: (0..ORGS).map(|_| Mutex::new(Vec::new())).collect(),
            outstanding: AtomicI64::new(0),
        }
    }

    fn issue(&self, org: usize, commit: Arc<Commit>, live_queries: i64) {
        self.outstanding.fetch_add(live_queries, Ordering::AcqRel);
        if let Ok(mut log) = self.orgs[org].lock() {
            log.push(commit);
        }
    }

    /// The commits of `org` from `cursor` on.
    fn since(&self, org: usize, cursor: usize) -> Vec<Arc<Commit>> {
        self.orgs[org]
            .lock()
            .map(|log| log.get(cursor..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// The sockets

struct Shared {
    ws_url: String,
    subscribe: Value,
    /// Each organization's project count.
    expected: Vec<i64>,
    journal: Journal,
    connecting: Semaphore,
}

/// What one live query saw.
#[derive(Default)]
struct LiveReport {
    /// (commit id, when the first result reflecting it arrived).
    seen: Vec<(usize, Instant)>,
    /// Commits never reflected.
    missed: Vec<usize>,
    /// Results after the first.
    results: usize,
    /// Results with `errors`, and the first one's text.
    errors: usize,
    first_error: Option<String>,
    /// Results with errors by the first error's `extensions.code`.
    codes: std::collections::BTreeMap<String, usize>,
}

/// One live query's state in its socket.
struct Live {
    cursor: usize,
    pending: Vec<Arc<Commit>>,
    report: LiveReport,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One socket of one user: connects, subscribes its live queries one by one (each first result
/// checked), says it is ready, then matches every pushed result until told to stop.
async fn socket(
    shared: Arc<Shared>,
    token: String,
    org: usize,
    n: usize,
    ready: mpsc::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<LiveReport>> {
    let mut ws = match subscribe_all(&shared, &token, org, n).await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}"))).await;
            return Ok(Vec::new());
        }
    };
    let _ = ready.send(Ok(())).await;
    let mut lives: Vec<Live> = (0..n)
        .map(|_| Live {
            cursor: 0,
            pending: Vec::new(),
            report: LiveReport::default(),
        })
        .collect();
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let at = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("socket error: {e}"),
            None => bail!("the server closed a socket"),
        };
        let (kind, id) = envelope(&text);
        let Some(live) = id.and_then(|i| lives.get_mut(i)) else {
            continue;
        };
        if kind != "next" {
            bail!("live query ended: {}", truncate(&text, 300));
        }
        live.report.results += 1;
        if text.contains("\"errors\":") {
            live.report.errors += 1;
            live.report
                .first_error
                .get_or_insert_with(|| truncate(&text, 400));
            let code = error_code(&text).unwrap_or("?").to_owned();
            *live.report.codes.entry(code).or_default() += 1;
            continue;
        }
        let new = shared.journal.since(org, live.cursor);
        live.cursor += new.len();
        live.pending.extend(new);
        let before = live.pending.len();
        live.pending.retain(|c| {
            let reflected = c.reflected_in(&text);
            if reflected {
                live.report.seen.push((c.id, at));
            }
            !reflected
        });
        let reflected = (before - live.pending.len()) as i64;
        shared
            .journal
            .outstanding
            .fetch_sub(reflected, Ordering::AcqRel);
    }
    let _ = ws.close(None).await;
    let mut reports = Vec::with_capacity(n);
    for mut live in lives {
        // Commits issued after this live query's last result were never matched against it.
        live.pending.extend(shared.journal.since(org, live.cursor));
        live.report.missed = live.pending.iter().map(|c| c.id).collect();
        reports.push(live.report);
    }
    Ok(reports)
}

/// Connects (a few sockets at a time), initialises with the token and subscribes `n` live
/// queries, checking each first result.
async fn subscribe_all(
    shared: &Shared,
    token: &str,
    org: usize,
    n: usize,
) -> anyhow::Result<Socket> {
    let mut ws = {
        let _permit = shared.connecting.acquire().await?;
        connect(&shared.ws_url, token).await?
    };
    for i in 0..n {
        let subscribe = json!({ "id": i.to_string(), "type": "subscribe",
            "payload": shared.subscribe });
        ws.send(Message::text(subscribe.to_string())).await?;
        let text = loop {
            let message = tokio::time::timeout(Duration::from_secs(120), ws.next())
                .await
                .map_err(|_| anyhow!("no first result within 120 s"))?;
            match message {
                Some(Ok(Message::Text(t))) => {
                    if envelope(&t).1 == Some(i) {
                        break t;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before the first result"),
            }
        };
        check_first(&text, shared.expected[org])
            .with_context(|| format!("org-{org}, live query {i} of its socket"))?;
    }
    Ok(ws)
}

async fn connect(url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init",
        "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Err(_) => bail!("no connection_ack within 30 s"),
            Ok(Some(Ok(Message::Text(t)))) if t.contains("connection_ack") => return Ok(ws),
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"ping\"") => {}
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(other))) => bail!("expected connection_ack, got {other:?}"),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("closed before connection_ack"),
        }
    }
}

/// A first result: a `next` with no errors, the organization's project count, 20 links each.
fn check_first(text: &str, projects: i64) -> anyhow::Result<()> {
    let message: Value = serde_json::from_str(text).context("a first result that is not JSON")?;
    if message["type"] != "next" {
        bail!("first message is not `next`: {}", truncate(text, 400));
    }
    let payload = &message["payload"];
    if let Some(errors) = payload.get("errors").filter(|e| !e.is_null()) {
        bail!("errors: {}", truncate(&errors.to_string(), 400));
    }
    let found = &payload["data"]["viewer"]["organization"]["projects"];
    if found["totalCount"].as_i64() != Some(projects) {
        bail!(
            "totalCount {}, the database has {projects}",
            found["totalCount"]
        );
    }
    let edges = found["edges"].as_array().map_or(&[][..], Vec::as_slice);
    if edges.len() as i64 != projects.min(50) {
        bail!(
            "{} project edges, expected {}",
            edges.len(),
            projects.min(50)
        );
    }
    for edge in edges {
        let links = edge["node"]["resources"]["edges"]
            .as_array()
            .map_or(0, Vec::len);
        if links != 20 {
            bail!(
                "project {} has {links} links, expected 20",
                edge["node"]["name"]
            );
        }
    }
    if !text.contains("\"health\":{\"state\":\"") {
        bail!("no `\"health\":{{\"state\":` in the result: the text matching would not work");
    }
    Ok(())
}

/// The first `extensions.code` of a result with errors.
fn error_code(text: &str) -> Option<&str> {
    let rest = &text[text.find("\"code\":\"")? + "\"code\":\"".len()..];
    Some(&rest[..rest.find('"')?])
}

/// A server message's `type` and numeric `id`, read from its head (before `payload`).
fn envelope(text: &str) -> (&str, Option<usize>) {
    let head = &text[..text.find("\"payload\"").unwrap_or(text.len())];
    let field = |name: &str| -> Option<&str> {
        let key = format!("\"{name}\":\"");
        let rest = &head[head.find(&key)? + key.len()..];
        Some(&rest[..rest.find('"')?])
    };
    (
        field("type").unwrap_or_default(),
        field("id").and_then(|id| id.parse().ok()),
    )
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

// ---------------------------------------------------------------------------------------------
// Counters, CPU and memory

/// Counters of replica A's `/metrics`; `None` when it does not export them.
struct Counters {
    reruns: Option<f64>,
    groups: Option<f64>,
    events: Option<f64>,
    /// `stackgate_graphql_requests_total` by `operation status` (every re-run is counted).
    operations: std::collections::BTreeMap<String, f64>,
}

impl Counters {
    async fn scrape(http: &reqwest::Client, url: &str) -> Self {
        let text = match http.get(url).timeout(Duration::from_secs(10)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let mut operations = std::collections::BTreeMap::new();
        sum_metric(
            &text,
            "stackgate_graphql_requests_total",
            |labels, value| {
                let key = format!(
                    "{} {}",
                    label(labels, "operation").unwrap_or("?"),
                    label(labels, "status").unwrap_or("?")
                );
                *operations.entry(key).or_insert(0.0) += value;
            },
        );
        let total = |name: &str| {
            let mut sum = None;
            sum_metric(&text, name, |_, v| *sum.get_or_insert(0.0) += v);
            sum
        };
        Self {
            reruns: total("stackgate_live_reruns_total").or_else(|| total("stackgate_live_reruns")),
            groups: total("stackgate_live_groups"),
            events: total("stackgate_events_received_total"),
            operations,
        }
    }

    /// The operations counted since `before`, by `operation status`, largest first.
    fn operations_since(&self, before: &Counters) -> Vec<(String, f64)> {
        let mut delta: Vec<(String, f64)> = self
            .operations
            .iter()
            .map(|(k, v)| (k.clone(), v - before.operations.get(k).unwrap_or(&0.0)))
            .filter(|(_, v)| *v > 0.0)
            .collect();
        delta.sort_by(|a, b| b.1.total_cmp(&a.1));
        delta
    }
}

/// A label's value in `a="x",b="y"`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let rest = &labels[labels.find(&key)? + key.len()..];
    Some(&rest[..rest.find('"')?])
}

/// Calls `each` with the labels and value of every sample of the metric `name`.
fn sum_metric(text: &str, name: &str, mut each: impl FnMut(&str, f64)) {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.chars().next() {
            Some('{') => match rest.rsplit_once("} ") {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            Some(' ') => ("", rest),
            _ => continue,
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            each(labels, v);
        }
    }
}

/// CPU ticks of replica A's and B's process trees, PostgreSQL's, this process, the machine.
struct Ticks {
    a: Option<u64>,
    b: Option<u64>,
    postgres: Option<u64>,
    me: Option<u64>,
    total: Option<u64>,
}

impl Ticks {
    fn take(a: Option<i32>, b: Option<i32>, postmaster: Option<i32>) -> Self {
        let table = support::process_table();
        let me = i32::try_from(std::process::id()).ok();
        Self {
            a: a.map(|pid| support::tree_ticks(&table, pid)),
            b: b.map(|pid| support::tree_ticks(&table, pid)),
            postgres: postmaster.map(|pid| support::tree_ticks(&table, pid)),
            me: me.and_then(|pid| table.get(&pid)).map(|p| p.1),
            total: support::machine_busy_ticks(),
        }
    }
}

fn rss_kb(pid: Option<i32>) -> Option<u64> {
    support::status_kb(pid?, "VmRSS:")
}

fn hwm_kb(pid: Option<i32>) -> Option<u64> {
    support::status_kb(pid?, "VmHWM:")
}

/// Samples a process's RSS every 100 ms; [`RssSampler::stop`] returns the peak.
struct RssSampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start(pid: Option<i32>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak = rss_kb(pid);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = tick.tick() => peak = peak.max(rss_kb(pid)),
                    _ = stopped.changed() => return peak,
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Option<u64> {
        let _ = self.stop.send(true);
        self.task.await.ok().flatten()
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// Deliveries and misses over every live query.
struct Outcome {
    expected: usize,
    latencies: Vec<f64>,
    /// (commit id, latency), to see whether latency grows over the run.
    by_commit: Vec<(usize, f64)>,
    link_latencies: Vec<f64>,
    health_latencies: Vec<f64>,
    /// Pushes that arrived before the commit time was taken (a mutation's answer still on its
    /// way), counted as 0 ms.
    early: usize,
    missed: usize,
    missed_link: usize,
    missed_health: usize,
    results: usize,
    errors: usize,
    first_error: Option<String>,
    codes: std::collections::BTreeMap<String, usize>,
}

impl Outcome {
    fn of(reports: &[LiveReport], commits: &[Arc<Commit>]) -> Self {
        let mut o = Outcome {
            expected: 0,
            latencies: Vec::new(),
            by_commit: Vec::new(),
            link_latencies: Vec::new(),
            health_latencies: Vec::new(),
            early: 0,
            missed: 0,
            missed_link: 0,
            missed_health: 0,
            results: 0,
            errors: 0,
            first_error: None,
            codes: std::collections::BTreeMap::new(),
        };
        for r in reports {
            o.expected += r.seen.len() + r.missed.len();
            o.results += r.results;
            o.errors += r.errors;
            for (code, n) in &r.codes {
                *o.codes.entry(code.clone()).or_default() += n;
            }
            if o.first_error.is_none() {
                o.first_error.clone_from(&r.first_error);
            }
            for &(id, at) in &r.seen {
                let Some(commit) = commits.get(id) else {
                    continue;
                };
                let committed = commit.committed.get().copied().unwrap_or(at);
                if at < committed {
                    o.early += 1;
                }
                let ms = at.saturating_duration_since(committed).as_secs_f64() * 1000.0;
                o.latencies.push(ms);
                o.by_commit.push((id, ms));
                match commit.kind {
                    CommitKind::Link => o.link_latencies.push(ms),
                    CommitKind::Health => o.health_latencies.push(ms),
                }
            }
            for &id in &r.missed {
                o.missed += 1;
                match commits.get(id).map(|c| c.kind) {
                    Some(CommitKind::Link) => o.missed_link += 1,
                    _ => o.missed_health += 1,
                }
            }
        }
        for v in [
            &mut o.latencies,
            &mut o.link_latencies,
            &mut o.health_latencies,
        ] {
            v.sort_by(f64::total_cmp);
        }
        o
    }
}

/// The `p`-th percentile (0–100) of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn percentiles(sorted: &[f64]) -> String {
    format!(
        "p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        pct(sorted, 50.0),
        pct(sorted, 90.0),
        pct(sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

struct Report<'a> {
    o: &'a Options,
    total: usize,
    writes_secs: f64,
    measured_secs: f64,
    outcome: &'a Outcome,
    counters: (&'a Counters, &'a Counters),
    /// Distinct (query, permission set) pairs a commit touches, on average.
    pairs: f64,
    cpu: (&'a Ticks, &'a Ticks),
    rss: Rss,
}

/// Replica A's RSS in KiB.
struct Rss {
    idle: Option<u64>,
    /// With the live queries subscribed.
    subscribed: Option<u64>,
    /// The peak sampled (every 100 ms) while measuring.
    peak: Option<u64>,
    end: Option<u64>,
    /// The process's high-water mark (`VmHWM`).
    hwm: Option<u64>,
}

impl Report<'_> {
    /// Prints the summary; true when every answer was right and nothing was missed.
    fn print(&self) -> bool {
        let (o, out) = (self.o, self.outcome);
        let commits = self.total as f64;
        println!(
            "\nLive dashboards: {} live queries (scale {}: {} projects × 20 links per org), {} \
             commits in {:.1} s ({} a second, round-robin over 10 orgs)",
            o.live,
            o.scale,
            10 * o.scale,
            self.total,
            self.writes_secs,
            o.rate
        );
        println!(
            "  link changes: linkResource/unlinkResource through replica B (commit time: its HTTP \
             answer arrived); health transitions: committed by the bench's own connection, \
             standing in for another replica's monitor (commit time: COMMIT returned)"
        );
        println!(
            "commit → push:      {}   ({} deliveries of {} expected; {} pushed before the \
             mutation's answer arrived, counted as 0 ms)",
            percentiles(&out.latencies),
            out.latencies.len(),
            out.expected,
            out.early
        );
        println!("  link changes:     {}", percentiles(&out.link_latencies));
        println!("  health:           {}", percentiles(&out.health_latencies));
        println!("  by commit time:   {}", self.slices());
        println!(
            "missed updates:     {} ({} link, {} health) — not reflected {} s after the last commit",
            out.missed,
            out.missed_link,
            out.missed_health,
            GRACE.as_secs()
        );
        println!(
            "results pushed:     {} ({:.2} per live query per commit of its org); with errors: {}{}{}",
            out.results,
            out.results as f64 / (out.expected.max(1) as f64),
            out.errors,
            if out.codes.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    out.codes
                        .iter()
                        .map(|(code, n)| format!("{code} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            out.first_error
                .as_ref()
                .map(|e| format!(" — first: {e}"))
                .unwrap_or_default()
        );
        let (before, after) = self.counters;
        // A counter appears in `/metrics` once first counted: missing before means 0.
        let delta =
            |f: fn(&Counters) -> Option<f64>| f(after).map(|a| a - f(before).unwrap_or(0.0));
        let per_commit = |v: Option<f64>| match v {
            Some(v) => format!("{v:.0} ({:.1} per commit)", v / commits),
            None => "n/a".to_owned(),
        };
        let reruns = delta(|c| c.reruns);
        println!(
            "re-runs (stackgate_live_reruns_total on A): {}{}",
            per_commit(reruns),
            if reruns.is_none() {
                " — this build does not export it"
            } else {
                ""
            }
        );
        let operations = after.operations_since(before);
        let ran: f64 = operations.iter().map(|(_, v)| v).sum();
        println!(
            "operations run on A (stackgate_graphql_requests_total; each re-run counts): {} — {}",
            per_commit(Some(ran)),
            operations
                .iter()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "events received by A: {}; distinct (query, permission set) pairs per commit: {:.1}; \
             live groups (stackgate_live_groups): {}",
            per_commit(delta(|c| c.events)),
            self.pairs,
            after
                .groups
                .map_or("n/a (not exported by this build)".into(), |g| format!(
                    "{g:.0}"
                ))
        );
        self.print_resources(commits);
        let p99 = pct(&out.latencies, 99.0);
        let runs = reruns.or(Some(ran));
        let rerun_target = runs.map(|r| r / commits <= self.pairs);
        println!(
            "targets: p99 ≤ {TARGET_P99_MS} ms: {}; no missed update: {}; re-runs per commit ≤ \
             pairs touched ({:.1}): {}",
            met(Some(p99 <= TARGET_P99_MS)),
            met(Some(out.missed == 0)),
            self.pairs,
            met(rerun_target)
        );
        out.missed == 0 && out.errors == 0 && !out.latencies.is_empty()
    }

    /// p99 of the commits of each sixth of the writes (at least 5 s each).
    fn slices(&self) -> String {
        let secs = (self.o.seconds / 6.0).max(5.0);
        let per_slice = ((secs * self.o.rate).round() as usize).max(1);
        let mut slices: Vec<Vec<f64>> = vec![Vec::new(); self.total.div_ceil(per_slice)];
        for &(id, ms) in &self.outcome.by_commit {
            if let Some(slice) = slices.get_mut(id / per_slice) {
                slice.push(ms);
            }
        }
        let cells: Vec<String> = slices
            .iter_mut()
            .enumerate()
            .map(|(i, v)| {
                v.sort_by(f64::total_cmp);
                let from = i as f64 * per_slice as f64 / self.o.rate;
                format!("{from:.0} s: p99 {:.0} ms", pct(v, 99.0))
            })
            .collect();
        cells.join(", ")
    }

    fn print_resources(&self, commits: f64) {
        let (t0, t1) = self.cpu;
        let secs = self.measured_secs;
        let ticks = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let cell = |t: Option<u64>| match t {
            Some(t) => format!(
                "{:.2} cores ({:.1} ms/commit)",
                t as f64 / CLOCK_TICKS / secs,
                t as f64 * 1000.0 / CLOCK_TICKS / commits
            ),
            None => "n/a".to_owned(),
        };
        let (a, b, pg, me) = (
            ticks(t0.a, t1.a),
            ticks(t0.b, t1.b),
            ticks(t0.postgres, t1.postgres),
            ticks(t0.me, t1.me),
        );
        let other = ticks(t0.total, t1.total).map(|total| {
            let ours: u64 = [a, b, pg, me].into_iter().flatten().sum();
            total.saturating_sub(ours) as f64 / CLOCK_TICKS / secs
        });
        println!(
            "CPU over {secs:.1} s: replica A {}; replica B {}; PostgreSQL {}; bench {}; other \
             processes {}",
            cell(a),
            cell(b),
            cell(pg),
            cell(me),
            other.map_or("n/a".into(), |c| format!("{c:.2} cores"))
        );
        let mb =
            |kb: Option<u64>| kb.map_or("n/a".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0));
        let r = &self.rss;
        println!(
            "replica A RSS: {} idle, {} with the live queries, {} peak sampled while measuring, {} \
             at the end (high-water mark {})",
            mb(r.idle),
            mb(r.subscribed),
            mb(r.peak),
            mb(r.end),
            mb(r.hwm)
        );
    }
}

fn met(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "n/a",
    }
}
