//! The dashboard benchmark: stackgate against PostGraphile 4.14 on the same database.
//!
//! ```sh
//! cargo bench --bench dashboard -- [--scale 5] [--clients 32] [--seconds 20] [--warmup 3]
//!     [--postgraphile] [--postgraphile-workers 1|2|1,2]
//! ```
//!
//! 1. PostgreSQL: `DATABASE_URL` when set, else a throwaway private cluster under /tmp. The
//!    database gets `random_page_cost = 1.1` (for both servers), is migrated, seeded at `--scale`
//!    (`stackgate seed`), vacuumed and analyzed (so that autovacuum has nothing of the seed's
//!    left to do while the first column runs).
//! 2. stackgate: the release binary cargo built with this bench (`target/release/stackgate`)
//!    runs `serve` on a free loopback port; the requests carry a token of `org-0-owner` in `org-0`.
//! 3. Load: `bench/dashboard.graphql` as `POST /graphql` from `--clients` concurrent clients,
//!    each sending its next request when the previous one answered, for `--warmup` seconds
//!    (discarded) and then `--seconds` seconds; every request has a 30 s timeout. The first answer
//!    is checked (no `errors`; the expected numbers of projects and links). Then one client alone
//!    for a few seconds (the 1-client p50).
//! 4. `--postgraphile`: the same with `bench/postgraphile/server.js` (PostGraphile 4.14 from npm,
//!    installed with `npm ci` when missing) serving `bench/dashboard.postgraphile.graphql` as the
//!    role `stackgate_app` with `stackgate.org_id` = org-0 (row-level security on, as for
//!    stackgate), as one Node process or a cluster (`--postgraphile-workers`).
//!
//! 5. `stackgate (If-None-Match)`: the same load on a server with its response cache on, each
//!    client sending `If-None-Match` with the `ETag` of its last 200 answer; a `304 Not Modified`
//!    is a good answer. The first answer (a 200) is checked as for the other columns, and a run
//!    in which no request got a 304 fails.
//!
//! What the columns mean: requests/s counts the answers that arrived within the measured window;
//! latencies, errors and timeouts cover every request sent within it (those still running at its
//! end are awaited, up to their timeout); statements/request comes from stackgate's `/metrics`
//! (`stackgate_sql_statements_per_request`), transactions/request from `pg_stat_database`.
//! Children are stopped and the private cluster removed at the end, on errors, on Ctrl-C, and
//! (by a watcher process) even if this process is killed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use axum::body::Bytes;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[path = "dashboard/cluster.rs"]
mod cluster;
mod support;

use support::{BenchDatabase, CLOCK_TICKS, ChildGuard, CpuSnapshot, CpuUse, free_port};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const STACKGATE_BIN: &str = env!("CARGO_BIN_EXE_stackgate");
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "\
usage: cargo bench --bench dashboard -- [options]

  --scale N                 seed scale: org-0 gets 10·N projects × 20 links (default 5)
  --clients N               concurrent clients (default 32)
  --seconds S               measured seconds per server (default 20)
  --warmup S                warm-up seconds before measuring, discarded (default 3)
  --one-client-seconds S    seconds of the 1-client latency run, 0 to skip (default 5)
  --postgraphile            also run PostGraphile 4.14 on the same database
  --postgraphile-workers L  Node processes: 1, 2, or a list such as 1,2 (default 1)
  --stackgate-query FILE    send FILE to stackgate instead of bench/dashboard.graphql
                            (development: skips the dashboard shape check)
  --baseline-bin FILE       also run another stackgate binary (an earlier build) as a column
                            `stackgate (baseline)`, to measure a change in one run
  --alternate N             with --baseline-bin: N more uncached pairs of columns, in turn
                            baseline first and stackgate first, and each binary's mean (0 to 10;
                            a single pair's CPU ratio carries about 10% of noise on 2 shared cores)
  --samples DIR             write each column's --clients requests to DIR/<column>.csv
                            (client, start and latency in ms, outcome), to study the tail
  --cluster                 instead: one replica on the primary against three replicas and a
                            streaming standby behind haproxy (deploy/local/cluster.sh), on the
                            cluster's own database (bench/dashboard/cluster.rs)

stackgate runs three columns: `stackgate` (response cache off), `stackgate (cached)` (on), and
`stackgate (If-None-Match)` (on, each client sending the ETag of its last 200 answer; a 304 is a
good answer, and a run without any 304 fails).

Every stackgate runs with its health monitor off and no scheduler (no credential keys), so
nothing but the benchmark writes to the database, and STACKGATE_RATE_PER_PRINCIPAL=1000000/s
(all clients are one user: the default 200/s would answer most cached requests with 429).

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

