//! The health-monitoring benchmark: how many probes a minute one process sustains, at what cost.
//!
//! ```sh
//! cargo bench --bench health -- [--resources 10000] [--seconds 60] [--interval 60s]
//!     [--concurrency 64] [--orgs 10] [--burst]
//! ```
//!
//! 1. PostgreSQL: `DATABASE_URL` when set, else a throwaway private cluster under /tmp (stopped
//!    and removed when this process exits, however it exits).
//! 2. Targets: a child process (this binary with `--serve-targets`) serves HTTP 200 and accepts
//!    TCP connections on 127.0.0.1, so its CPU is not counted as the monitor's.
//! 3. Data: `--orgs` organizations with one dock each and `--resources` resources in all: half web
//!    services pointing at the HTTP target, a quarter servers and a quarter databases pointing at
//!    the TCP target. Their first checks are spread over one interval (steady state), or all due
//!    at once with `--burst`.
//! 4. The monitor (`stackgate::health::Monitor`, as `serve` runs it) probes for `--seconds`, then
//!    stops. Reported: probes recorded in the window per minute, this process's CPU (the monitor
//!    alone), PostgreSQL's CPU, the targets' CPU, and this process's peak RSS.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use stackgate::health::{Monitor, MonitorConfig, ProbeConfig};

mod support;

use support::{BenchDatabase, CLOCK_TICKS, CpuSnapshot, peak_rss_kb};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: cargo bench --bench health -- [options]

  --resources N     resources in all (default 10000): 1/2 web services, 1/4 servers, 1/4 databases
  --orgs N          organizations they are spread over (default 10)
  --seconds S       how long the monitor runs (default 60)
  --interval D      probe interval, e.g. 60s or 1m (default 60s)
  --concurrency N   probes in flight (default 64)
  --burst           every resource due at the start (default: first checks spread over an interval)

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

#[derive(Clone, Debug)]
struct Options {
    resources: u32,
    orgs: u32,
    seconds: u64,
    interval: Duration,
    concurrency: usize,
    burst: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        resources: 10_000,
        orgs: 10,
        seconds: 60,
        interval: Duration::from_secs(60),
        concurrency: 64,
        burst: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--resources" => o.resources = value()?.parse().context("--resources")?,
            "--orgs" => o.orgs = value()?.parse().context("--orgs")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--interval" => {
                o.interval = stackgate::health::settings::parse_duration(&value()?)
                    .map_err(|e| anyhow!(e))?
            }
            "--concurrency" => o.concurrency = value()?.parse().context("--concurrency")?,
            "--burst" => o.burst = true,
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if o.resources < 4 || o.orgs == 0 || o.seconds == 0 || o.concurrency == 0 {
        bail!("--resources must be at least 4, and --orgs, --seconds, --concurrency above 0");
    }
    Ok(o)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--serve-targets") {
        return serve_targets();
    }
    support::main(parse_args(), |o| async move { run(o).await.map(|()| true) })
}

async fn run(o: Options) -> anyhow::Result<()> {
    let database = BenchDatabase::open().await?;
    let mut targets = Targets::spawn()?;
    stackgate::db::run_migrations(&database.url).await?;
    let mut owner = stackgate::db::connect_owner(&database.url).await?;
    let seeding = Instant::now();
    seed(&mut owner, &o, &targets).await?;
    println!(
        "seeded {} resources in {} orgs in {:.1} s ({}; targets: HTTP 127.0.0.1:{}, TCP 127.0.0.1:{})",
        o.resources,
        o.orgs,
        seeding.elapsed().as_secs_f64(),
        database.describe,
        targets.http_port,
        targets.tcp_port,
    );
    let pool = stackgate::db::build_pool(&database.url, 16)?;
    let config = MonitorConfig {
        interval: o.interval,
        concurrency: o.concurrency,
        probe: ProbeConfig {
            timeout: Duration::from_secs(5),
            slow: Duration::from_secs(1),
            server_port: targets.tcp_port,
            allow_private: true,
            ..ProbeConfig::default()
        },
        ..MonitorConfig::default()
    };
    let monitor = Monitor::new(pool, config)?;
    // The targets' process tree goes where `CpuSnapshot` counts a server's.
    let before = CpuSnapshot::take(targets.pid(), database.postmaster);
    let started = Instant::now();
    let window_start = db_now(&mut owner).await?;
    let handle = monitor.spawn();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    handle.stop();
    let wall = started.elapsed();
    let after = CpuSnapshot::take(targets.pid(), database.postmaster);
    let probes = count(
        &mut owner,
        "select count(*) as n from health_checks where created_at >= $1::timestamptz",
        &window_start,
    )
    .await?;
    let states = state_counts(&mut owner).await?;
    targets.stop();
    report(&o, wall, probes, &before, &after, &states);
    Ok(())
}

