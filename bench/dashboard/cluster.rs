//! `--cluster`: the dashboard on three replicas and a streaming standby behind haproxy
//! (`deploy/local/cluster.sh`), against one replica on the primary, on the same database in one
//! run.
//!
//! The script starts the cluster (no credential key, so no sync scheduler; health monitor, rate
//! limit and response cache as in the other columns); the bench seeds its primary, waits for the
//! standby to replay the seed, then measures two columns:
//!
//! - `1 replica, primary`: one `serve` the bench starts itself, logging in as the cluster's
//!   serving role, no read replica: CPU is that process and the primary's PostgreSQL;
//! - `3 replicas + standby`: the same load sent to haproxy: CPU is the three replicas, haproxy,
//!   the primary and the standby.
//!
//! The machine has two cores, which both columns share with the load generator: the ratio shows
//! what spreading the work costs or gains here, not what three machines would give.

use std::collections::HashMap;

use super::*;

/// The cluster's lifetime cap: the script's watchdog stops it after this whatever happens.
const LIFETIME_SECONDS: u32 = 3600;

/// The cluster, brought down when dropped.
struct Cluster {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Cluster {
    fn up(logs: &Path) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("stackgate-bench-cluster-{}", std::process::id()));
        let mut last = String::new();
        for _ in 0..3 {
            let base = free_base()?;
            let out = script(&[
                "up",
                &dir.to_string_lossy(),
                "--base-port",
                &base.to_string(),
                "--lifetime",
                &LIFETIME_SECONDS.to_string(),
                "--bin",
                STACKGATE_BIN,
                "--keys",
                "off",
                "--serve-env",
                "STACKGATE_HEALTH_MONITOR=false",
                "--serve-env",
                &format!("STACKGATE_RATE_PER_PRINCIPAL={PER_PRINCIPAL_RATE}"),
                "--serve-env",
                "STACKGATE_RESPONSE_CACHE_BYTES=0",
                "--serve-env",
                "RUST_LOG=warn",
            ])?;
            if out.status.success() {
                let text = std::fs::read_to_string(dir.join("cluster.env"))?;
                let env = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                println!("cluster: {}", String::from_utf8_lossy(&out.stdout).trim());
                let _ = std::fs::write(logs.join("cluster-dir"), dir.to_string_lossy().as_bytes());
                return Ok(Self { dir, env });
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        bail!("the cluster did not start: {last}")
    }

    fn get(&self, key: &str) -> anyhow::Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("cluster.env has no {key}"))
    }

    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pids").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn postmaster(&self, name: &str) -> Option<i32> {
        support::postmaster_pid(&self.dir.join("pg").join(name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = script(&["down", &self.dir.to_string_lossy()]);
    }
}

fn script(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("bash")
        .arg(Path::new(ROOT).join("deploy/local/cluster.sh"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running deploy/local/cluster.sh")
}

/// A base port with the script's seven ports free on 127.0.0.1 now.
fn free_base() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let base = 20_000 + (rand::random::<u16>() % 40_000);
        if (base..base + 7).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(base);
        }
    }
    bail!("no seven free ports in a row")
}

#[derive(QueryableByName)]
struct Caught {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    caught: bool,
}