#[derive(Clone, Debug)]
struct Options {
    scale: u32,
    clients: usize,
    seconds: f64,
    warmup: f64,
    one_client_seconds: f64,
    postgraphile: bool,
    postgraphile_workers: Vec<usize>,
    stackgate_query: Option<PathBuf>,
    baseline_bin: Option<PathBuf>,
    alternate: usize,
    cluster: bool,
    samples: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        scale: 5,
        clients: 32,
        seconds: 20.0,
        warmup: 3.0,
        one_client_seconds: 5.0,
        postgraphile: false,
        postgraphile_workers: vec![1],
        stackgate_query: None,
        baseline_bin: None,
        alternate: 0,
        cluster: false,
        samples: None,
    };
    support::parse_flags(USAGE, |flag, value| {
        match flag {
            "--scale" => o.scale = value()?.parse().context("--scale")?,
            "--clients" => o.clients = value()?.parse().context("--clients")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--warmup" => o.warmup = value()?.parse().context("--warmup")?,
            "--one-client-seconds" => {
                o.one_client_seconds = value()?.parse().context("--one-client-seconds")?;
            }
            "--postgraphile" => o.postgraphile = true,
            "--postgraphile-workers" => {
                o.postgraphile = true;
                o.postgraphile_workers = value()?
                    .split(',')
                    .map(|w| w.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--postgraphile-workers: a number or a list like 1,2")?;
            }
            "--stackgate-query" => o.stackgate_query = Some(value()?.into()),
            "--baseline-bin" => o.baseline_bin = Some(value()?.into()),
            "--alternate" => o.alternate = value()?.parse().context("--alternate")?,
            "--cluster" => o.cluster = true,
            "--samples" => o.samples = Some(value()?.into()),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
        Ok(())
    })?;
    if !(1..=stackgate::devkit::seed::MAX_SCALE).contains(&o.scale) {
        bail!(
            "--scale must be from 1 to {}",
            stackgate::devkit::seed::MAX_SCALE
        );
    }
    if o.clients == 0 || o.clients > 1024 {
        bail!("--clients must be from 1 to 1024");
    }
    if o.seconds.is_nan()
        || o.seconds <= 0.0
        || o.seconds > 3600.0
        || !(0.0..=600.0).contains(&o.warmup)
    {
        bail!("--seconds must be in (0, 3600] and --warmup in [0, 600]");
    }
    if o.alternate > 10 || (o.alternate > 0 && o.baseline_bin.is_none()) {
        bail!("--alternate: from 0 to 10 pairs, and only with --baseline-bin");
    }
    if !(0.0..=600.0).contains(&o.one_client_seconds) {
        bail!("--one-client-seconds must be in [0, 600]");
    }
    if o.postgraphile_workers.is_empty()
        || o.postgraphile_workers.iter().any(|w| !(1..=16).contains(w))
    {
        bail!("--postgraphile-workers: from 1 to 16 processes");
    }
    Ok(o)
}

fn main() -> ExitCode {
    support::main(parse_args(), run)
}

/// The whole run; `Ok(false)` when a server's answer failed its check.
async fn run(o: Options) -> anyhow::Result<bool> {
    if o.cluster {
        return cluster::run(o).await;
    }
    let started = Instant::now();
    let logs = std::env::temp_dir().join(format!("stackgate-bench-{}-logs", std::process::id()));
    std::fs::create_dir_all(&logs)?;

    // 1. The database.
    let (db, mut conn, postmaster) = BenchDatabase::migrated().await?;
    let url = db.url.clone();
    let seeded_at = Instant::now();
    let summary = stackgate::devkit::seed::seed(&mut conn, o.scale).await?;
    let seed_secs = seeded_at.elapsed().as_secs_f64();
    // Autovacuum is a background writer too: freshly inserted tables pass its insert threshold,
    // and it vacuumed them (setting hint bits and visibility maps) during the first column, which
    // ran slowest in every run. Done here, before any column, it measures nothing.
    conn.batch_execute("VACUUM (ANALYZE)").await?;
    let org = org0(&mut conn).await?;
    println!(
        "database: {} (random_page_cost = 1.1); seeded {summary} in {seed_secs:.1} s; vacuumed and analyzed",
        db.describe
    );
    println!(
        "org-0: {} projects, each with 20 links; the dashboard asks for the first {}",
        org.projects,
        org.projects.min(50)
    );

    let mut columns: Vec<Column> = Vec::new();
    let mut all_checks_passed = true;

    // 2. stackgate.
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token = stackgate::auth::jwt::JwtKeys::hs256(&SecretString::from(secret.clone())).mint(
        "org-0-owner",
        Some("org-0"),
        6 * 3600,
    )?;
    let stackgate_query = match &o.stackgate_query {
        Some(path) => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
        None => read_root("bench/dashboard.graphql")?,
    };
    let dashboard_shape = o.stackgate_query.is_none();
    // Uncached first (the response cache off), then the same build with its cache on: the
    // clients all poll one dashboard as one viewer, so the cached column measures hits, and the
    // If-None-Match column the `304 Not Modified` answers to pollers that send their `ETag`.
    let mut binaries = vec![
        (
            "stackgate".to_owned(),
            PathBuf::from(STACKGATE_BIN),
            Mode::Uncached,
        ),
        (
            "stackgate (cached)".to_owned(),
            PathBuf::from(STACKGATE_BIN),
            Mode::Cached,
        ),
        (
            INM_COLUMN.to_owned(),
            PathBuf::from(STACKGATE_BIN),
            Mode::IfNoneMatch,
        ),
    ];
    if let Some(baseline) = &o.baseline_bin {
        binaries.push((
            "stackgate (baseline)".to_owned(),
            baseline.clone(),
            Mode::Uncached,
        ));
        // More uncached pairs, in the order baseline-stackgate, stackgate-baseline, …: with the
        // pair above, a drift of the machine's speed through the run falls on both alike.
        for pair in 1..=o.alternate {
            let ours = (
                format!("stackgate #{pair}"),
                PathBuf::from(STACKGATE_BIN),
                Mode::Uncached,
            );
            let theirs = (
                format!("stackgate (baseline) #{pair}"),
                baseline.clone(),
                Mode::Uncached,
            );
            if pair % 2 == 1 {
                binaries.extend([theirs, ours]);
            } else {
                binaries.extend([ours, theirs]);
            }
        }
    }
    for (name, binary, mode) in binaries {
        let port = free_port()?;
        let log = logs.join(format!("{}.log", file_stem(&name)));
        let mut cmd = Command::new(&binary);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", url.expose_secret())
            .env("STACKGATE_JWT_SECRET", &secret)
            .env("STACKGATE_HEALTH_MONITOR", "false")
            // All clients are one user: its default 200 operations a second would answer most
            // cached requests with 429. A limit far above any rate reached keeps the check.
            .env("STACKGATE_RATE_PER_PRINCIPAL", PER_PRINCIPAL_RATE)
            .env(
                "STACKGATE_RESPONSE_CACHE_BYTES",
                if mode == Mode::Uncached {
                    "0"
                } else {
                    "67108864"
                },
            )
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        let mut server = ChildGuard::spawn(&name, cmd, &log)?;
        let base = format!("http://127.0.0.1:{port}");
        // `/healthz`, not `/readyz`: an earlier build expects fewer migrations than the database has.
        server
            .wait_ready(&format!("{base}/healthz"), None, Duration::from_secs(60))
            .await?;
        let target = Target {
            name,
            server_pids: server.pid().into_iter().collect(),
            postmasters: postmaster.into_iter().collect(),
            url: format!("{base}/graphql"),
            metrics_url: Some(format!("{base}/metrics")),
            authorization: Some(format!("Bearer {token}")),
            body: request_body(&stackgate_query),
            shape: if dashboard_shape {
                Shape::Stackgate
            } else {
                Shape::Any
            },
            conditional: mode == Mode::IfNoneMatch,
        };
        let column = measure(&o, &target, &url, &org).await;
        all_checks_passed &= column.check.is_ok();
        columns.push(column);
        server.stop();
    }

    // 3. PostGraphile.
    if o.postgraphile {
        let dir = Path::new(ROOT).join("bench/postgraphile");
        ensure_postgraphile_installed(&dir).await?;
        let query = read_root("bench/dashboard.postgraphile.graphql")?;
        for &workers in &o.postgraphile_workers {
            let port = free_port()?;
            let name = if workers == 1 {
                "PostGraphile".to_owned()
            } else {
                format!("PostGraphile×{workers}")
            };
            let log = logs.join(format!("postgraphile-{workers}.log"));
            let mut cmd = Command::new("node");
            cmd.arg("server.js")
                .current_dir(&dir)
                .env("DATABASE_URL", url.expose_secret())
                .env("ORG_ID", org.id.to_string())
                .env("PORT", port.to_string())
                .env("WORKERS", workers.to_string())
                .env("NODE_ENV", "production");
            let mut server = ChildGuard::spawn(&name, cmd, &log)?;
            let url_graphql = format!("http://127.0.0.1:{port}/graphql");
            server
                .wait_ready(
                    &url_graphql,
                    Some(request_body("{ __typename }")),
                    Duration::from_secs(120),
                )
                .await?;
            let target = Target {
                name,
                server_pids: server.pid().into_iter().collect(),
                postmasters: postmaster.into_iter().collect(),
                url: url_graphql,
                metrics_url: None,
                authorization: None,
                body: request_body(&query),
                shape: Shape::PostGraphile,
                conditional: false,
            };
            let column = measure(&o, &target, &url, &org).await;
            all_checks_passed &= column.check.is_ok();
            columns.push(column);
            server.stop();
        }
    }

    print_table(&o, &columns, &summary);
    if o.alternate > 0 {
        print_alternation(&columns);
    }
    all_checks_passed &= cross_check(&columns);
    println!(
        "\nlogs: {}; total time {:.0} s",
        logs.display(),
        started.elapsed().as_secs_f64()
    );
    drop(conn);
    drop(db);
    Ok(all_checks_passed)
}

/// How a stackgate column runs its server and its clients.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The response cache off.
    Uncached,
    /// The response cache on; plain requests.
    Cached,
    /// The response cache on; each client sends the `ETag` of its last 200 in `If-None-Match`.
    IfNoneMatch,
}

