//! What the benchmarks share: their database (a private PostgreSQL cluster or `DATABASE_URL`),
//! child processes stopped when dropped, free ports, and CPU accounting from `/proc`.
//!
//! Each bench includes this file with `mod support;`; not every bench uses every item.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use anyhow::{Context, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use stackgate::devkit::embedded::{Durability, EmbeddedPostgres};

/// The database every bench creates in a private cluster.
pub const BENCH_DB: &str = "stackgate_bench";

// ---------------------------------------------------------------------------------------------
// The database

/// `DATABASE_URL`, or a private cluster that is stopped when this value is dropped (and by a
/// watcher process once this process has exited, whatever way it exited).
pub struct BenchDatabase {
    pub url: SecretString,
    pub describe: String,
    /// The postmaster's pid when the cluster runs on this machine (CPU accounting).
    pub postmaster: Option<i32>,
    _cluster: Option<EmbeddedPostgres>,
}

impl BenchDatabase {
    /// [`BenchDatabase::open`], with `random_page_cost = 1.1` for the database (SSD-like, for
    /// every server compared), migrated: the database, an owner connection, and the
    /// postmaster's pid when it runs on this machine.
    pub async fn migrated() -> anyhow::Result<(Self, AsyncPgConnection, Option<i32>)> {
        Self::migrated_with(Durability { ephemeral: true }).await
    }

    /// [`BenchDatabase::migrated`] with a private cluster as durable as `durability` says.
    pub async fn migrated_with(
        durability: Durability,
    ) -> anyhow::Result<(Self, AsyncPgConnection, Option<i32>)> {
        use diesel_async::SimpleAsyncConnection;
        let db = Self::open_with(durability).await?;
        let mut conn = stackgate::db::connect_owner(&db.url).await?;
        conn.batch_execute(
            "do $$ begin execute format('alter database %I set random_page_cost = 1.1', \
             current_database()); end $$",
        )
        .await
        .context("ALTER DATABASE … SET random_page_cost")?;
        stackgate::db::run_migrations(&db.url).await?;
        let postmaster = match db.postmaster {
            Some(pid) => Some(pid),
            None => local_postmaster(&mut conn).await,
        };
        Ok((db, conn, postmaster))
    }

    /// `DATABASE_URL`, or a throwaway private cluster (fsync and synchronous commit off).
    pub async fn open() -> anyhow::Result<Self> {
        Self::open_with(Durability { ephemeral: true }).await
    }