fn report(
    o: &Options,
    wall: Duration,
    probes: i64,
    before: &CpuSnapshot,
    after: &CpuSnapshot,
    states: &str,
) {
    let secs = wall.as_secs_f64();
    let ticks = CLOCK_TICKS;
    let cores = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.1} s CPU = {:.2} cores",
            (b - a) as f64 / ticks,
            (b - a) as f64 / ticks / secs
        ),
        _ => "n/a".to_owned(),
    };
    let per_probe = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if probes > 0 => {
            format!(
                "{:.3} ms/probe",
                (b - a) as f64 / ticks * 1000.0 / probes as f64
            )
        }
        _ => "n/a".to_owned(),
    };
    println!(
        "\nHealth monitor: {} resources, interval {:?}, concurrency {}, {} first checks, {:.1} s measured",
        o.resources,
        o.interval,
        o.concurrency,
        if o.burst { "burst" } else { "spread" },
        secs
    );
    println!(
        "probes recorded        {probes} ({:.0} per minute)",
        probes as f64 / secs * 60.0
    );
    println!(
        "monitor process        {} ({})",
        cores(Some(before.me), Some(after.me)),
        per_probe(Some(before.me), Some(after.me))
    );
    println!(
        "PostgreSQL             {} ({})",
        cores(before.postgres, after.postgres),
        per_probe(before.postgres, after.postgres)
    );
    println!(
        "targets (child)        {}",
        cores(before.server, after.server)
    );
    println!(
        "other processes        {}",
        match (before.total_busy, after.total_busy) {
            (Some(a), Some(b)) => {
                let own = (after.me - before.me)
                    + after
                        .postgres
                        .zip(before.postgres)
                        .map_or(0, |(a, b)| a - b)
                    + after.server.zip(before.server).map_or(0, |(a, b)| a - b);
                format!(
                    "{:.2} cores",
                    ((b - a).saturating_sub(own)) as f64 / ticks / secs
                )
            }
            _ => "n/a".to_owned(),
        }
    );
    println!(
        "peak RSS (monitor)     {}",
        peak_rss_kb().map_or_else(
            || "n/a".into(),
            |kb| format!("{:.1} MB", kb as f64 / 1024.0)
        )
    );
    println!("confirmed states       {states}");
}

// ---------------------------------------------------------------------------------------------
// Data

async fn seed(conn: &mut AsyncPgConnection, o: &Options, targets: &Targets) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}/health", targets.http_port);
    let per_org = o.resources / o.orgs;
    let spread = if o.burst {
        "'-infinity'::timestamptz".to_owned()
    } else {
        format!(
            "now() + random() * interval '{} milliseconds'",
            o.interval.as_millis()
        )
    };
    for k in 0..o.orgs {
        let n = if k + 1 == o.orgs {
            o.resources - per_org * (o.orgs - 1)
        } else {
            per_org
        };
        let (web, servers) = (n / 2, n / 4);
        let databases = n - web - servers;
        let sql = format!(
            "with org as (insert into organizations (name, slug) values ('Bench {k}', 'bench-{k}') returning id), \
             dock as (insert into docks (org_id, name, provider, encrypted_api_key) \
                      select id, 'bench', 'digitalocean', '\\x00' from org returning id, org_id), \
             w as (insert into web_services (org_id, dock_id, provider, provider_resource_id, name, status, production_url, health_next_check_at) \
                   select org_id, id, 'vercel', 'w' || i, 'web-' || i, 'active', $1, {spread} \
                   from dock, generate_series(1, $2) i returning 1), \
             s as (insert into servers (org_id, dock_id, provider, provider_resource_id, name, status, primary_ip_address, health_next_check_at) \
                   select org_id, id, 'linode', 's' || i, 'server-' || i, 'active', '127.0.0.1', {spread} \
                   from dock, generate_series(1, $3) i returning 1) \
             insert into databases (org_id, dock_id, provider, provider_resource_id, name, status, engine, host, port, health_next_check_at) \
             select org_id, id, 'digitalocean', 'd' || i, 'db-' || i, 'active', 'pg', '127.0.0.1', $4, {spread} \
             from dock, generate_series(1, $5) i"
        );
        diesel::sql_query(sql)
            .bind::<Text, _>(&url)
            .bind::<Integer, _>(i32::try_from(web)?)
            .bind::<Integer, _>(i32::try_from(servers)?)
            .bind::<Integer, _>(i32::from(targets.tcp_port))
            .bind::<Integer, _>(i32::try_from(databases)?)
            .execute(conn)
            .await
            .context("seeding")?;
    }
    conn.batch_execute("analyze").await?;
    Ok(())
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Now {
    #[diesel(sql_type = Text)]
    now: String,
}

async fn db_now(conn: &mut AsyncPgConnection) -> anyhow::Result<String> {
    let row: Now = diesel::sql_query("select now()::text as now")
        .get_result(conn)
        .await?;
    Ok(row.now)
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, since: &str) -> anyhow::Result<i64> {
    let row: N = diesel::sql_query(sql)
        .bind::<Text, _>(since)
        .get_result(conn)
        .await?;
    Ok(row.n)
}

#[derive(QueryableByName)]
struct StateCount {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn state_counts(conn: &mut AsyncPgConnection) -> anyhow::Result<String> {
    let rows: Vec<StateCount> = diesel::sql_query(
        "select health_state as state, count(*) as n from ( \
           select health_state from servers union all select health_state from web_services \
           union all select health_state from databases) r group by 1 order by 1",
    )
    .load(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| format!("{} {}", r.state, r.n))
        .collect::<Vec<_>>()
        .join(", "))
}

// ---------------------------------------------------------------------------------------------
// Targets, in a child process

struct Targets {
    child: Option<Child>,
    http_port: u16,
    tcp_port: u16,
}

impl Targets {
    fn spawn() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("--serve-targets")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the target servers")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let ports: Vec<u16> = line
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let [http_port, tcp_port] = ports[..] else {
            bail!("the target servers did not report their ports: `{line}`");
        };
        Ok(Self {
            child: Some(child),
            http_port,
            tcp_port,
        })
    }

    fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    /// Closing its stdin ends the child.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The child: HTTP 200 and a TCP acceptor on 127.0.0.1, until stdin closes.
fn serve_targets() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::FAILURE,
    };
    let served = runtime.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{} {}", http.local_addr()?.port(), tcp.local_addr()?.port());
        let app = axum::Router::new().fallback(|| async { "ok" });
        tokio::spawn(async move { axum::serve(http, app).await });
        tokio::spawn(async move {
            while let Ok((conn, _)) = tcp.accept().await {
                drop(conn);
            }
        });
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await?;
        anyhow::Ok(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