/// The per-user rate limit of the bench's servers (`STACKGATE_RATE_PER_PRINCIPAL`).
const PER_PRINCIPAL_RATE: &str = "1000000/s";

/// The column of conditional requests.
const INM_COLUMN: &str = "stackgate (If-None-Match)";

struct Org0 {
    id: uuid::Uuid,
    projects: i64,
}

#[derive(QueryableByName)]
struct Org0Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    projects: i64,
}

async fn org0(conn: &mut AsyncPgConnection) -> anyhow::Result<Org0> {
    let row: Org0Row = diesel::sql_query(
        "select o.id::text as id, (select count(*) from projects p \
           where p.org_id = o.id and p.deleted_at is null) as projects \
         from organizations o where o.slug = 'org-0'",
    )
    .get_result(conn)
    .await?;
    Ok(Org0 {
        id: row.id.parse()?,
        projects: row.projects,
    })
}

#[derive(QueryableByName)]
struct XactRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Transactions committed or rolled back in this database so far (as the statistics collector
/// has them: each busy backend reports at least once a second).
async fn db_transactions(conn: &mut AsyncPgConnection) -> Option<i64> {
    let _ = conn.batch_execute("select pg_stat_clear_snapshot()").await;
    diesel::sql_query(
        "select (xact_commit + xact_rollback)::bigint as n from pg_stat_database \
         where datname = current_database()",
    )
    .get_result::<XactRow>(conn)
    .await
    .ok()
    .map(|r| r.n)
}

async fn ensure_postgraphile_installed(dir: &Path) -> anyhow::Result<()> {
    if dir.join("node_modules/postgraphile/package.json").is_file() {
        return Ok(());
    }
    println!("installing PostGraphile into {} (npm ci)…", dir.display());
    let mut cmd = tokio::process::Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .map_err(|_| anyhow!("npm ci took over 10 minutes"))?
        .context("running npm (is Node.js with npm installed?)")?;
    if !output.status.success() {
        bail!(
            "npm ci failed in {}:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn read_root(relative: &str) -> anyhow::Result<String> {
    let path = Path::new(ROOT).join(relative);
    std::fs::read_to_string(&path).with_context(|| path.display().to_string())
}

fn request_body(query: &str) -> Bytes {
    let mut body = json!({ "query": query });
    if query.contains("query Dashboard") {
        body["operationName"] = json!("Dashboard");
    }
    Bytes::from(body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Load

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `bench/dashboard.graphql` on stackgate.
    Stackgate,
    /// `bench/dashboard.postgraphile.graphql` on PostGraphile.
    PostGraphile,
    /// Any other query: only "no errors" is checked.
    Any,
}

struct Target {
    name: String,
    /// The server's processes: one, or the replicas and the load balancer of a cluster (their
    /// CPU time, with their children's, is accounted).
    server_pids: Vec<i32>,
    /// PostgreSQL's postmasters: the primary's, and a standby's (their CPU time, with every
    /// backend's, is accounted).
    postmasters: Vec<i32>,
    url: String,
    metrics_url: Option<String>,
    authorization: Option<String>,
    body: Bytes,
    shape: Shape,
    /// Each client sends `If-None-Match` with the `ETag` of its last 200 answer.
    conditional: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// `304 Not Modified` to a request with `If-None-Match`: a good answer with no body.
    NotModified,
    /// A 200 answer carrying GraphQL `errors`.
    GraphqlError,
    /// Any other HTTP status.
    HttpError,
    /// No answer within the request timeout.
    Timeout,
    /// Connection or protocol failure.
    Transport,
}

#[derive(Clone, Copy)]
struct Sample {
    /// Which client sent it.
    client: usize,
    /// Start and end, in microseconds since the run's start.
    start_us: u64,
    end_us: u64,
    outcome: Outcome,
    bytes: u64,
}

/// One request's outcome, its body and the `ETag` it carried.
struct Reply {
    outcome: Outcome,
    body: Option<Bytes>,
    etag: Option<String>,
}

impl Reply {
    fn failed(outcome: Outcome) -> Self {
        Self {
            outcome,
            body: None,
            etag: None,
        }
    }
}

/// Sends one request, with `If-None-Match: if_none_match` when given.
async fn send(client: &reqwest::Client, target: &Target, if_none_match: Option<&str>) -> Reply {
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .timeout(REQUEST_TIMEOUT)
        .body(target.body.clone());
    if let Some(auth) = &target.authorization {
        request = request.header("authorization", auth);
    }
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Reply::failed(Outcome::Timeout),
        Err(_) => return Reply::failed(Outcome::Transport),
    };
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) if e.is_timeout() => return Reply::failed(Outcome::Timeout),
        Err(_) => return Reply::failed(Outcome::Transport),
    };
    let outcome = if status == reqwest::StatusCode::NOT_MODIFIED && if_none_match.is_some() {
        Outcome::NotModified
    } else if !status.is_success() {
        Outcome::HttpError
    } else if has_errors(&body) {
        Outcome::GraphqlError
    } else {
        Outcome::Ok
    };
    Reply {
        outcome,
        body: Some(body),
        etag,
    }
}

/// What a failed request got, shortened for the report.
fn describe_failure(outcome: Outcome, body: Option<&Bytes>) -> String {
    let what = match outcome {
        Outcome::Ok => "ok",
        Outcome::NotModified => "304",
        Outcome::GraphqlError => "GraphQL errors",
        Outcome::HttpError => "HTTP error",
        Outcome::Timeout => "timeout",
        Outcome::Transport => "connection failure",
    };
    match body {
        Some(b) => {
            let text = String::from_utf8_lossy(b);
            let start = text.find("\"errors\"").unwrap_or(0);
            format!(
                "{what}: {}",
                text[start..].chars().take(400).collect::<String>()
            )
        }
        None => what.to_owned(),
    }
}

/// A cheap test for a top-level `errors` member, without parsing ~400 KB per answer: graphql-js
/// (PostGraphile) writes it first, async-graphql (stackgate) last, where it ends the body in `]}`
/// (`data` and `extensions` are objects and end in `}}`).
fn has_errors(body: &[u8]) -> bool {
    let head = &body[..body.len().min(16)];
    let trimmed = body.trim_ascii_end();
    head.windows(8).any(|w| w == b"\"errors\"") || trimmed.ends_with(b"]}")
}

struct LoadResult {
    samples: Vec<Sample>,
    /// What the first failed request got, if one failed.
    first_failure: Option<String>,
    cpu: CpuUse,
    window_start_us: u64,
    /// The window's start as wall-clock time (to line samples up with other records).
    window_start_unix_ms: u128,
    window_end_us: u64,
    statements: Option<f64>,
    transactions: Option<f64>,
}

/// `clients` loops sending requests for `warmup` + `seconds`; the monitor reads the counters at
/// the start and the end of the measured window.
async fn load(
    target: &Arc<Target>,
    clients: usize,
    warmup: f64,
    seconds: f64,
    db_url: &SecretString,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .tcp_nodelay(true)
        .build()?;
    let t_run = Instant::now();
    let window_start = t_run + Duration::from_secs_f64(warmup);
    let window_end = window_start + Duration::from_secs_f64(seconds);
    let micros = move |t: Instant| t.duration_since(t_run).as_micros() as u64;

    let mut tasks = Vec::with_capacity(clients);
    for index in 0..clients {
        let (client, target) = (client.clone(), Arc::clone(target));
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            let mut failure = None;
            // The `ETag` of this client's last 200, sent back when the target is conditional.
            let mut etag: Option<String> = None;
            while Instant::now() < window_end {
                let start = Instant::now();
                let reply = send(&client, &target, etag.as_deref()).await;
                let outcome = reply.outcome;
                if !matches!(outcome, Outcome::Ok | Outcome::NotModified) && failure.is_none() {
                    failure = Some(describe_failure(outcome, reply.body.as_ref()));
                }
                if target.conditional && outcome == Outcome::Ok {
                    etag = reply.etag;
                }
                samples.push(Sample {
                    client: index,
                    start_us: micros(start),
                    end_us: micros(Instant::now()),
                    outcome,
                    bytes: reply.body.map_or(0, |b| b.len() as u64),
                });
                if outcome == Outcome::Transport {
                    // A refused connection fails at once: don't spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (samples, failure)
        }));
    }

    let mut conn = stackgate::db::connect_owner(db_url).await.ok();
    let counters = async |conn: &mut Option<AsyncPgConnection>| {
        let stats = match &target.metrics_url {
            Some(url) => scrape_statements(&client, url).await,
            None => None,
        };
        let xacts = match conn.as_mut() {
            Some(c) => db_transactions(c).await,
            None => None,
        };
        (
            stats,
            xacts,
            CpuSnapshot::take_many(&target.server_pids, &target.postmasters),
        )
    };
    tokio::time::sleep_until(window_start.into()).await;
    let window_start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let (stats0, xacts0, cpu0) = counters(&mut conn).await;
    tokio::time::sleep_until(window_end.into()).await;
    let (stats1, xacts1, cpu1) = counters(&mut conn).await;

    let mut samples = Vec::new();
    let mut first_failure = None;
    for task in tasks {
        let (some, failure) = task.await.context("a client task failed")?;
        samples.extend(some);
        first_failure = first_failure.or(failure);
    }
    let window_start_us = micros(window_start);
    let window_end_us = micros(window_end);
    let completed = samples
        .iter()
        .filter(|s| s.end_us >= window_start_us && s.end_us <= window_end_us)
        .count() as f64;
    let statements = match (stats0, stats1) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((s1 - s0) / (c1 - c0)),
        _ => None,
    };
    let transactions = match (xacts0, xacts1) {
        (Some(a), Some(b)) if completed > 0.0 => Some((b - a) as f64 / completed),
        _ => None,
    };
    let per_request = |ticks: Option<u64>| {
        ticks
            .filter(|_| completed > 0.0)
            .map(|t| t as f64 * 1000.0 / CLOCK_TICKS / completed)
    };
    let cpu = CpuUse {
        server_ms: per_request(
            cpu1.server
                .zip(cpu0.server)
                .map(|(b, a)| b.saturating_sub(a)),
        ),
        postgres_ms: per_request(
            cpu1.postgres
                .zip(cpu0.postgres)
                .map(|(b, a)| b.saturating_sub(a)),
        ),
        client_ms: per_request(Some(cpu1.me.saturating_sub(cpu0.me))),
        other_cores: cpu1.total_busy.zip(cpu0.total_busy).map(|(b, a)| {
            let ours = [
                cpu1.server.zip(cpu0.server),
                cpu1.postgres.zip(cpu0.postgres),
                Some((cpu1.me, cpu0.me)),
            ]
            .into_iter()
            .flatten()
            .map(|(b, a)| b.saturating_sub(a))
            .sum::<u64>();
            b.saturating_sub(a).saturating_sub(ours) as f64 / CLOCK_TICKS / seconds
        }),
    };
    Ok(LoadResult {
        samples,
        first_failure,
        cpu,
        window_start_us,
        window_start_unix_ms,
        window_end_us,
        statements,
        transactions,
    })
}