    /// `DATABASE_URL`, or a private cluster as durable as `durability` says.
    pub async fn open_with(durability: Durability) -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Self {
                url: SecretString::from(url),
                describe: "DATABASE_URL".into(),
                postmaster: None,
                _cluster: None,
            });
        }
        let dir = PathBuf::from(format!("/tmp/stackgate-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        if nix::unistd::geteuid().is_root() {
            let pg = nix::unistd::User::from_name("postgres")?
                .ok_or_else(|| anyhow!("running as root, but there is no `postgres` user"))?;
            nix::unistd::chown(&dir, Some(pg.uid), Some(pg.gid))?;
        }
        let start_dir = dir.clone();
        let mut cluster = tokio::task::spawn_blocking(move || {
            EmbeddedPostgres::start(&start_dir, None, durability)
        })
        .await??;
        // Stopped and removed once this process exits, however it exits (also on Ctrl-C).
        cluster.stop_and_remove_when_process_exits(std::process::id(), &dir)?;
        stackgate::devkit::embedded::ensure_database(&cluster, BENCH_DB).await?;
        let postmaster = postmaster_pid(&dir.join("pg/data"));
        Ok(Self {
            url: cluster.url(BENCH_DB),
            describe: format!(
                "private PostgreSQL in {} (port {}, {})",
                dir.display(),
                cluster.port(),
                if durability.ephemeral {
                    "fsync off"
                } else {
                    "fsync and synchronous_commit on"
                }
            ),
            postmaster,
            _cluster: Some(cluster),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
pub struct ChildGuard {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl ChildGuard {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Polls `url` (GET, or POST of `body`) until it answers 200.
    pub async fn wait_ready(
        &mut self,
        url: &str,
        body: Option<Bytes>,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    tail(&self.log, 20)
                );
            }
            let request = match &body {
                Some(b) => client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(b.clone()),
                None => client.get(url),
            };
            if let Ok(r) = request.timeout(Duration::from_secs(10)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready within {limit:?}:\n{}",
                    self.name,
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

/// Linux reports CPU times in USER_HZ ticks, 100 a second on every mainstream configuration.
pub const CLOCK_TICKS: f64 = 100.0;

/// CPU milliseconds per answered request, by process group, over the measured window.
#[derive(Clone, Copy, Default)]
pub struct CpuUse {
    pub server_ms: Option<f64>,
    pub postgres_ms: Option<f64>,
    pub client_ms: Option<f64>,
    /// Cores kept busy by every other process of the machine (noise: builds, other tests).
    pub other_cores: Option<f64>,
}

/// CPU ticks used so far: the server's process tree, PostgreSQL's, this process, the machine.
pub struct CpuSnapshot {
    pub server: Option<u64>,
    pub postgres: Option<u64>,
    pub me: u64,
    pub total_busy: Option<u64>,
}

impl CpuSnapshot {
    pub fn take(server: Option<i32>, postmaster: Option<i32>) -> Self {
        Self::take_many(server.as_slice(), postmaster.as_slice())
    }

    /// [`CpuSnapshot::take`] of several servers (replicas, a load balancer) and several
    /// PostgreSQL clusters (a primary and its standbys), each group summed.
    pub fn take_many(servers: &[i32], postmasters: &[i32]) -> Self {
        let table = process_table();
        let me = i32::try_from(std::process::id()).ok();
        let sum = |pids: &[i32]| {
            (!pids.is_empty()).then(|| pids.iter().map(|&pid| tree_ticks(&table, pid)).sum())
        };
        Self {
            server: sum(servers),
            postgres: sum(postmasters),
            me: me.and_then(|pid| table.get(&pid)).map_or(0, |p| p.1),
            total_busy: machine_busy_ticks(),
        }
    }
}

/// pid → (parent pid, user + system ticks of the process and of its reaped children).
pub fn process_table() -> std::collections::HashMap<i32, (i32, u64)> {
    let mut table = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After "pid (comm)": state ppid … utime(11) stime(12) cutime(13) cstime(14).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
        if let (Some(ppid), Some(u), Some(s), Some(cu), Some(cs)) =
            (number(1), number(11), number(12), number(13), number(14))
        {
            let ticks = (u + s + cu + cs).max(0) as u64;
            table.insert(pid, (i32::try_from(ppid).unwrap_or(0), ticks));
        }
    }
    table
}

/// Ticks of `root` and of all its descendants.
pub fn tree_ticks(table: &std::collections::HashMap<i32, (i32, u64)>, root: i32) -> u64 {
    let mut total = 0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some((_, ticks)) = table.get(&pid) {
            total += ticks;
        }
        stack.extend(
            table
                .iter()
                .filter(|(_, (ppid, _))| *ppid == pid)
                .map(|(child, _)| *child),
        );
    }
    total
}

/// Busy ticks of all CPUs since boot (everything but idle and iowait).
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    Some(v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?)
}

/// The postmaster's pid, from the first line of `postmaster.pid` in the data directory.
pub fn postmaster_pid(data: &Path) -> Option<i32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[derive(QueryableByName)]
pub struct SettingRow {
    #[diesel(sql_type = Text)]
    pub setting: String,
}

/// With `DATABASE_URL`: the postmaster, when the server runs on this machine and its data
/// directory is readable from here.
pub async fn local_postmaster(conn: &mut AsyncPgConnection) -> Option<i32> {
    let row: SettingRow =
        diesel::sql_query("select setting from pg_settings where name = 'data_directory'")
            .get_result(conn)
            .await
            .ok()?;
    postmaster_pid(Path::new(&row.setting))
}

// ---------------------------------------------------------------------------------------------
// Memory

/// Resets this process's peak RSS (Linux: `5` into `/proc/self/clear_refs`); best effort.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak RSS in KiB (`VmHWM`).
pub fn peak_rss_kb() -> Option<u64> {
    status_kb(i32::try_from(std::process::id()).ok()?, "VmHWM:")
}

/// `stackgate serve` (the bench's own release binary) on a free loopback port over `url`, with
/// its health monitor off so nothing but the bench writes, waited for until `/readyz` answers.
/// Returns the server and its `host:port`.
pub async fn serve(
    url: &SecretString,
    jwt_secret: &str,
    log: &Path,
    default_log_level: &str,
) -> anyhow::Result<(ChildGuard, String)> {
    serve_with("stackgate", url, jwt_secret, log, default_log_level, &[]).await
}

/// [`serve`] as the child `name`, with more environment variables (budgets, settings).
pub async fn serve_with(
    name: &str,
    url: &SecretString,
    jwt_secret: &str,
    log: &Path,
    default_log_level: &str,
    env: &[(&str, String)],
) -> anyhow::Result<(ChildGuard, String)> {
    let port = free_port()?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackgate"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url.expose_secret())
        .env("STACKGATE_JWT_SECRET", jwt_secret)
        .env("STACKGATE_HEALTH_MONITOR", "false")
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| default_log_level.into()),
        );
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut server = ChildGuard::spawn(name, cmd, log)?;
    let base = format!("127.0.0.1:{port}");
    server
        .wait_ready(
            &format!("http://{base}/readyz"),
            None,
            Duration::from_secs(60),
        )
        .await?;
    Ok((server, base))
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// The benches' `main`

/// Runs a bench: exit code 2 for bad arguments; otherwise `run` on a 2-thread runtime, stopped
/// by Ctrl-C or SIGTERM (leaving `run` drops its guards, which stop the servers and PostgreSQL);
/// `Ok(false)` (a failed check or a missed target) and errors exit with 1.
pub fn main<O, F, Fut>(options: anyhow::Result<O>, run: F) -> std::process::ExitCode
where
    F: FnOnce(O) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    use std::process::ExitCode;
    let options = match options {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run(options) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow!("terminated")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("a check failed or a target was missed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

/// Walks the bench's arguments (`--flag value` or `--flag=value`): `each(flag, value)` for every
/// flag, where `value()` takes the flag's value. `cargo bench`'s own `--bench` is skipped, and
/// `-h`/`--help` prints `usage` and exits.
pub fn parse_flags(
    usage: &str,
    mut each: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            // `cargo bench` appends `--bench` to the arguments of a harness-less bench.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            _ => {
                let mut value = || -> anyhow::Result<String> {
                    inline
                        .clone()
                        .or_else(|| args.next())
                        .ok_or_else(|| anyhow!("{flag} needs a value"))
                };
                each(&flag, &mut value)?;
            }
        }
    }
    Ok(())
}