/// Waits until the standby has replayed everything the primary has written so far.
async fn standby_caught_up(primary: &SecretString, standby: &SecretString) -> anyhow::Result<()> {
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = Text)]
        lsn: String,
    }
    let conn = &mut stackgate::db::connect_owner(primary).await?;
    let Position { lsn } = diesel::sql_query("select pg_current_wal_lsn()::text as lsn")
        .get_result(conn)
        .await?;
    let conn = &mut stackgate::db::connect_owner(standby).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let Caught { caught } = diesel::sql_query(
            "select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as caught",
        )
        .bind::<Text, _>(&lsn)
        .get_result(conn)
        .await?;
        if caught {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the standby did not replay the seed within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(o: Options) -> anyhow::Result<bool> {
    let started = Instant::now();
    let logs = std::env::temp_dir().join(format!("stackgate-bench-{}-logs", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let cluster = Cluster::up(&logs)?;
    let url = SecretString::from(cluster.get("DATABASE_URL")?.to_owned());
    let standby = SecretString::from(cluster.get("STANDBY_URL")?.to_owned());

    let mut conn = stackgate::db::connect_owner(&url).await?;
    let seeded_at = Instant::now();
    let summary = stackgate::devkit::seed::seed(&mut conn, o.scale).await?;
    conn.batch_execute("ANALYZE").await?;
    let org = org0(&mut conn).await?;
    standby_caught_up(&url, &standby).await?;
    println!(
        "database: the cluster's primary; seeded {summary} in {:.1} s; analyzed; the standby replayed it",
        seeded_at.elapsed().as_secs_f64()
    );

    let secret = SecretString::from(cluster.get("STACKGATE_JWT_SECRET")?.to_owned());
    let token = stackgate::auth::jwt::JwtKeys::hs256(&secret).mint(
        "org-0-owner",
        Some("org-0"),
        6 * 3600,
    )?;
    let body = request_body(&read_root("bench/dashboard.graphql")?);
    let primary = cluster.postmaster("primary");
    let mut columns = Vec::new();
    let mut passed = true;

    // One replica on the primary, started here with the replicas' settings but no standby.
    let port = free_port()?;
    let mut cmd = Command::new(STACKGATE_BIN);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url.expose_secret())
        .env(
            "STACKGATE_APP_DATABASE_URL",
            cluster.get("STACKGATE_APP_DATABASE_URL")?,
        )
        .env("STACKGATE_JWT_SECRET", secret.expose_secret())
        .env("STACKGATE_HEALTH_MONITOR", "false")
        .env("STACKGATE_RATE_PER_PRINCIPAL", PER_PRINCIPAL_RATE)
        .env("STACKGATE_RESPONSE_CACHE_BYTES", "0")
        .env("RUST_LOG", "warn");
    let mut single = ChildGuard::spawn("single", cmd, &logs.join("single.log"))?;
    let base = format!("http://127.0.0.1:{port}");
    single
        .wait_ready(&format!("{base}/readyz"), None, Duration::from_secs(60))
        .await?;
    let target = Target {
        name: "1 replica, primary".to_owned(),
        server_pids: single.pid().into_iter().collect(),
        postmasters: primary.into_iter().collect(),
        url: format!("{base}/graphql"),
        metrics_url: Some(format!("{base}/metrics")),
        authorization: Some(format!("Bearer {token}")),
        body: body.clone(),
        shape: Shape::Stackgate,
        conditional: false,
    };
    let column = measure(&o, &target, &url, &org).await;
    passed &= column.check.is_ok();
    columns.push(column);
    single.stop();

    // Three replicas and the standby, through haproxy.
    let lb = cluster.get("STACKGATE_URL")?;
    let target = Target {
        name: "3 replicas + standby".to_owned(),
        server_pids: ["replica-1", "replica-2", "replica-3", "haproxy"]
            .iter()
            .filter_map(|name| cluster.pid(name))
            .collect(),
        postmasters: [primary, cluster.postmaster("standby")]
            .into_iter()
            .flatten()
            .collect(),
        url: format!("{lb}/graphql"),
        metrics_url: None,
        authorization: Some(format!("Bearer {token}")),
        body,
        shape: Shape::Stackgate,
        conditional: false,
    };
    let column = measure(&o, &target, &url, &org).await;
    passed &= column.check.is_ok();
    columns.push(column);

    print_table(&o, &columns, &summary);
    passed &= cross_check(&columns);
    if let [one, three] = &columns[..]
        && let (Some(a), Some(b)) = (&one.main, &three.main)
    {
        let cpu = |s: &Stats| {
            s.cpu
                .server_ms
                .zip(s.cpu.postgres_ms)
                .map_or("?".to_owned(), |(x, y)| format!("{:.2}", x + y))
        };
        println!(
            "\n3 replicas + standby / 1 replica: {:.2}× the requests/s ({:.0} vs {:.0}); CPU ms per request (servers + PostgreSQL) {} vs {}",
            b.requests_per_second / a.requests_per_second.max(f64::MIN_POSITIVE),
            b.requests_per_second,
            a.requests_per_second,
            cpu(b),
            cpu(a),
        );
    }
    println!(
        "\nlogs: {}; total time {:.0} s",
        logs.display(),
        started.elapsed().as_secs_f64()
    );
    drop(conn);
    drop(cluster);
    Ok(passed)
}