/// `(sum, count)` of `stackgate_sql_statements_per_request` over every label set, if served.
async fn scrape_statements(client: &reqwest::Client, url: &str) -> Option<(f64, f64)> {
    let text = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let (mut sum, mut count, mut seen) = (0.0, 0.0, false);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("stackgate_sql_statements_per_request_") else {
            continue;
        };
        let (name, value) = match rest.split_once(['{', ' ']) {
            Some((name, _)) => (name, rest.rsplit(' ').next()?),
            None => continue,
        };
        let value: f64 = value.parse().ok()?;
        match name {
            "sum" => sum += value,
            "count" => {
                count += value;
                seen = true;
            }
            _ => {}
        }
    }
    seen.then_some((sum, count))
}

// ---------------------------------------------------------------------------------------------
// Measuring one server

struct Column {
    name: String,
    check: Result<String, String>,
    first_answer: Option<Value>,
    main: Option<Stats>,
    one_client_p50_ms: Option<f64>,
}

struct Stats {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    sent: usize,
    /// `304 Not Modified` answers among them.
    not_modified: usize,
    errors: usize,
    timeouts: usize,
    late: usize,
    avg_kb: f64,
    statements: Option<f64>,
    transactions: Option<f64>,
    cpu: CpuUse,
}

async fn measure(o: &Options, target: &Target, db_url: &SecretString, org: &Org0) -> Column {
    let mut column = Column {
        name: target.name.clone(),
        check: Err("not run".into()),
        first_answer: None,
        main: None,
        one_client_p50_ms: None,
    };
    // The first answer, checked.
    let client = reqwest::Client::new();
    let Reply { outcome, body, .. } = send(&client, target, None).await;
    let parsed: Option<Value> = body.as_ref().and_then(|b| serde_json::from_slice(b).ok());
    column.check = match (&parsed, outcome) {
        (_, Outcome::Timeout) => Err("the first request timed out".into()),
        (_, Outcome::Transport) => Err("the first request failed to connect".into()),
        (None, _) => Err(format!(
            "the first answer is not JSON: {}",
            String::from_utf8_lossy(&body.unwrap_or_default()[..])
                .chars()
                .take(300)
                .collect::<String>()
        )),
        (Some(v), _) => check_answer(target.shape, v, org),
    };
    column.first_answer = parsed;
    match &column.check {
        Ok(what) => println!("{}: first answer OK ({what})", target.name),
        Err(why) => {
            println!("{}: first answer WRONG: {why}", target.name);
            return column;
        }
    }

    let target = Arc::new(Target {
        name: target.name.clone(),
        server_pids: target.server_pids.clone(),
        postmasters: target.postmasters.clone(),
        url: target.url.clone(),
        metrics_url: target.metrics_url.clone(),
        authorization: target.authorization.clone(),
        body: target.body.clone(),
        shape: target.shape,
        conditional: target.conditional,
    });
    println!(
        "{}: {} clients, {} s warm-up + {} s…",
        target.name, o.clients, o.warmup, o.seconds
    );
    match load(&target, o.clients, o.warmup, o.seconds, db_url).await {
        Ok(result) => {
            if let Some(failure) = &result.first_failure {
                println!("{}: a request failed — {failure}", target.name);
            }
            let stats = stats(&result);
            if let Some(dir) = &o.samples {
                write_samples(dir, &target.name, &result);
            }
            if target.conditional && stats.not_modified == 0 {
                println!(
                    "{}: WRONG: no request got 304 Not Modified ({} sent)",
                    target.name, stats.sent
                );
                column.check = Err("no 304 answers to If-None-Match".into());
            }
            column.main = Some(stats);
        }
        Err(e) => println!("{}: load failed: {e:#}", target.name),
    }
    if o.one_client_seconds > 0.0 {
        println!("{}: 1 client, {} s…", target.name, o.one_client_seconds);
        if let Ok(result) = load(&target, 1, 1.0, o.one_client_seconds, db_url).await {
            let s = stats(&result);
            column.one_client_p50_ms = (s.sent > 0).then_some(s.p50_ms);
        }
    }
    column
}

/// A column's name as a file name (its log's, its samples'): `stackgate (baseline) #1` →
/// `stackgatebaseline#1`.
fn file_stem(name: &str) -> String {
    name.replace([' ', '(', ')'], "")
}

/// Writes `result`'s requests as `DIR/<name>.csv`: client, start (ms since the window began,
/// negative in the warm-up), latency (ms), outcome; a first comment line gives the window's start.
fn write_samples(dir: &Path, name: &str, result: &LoadResult) {
    let mut csv = format!(
        "# window start {} ms since the Unix epoch\nclient,start_ms,latency_ms,outcome\n",
        result.window_start_unix_ms
    );
    for s in &result.samples {
        let start = (s.start_us as f64 - result.window_start_us as f64) / 1000.0;
        let latency = s.end_us.saturating_sub(s.start_us) as f64 / 1000.0;
        let outcome = match s.outcome {
            Outcome::Ok => "ok",
            Outcome::NotModified => "304",
            Outcome::GraphqlError => "graphql-error",
            Outcome::HttpError => "http-error",
            Outcome::Timeout => "timeout",
            Outcome::Transport => "transport",
        };
        let _ = writeln!(csv, "{},{start:.3},{latency:.3},{outcome}", s.client);
    }
    let path = dir.join(format!("{}.csv", file_stem(name)));
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, csv)) {
        println!("{name}: cannot write {}: {e}", path.display());
    }
}

fn stats(r: &LoadResult) -> Stats {
    let in_window: Vec<&Sample> = r
        .samples
        .iter()
        .filter(|s| s.start_us >= r.window_start_us && s.start_us < r.window_end_us)
        .collect();
    let completed_in_window = r
        .samples
        .iter()
        .filter(|s| s.end_us >= r.window_start_us && s.end_us <= r.window_end_us)
        .count();
    let seconds = (r.window_end_us - r.window_start_us) as f64 / 1e6;
    let mut latencies: Vec<u64> = in_window.iter().map(|s| s.end_us - s.start_us).collect();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1] as f64 / 1000.0
    };
    // Good answers: a 304's body is empty.
    let ok: Vec<&&Sample> = in_window
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Ok | Outcome::NotModified))
        .collect();
    Stats {
        requests_per_second: completed_in_window as f64 / seconds,
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        max_ms: latencies.last().map_or(f64::NAN, |&l| l as f64 / 1000.0),
        sent: in_window.len(),
        not_modified: in_window
            .iter()
            .filter(|s| s.outcome == Outcome::NotModified)
            .count(),
        errors: in_window
            .iter()
            .filter(|s| {
                matches!(
                    s.outcome,
                    Outcome::GraphqlError | Outcome::HttpError | Outcome::Transport
                )
            })
            .count(),
        timeouts: in_window
            .iter()
            .filter(|s| s.outcome == Outcome::Timeout)
            .count(),
        late: in_window
            .iter()
            .filter(|s| s.end_us > r.window_end_us)
            .count(),
        avg_kb: if ok.is_empty() {
            f64::NAN
        } else {
            ok.iter().map(|s| s.bytes).sum::<u64>() as f64 / ok.len() as f64 / 1024.0
        },
        statements: r.statements,
        transactions: r.transactions,
        cpu: r.cpu,
    }
}

// ---------------------------------------------------------------------------------------------
// Checking answers

/// Checks the first answer: no errors, and for the dashboard the expected projects and links.
fn check_answer(shape: Shape, v: &Value, org: &Org0) -> Result<String, String> {
    if let Some(errors) = v.get("errors").filter(|e| !e.is_null()) {
        let messages: Vec<String> = errors
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
            .map(|e| {
                format!(
                    "{} [{}]",
                    e["message"].as_str().unwrap_or("?"),
                    e["extensions"]["code"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(format!("errors: {}", messages.join("; ")));
    }
    let expected_projects = org.projects.min(50) as usize;
    let (org_value, links_field) = match shape {
        Shape::Any => return Ok("no errors".into()),
        Shape::Stackgate => (&v["data"]["viewer"]["organization"], "resources"),
        Shape::PostGraphile => (&v["data"]["organizationBySlug"], "resources"),
    };
    let projects = &org_value["projects"];
    let total = projects["totalCount"].as_i64();
    if total != Some(org.projects) {
        return Err(format!(
            "projects.totalCount is {total:?}, the database has {}",
            org.projects
        ));
    }
    let edges = projects["edges"].as_array().map_or(&[][..], Vec::as_slice);
    if edges.len() != expected_projects {
        return Err(format!(
            "{} project edges, expected {expected_projects}",
            edges.len()
        ));
    }
    for edge in edges {
        let node = &edge["node"];
        let links = node[links_field]["edges"].as_array().map_or(0, Vec::len);
        if links != 20 {
            return Err(format!(
                "project {} has {links} resource edges, expected 20",
                node["name"]
            ));
        }
    }
    Ok(format!(
        "{expected_projects} projects × 20 resource edges, no errors"
    ))
}

/// The dashboard answer reduced to what both servers return, in one form: per project its name,
/// client, health counts and links (kind, name, status, health, dock, the kind's fields).
fn canonical(shape: Shape, v: &Value) -> Option<Value> {
    let lower = |v: &Value| match v.as_str() {
        Some(s) => json!(s.to_ascii_lowercase()),
        None => v.clone(),
    };
    let time = |v: &Value| match v.as_str() {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => json!(t.with_timezone(&chrono::Utc).to_rfc3339()),
            Err(_) => v.clone(),
        },
        None => v.clone(),
    };
    let dock = |d: &Value| {
        json!({
            "name": d["name"], "provider": d["provider"],
            "lastSyncStatus": lower(&d["lastSyncStatus"]), "lastSyncAt": time(&d["lastSyncAt"]),
        })
    };
    let org = match shape {
        Shape::Stackgate => &v["data"]["viewer"]["organization"],
        Shape::PostGraphile => &v["data"]["organizationBySlug"],
        Shape::Any => return None,
    };
    let mut projects = Vec::new();
    for edge in org["projects"]["edges"].as_array()? {
        let p = &edge["node"];
        let mut links = Vec::new();
        for link in p["resources"]["edges"].as_array()? {
            let (kind, r, denormalized) = match shape {
                Shape::Stackgate => {
                    let r = &link["node"];
                    let kind = match r["__typename"].as_str()? {
                        "Server" => "server",
                        "WebService" => "web_service",
                        "Domain" => "domain",
                        "Database" => "database",
                        other => other,
                    };
                    (kind.to_owned(), r, lower(&link["denormalizedStatus"]))
                }
                _ => {
                    let l = &link["node"];
                    let kind = l["resourceKind"].as_str()?.to_owned();
                    let field = match kind.as_str() {
                        "web_service" => "webService",
                        k => k,
                    };
                    let r = &l[field];
                    (kind, r, lower(&l["denormalizedStatus"]))
                }
            };
            let (health, checked) = match shape {
                Shape::Stackgate => (
                    lower(&r["health"]["state"]),
                    time(&r["health"]["checkedAt"]),
                ),
                _ => (lower(&r["healthState"]), time(&r["lastHealthCheckAt"])),
            };
            let own = match kind.as_str() {
                "server" => {
                    json!({ "primaryIpAddress": r["primaryIpAddress"], "region": r["region"] })
                }
                "web_service" => json!({ "productionUrl": r["productionUrl"] }),
                "domain" => {
                    json!({ "domainName": r["domainName"], "expiresAt": time(&r["expiresAt"]) })
                }
                _ => json!({ "engine": r["engine"], "version": r["version"] }),
            };
            links.push(json!({
                "kind": kind, "name": r["name"], "status": lower(&r["status"]),
                "denormalizedStatus": denormalized, "health": health, "checkedAt": checked,
                "dock": dock(&r["dock"]), "fields": own,
            }));
        }
        let h = &p["healthSummary"];
        projects.push(json!({
            "name": p["name"], "client": p["client"]["name"],
            "healthSummary": [h["healthy"], h["degraded"], h["unhealthy"], h["unknown"]],
            "links": links,
        }));
    }
    Some(
        json!({ "name": org["name"], "totalCount": org["projects"]["totalCount"], "projects": projects }),
    )
}

/// The first place where `a` and `b` differ, as a path and both values.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} items vs {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// With `--alternate`: the uncached columns of each binary averaged, and their ratio.
fn print_alternation(columns: &[Column]) {
    type Figure = fn(&Stats) -> Option<f64>;
    let mean = |baseline: bool, of: Figure| {
        let values: Vec<f64> = columns
            .iter()
            .filter(|c| {
                let name = c.name.as_str();
                if baseline {
                    name.starts_with("stackgate (baseline)")
                } else {
                    name == "stackgate" || name.starts_with("stackgate #")
                }
            })
            .filter_map(|c| c.main.as_ref().and_then(of))
            .collect();
        (!values.is_empty()).then(|| (values.iter().sum::<f64>() / values.len() as f64, values))
    };
    let rows: [(&str, Figure); 2] = [
        ("requests/s", |s| Some(s.requests_per_second)),
        ("server CPU ms/request", |s| s.cpu.server_ms),
    ];
    println!(
        "\nalternated uncached columns, each binary's mean (every column's value in brackets):"
    );
    for (label, of) in rows {
        if let (Some((ours, each)), Some((theirs, their_each))) = (mean(false, of), mean(true, of))
        {
            let show = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  {label}: stackgate {ours:.1} [{}], baseline {theirs:.1} [{}]: {:.2}×",
                show(&each),
                show(&their_each),
                ours / theirs
            );
        }
    }
}

/// Compares stackgate's first answer with PostGraphile's: the same data, whatever the shape.
fn cross_check(columns: &[Column]) -> bool {
    let Some(ours) = columns
        .iter()
        .find(|c| c.name == "stackgate")
        .and_then(|c| c.first_answer.as_ref())
        .and_then(|v| canonical(Shape::Stackgate, v))
    else {
        return true;
    };
    let mut same = true;
    for column in columns
        .iter()
        .filter(|c| c.name.starts_with("PostGraphile"))
    {
        let Some(theirs) = column
            .first_answer
            .as_ref()
            .and_then(|v| canonical(Shape::PostGraphile, v))
        else {
            continue;
        };
        match first_difference(&ours, &theirs, "dashboard") {
            None => println!(
                "cross-check: stackgate and {} return the same data (projects, clients, health \
                 counts, links, resources, docks)",
                column.name
            ),
            Some(diff) => {
                same = false;
                println!(
                    "cross-check: stackgate and {} DIFFER — first difference (stackgate vs \
                     PostGraphile): {diff}",
                    column.name
                );
            }
        }
    }
    same
}

// ---------------------------------------------------------------------------------------------
// The table

fn print_table(o: &Options, columns: &[Column], summary: &stackgate::devkit::seed::Summary) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nDashboard query, scale {} (org-0: {} projects × 20 resources; {} resources in 10 orgs), \
         {} clients, {} s measured after {} s warm-up, 30 s request timeout, RLS on for both",
        o.scale,
        10 * o.scale,
        summary.resources,
        o.clients,
        o.seconds,
        o.warmup
    );
    let width = 26;
    let col = columns
        .iter()
        .map(|c| c.name.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(16);
    let _ = write!(out, "{:<width$}", "");
    for c in columns {
        let _ = write!(out, "{:>col$}", c.name);
    }
    out.push('\n');
    let num = |v: Option<f64>, digits: usize| match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "n/a".to_owned(),
    };
    type Row<'a> = (&'a str, Box<dyn Fn(&Column) -> String + 'a>);
    let rows: Vec<Row> = vec![
        (
            "requests/s",
            Box::new(|c: &Column| num(c.main.as_ref().map(|s| s.requests_per_second), 1)),
        ),
        (
            "p50 latency (ms)",
            Box::new(|c: &Column| num(c.main.as_ref().map(|s| s.p50_ms), 1)),
        ),
        (
            "p99 latency (ms)",
            Box::new(|c: &Column| num(c.main.as_ref().map(|s| s.p99_ms), 1)),
        ),
        (
            "max latency (ms)",
            Box::new(|c: &Column| num(c.main.as_ref().map(|s| s.max_ms), 1)),
        ),
        (
            "requests sent",
            Box::new(|c: &Column| c.main.as_ref().map_or("n/a".into(), |s| s.sent.to_string())),
        ),
        (
            "of which 304",
            Box::new(|c: &Column| {
                c.main
                    .as_ref()
                    .map_or("n/a".into(), |s| s.not_modified.to_string())
            }),
        ),
        (
            "errors",
            Box::new(|c: &Column| {
                c.main
                    .as_ref()
                    .map_or("n/a".into(), |s| s.errors.to_string())
            }),
        ),
        (
            "timeouts (30 s)",
            Box::new(|c: &Column| {
                c.main
                    .as_ref()
                    .map_or("n/a".into(), |s| s.timeouts.to_string())
            }),
        ),
        (
            "answered after window",
            Box::new(|c: &Column| c.main.as_ref().map_or("n/a".into(), |s| s.late.to_string())),
        ),
        (
            "avg response (KB)",
            Box::new(|c: &Column| num(c.main.as_ref().map(|s| s.avg_kb), 1)),
        ),
        (
            "SQL statements/request",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.statements), 1)),
        ),
        (
            "DB transactions/request",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.transactions), 2)),
        ),
        (
            "server CPU ms/request",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.cpu.server_ms), 1)),
        ),
        (
            "PostgreSQL CPU ms/request",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.cpu.postgres_ms), 1)),
        ),
        (
            "load tool CPU ms/request",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.cpu.client_ms), 1)),
        ),
        (
            "other processes (cores)",
            Box::new(|c: &Column| num(c.main.as_ref().and_then(|s| s.cpu.other_cores), 2)),
        ),
        (
            "p50 at 1 client (ms)",
            Box::new(|c: &Column| num(c.one_client_p50_ms, 1)),
        ),
        (
            "first answer",
            Box::new(|c: &Column| {
                if c.check.is_ok() {
                    "ok".into()
                } else {
                    "WRONG".into()
                }
            }),
        ),
    ];
    for (label, cell) in &rows {
        let _ = write!(out, "{label:<width$}");
        for c in columns {
            let _ = write!(out, "{:>col$}", cell(c));
        }
        out.push('\n');
    }
    for ours_name in ["stackgate", "stackgate (cached)", INM_COLUMN] {
        let Some(ours) = columns
            .iter()
            .find(|c| c.name == ours_name)
            .and_then(|c| c.main.as_ref())
        else {
            continue;
        };
        // The cached columns are compared with the peers only.
        let peers = columns.iter().filter(|c| {
            c.name != ours_name && (ours_name == "stackgate" || !c.name.starts_with("stackgate"))
        });
        for c in peers {
            let Some(theirs) = &c.main else { continue };
            let _ = writeln!(
                out,
                "{ours_name} / {}: requests/s {:.2}×, p50 {:.2}×, p99 {:.2}× (latency: lower is better)",
                c.name,
                ours.requests_per_second / theirs.requests_per_second,
                ours.p50_ms / theirs.p50_ms,
                ours.p99_ms / theirs.p99_ms
            );
        }
    }
    println!("{out}");
}
