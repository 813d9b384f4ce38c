//! Notifying commits (issue 13's target): writers that commit a row change with an event, through
//! the outbox and its relay versus direct `pg_notify`, with 1 and 3 listening connections (one per
//! replica). Target: the outbox at least 3× the commits per second at an equal or better p99.
//!
//! `cargo bench --bench outbox` (options: `-- --help`) starts a private PostgreSQL (or uses
//! DATABASE_URL), migrates it, and for each listener count runs both modes, alternating, for a
//! fixed time each: W writer connections each commit `begin; update its row; publish; commit` in
//! a loop (each writer its own row, so only the event path is shared). `direct` publishes with
//! `pg_notify` as writers did before the outbox; `outbox` calls `stackgate_publish` while a
//! relay (the library's, as `serve` runs it) publishes. Listeners drain their notifications; the
//! run checks that every committed event reached every listener. Commit latency is measured from
//! `begin` to the return of `commit`. The private cluster starts with `fsync = on` and
//! `synchronous_commit = on` unless `--fsync off`, and the header prints what the server reads
//! back: the notify lock is held across the commit's WAL flush, which is what serializes
//! notifying commits, so the ratio depends on how long a flush takes. This machine's disk
//! flushes in about 0.3 ms; `--flush-ms F` makes each flush wait F ms (`commit_delay`), as a
//! disk or network volume whose flush takes that long would.

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::sql_types::{Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use stackgate::devkit::embedded::Durability;
use stackgate::events::settings::EventSettings;
use stackgate::events::{CHANNEL, Relay};
use uuid::Uuid;

use support::BenchDatabase;

const USAGE: &str = "\
cargo bench --bench outbox -- [options]

  --writers W       concurrent writer connections (default 16)
  --seconds S       seconds each mode runs per listener count (default 5, at most 60)
  --rounds R        alternations of the two modes per listener count (default 2, at most 5)
  --fsync on|off    the private cluster's durability (default on)
  --flush-ms F      the private cluster waits F ms (0-100) before each WAL flush (commit_delay,
                    commit_siblings = 0): a disk whose flush takes that long, as network storage's
                    does (this machine's takes about 0.3 ms; default 0)

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

/// The target: outbox commits per second over direct ones.
const TARGET_RATIO: f64 = 3.0;

#[derive(Clone, Debug)]
struct Options {
    writers: usize,
    seconds: u64,
    rounds: usize,
    fsync: bool,
    flush_ms: f64,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        writers: 16,
        seconds: 5,
        rounds: 2,
        fsync: true,
        flush_ms: 0.0,
    };
    support::parse_flags(USAGE, |flag, value| {
        match flag {
            "--writers" => o.writers = value()?.parse().context("--writers")?,
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--rounds" => o.rounds = value()?.parse().context("--rounds")?,
            "--fsync" => {
                o.fsync = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => bail!("--fsync takes on or off, not {other}"),
                }
            }
            "--flush-ms" => o.flush_ms = value()?.parse().context("--flush-ms")?,
            other => bail!("unknown option {other}\n\n{USAGE}"),
        }
        Ok(())
    })?;
    if !(1..=200).contains(&o.writers) || !(1..=60).contains(&o.seconds) {
        bail!("--writers must be 1-200 and --seconds 1-60");
    }
    if !(1..=5).contains(&o.rounds) {
        bail!("--rounds must be 1-5");
    }
    if !(0.0..=100.0).contains(&o.flush_ms) || (o.flush_ms > 0.0 && !o.fsync) {
        bail!("--flush-ms must be 0-100, with --fsync on");
    }
    Ok(o)
}

/// A server setting's current value, as the connection's session sees it.
async fn setting(conn: &mut AsyncPgConnection, name: &str) -> anyhow::Result<String> {
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let row: Value = diesel::sql_query("select current_setting($1) as value")
        .bind::<Text, _>(name)
        .get_result(conn)
        .await
        .with_context(|| format!("reading {name}"))?;
    Ok(row.value)
}

fn main() -> ExitCode {
    support::main(parse_args(), run)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Direct,
    Outbox,
}

/// One measured run.
#[derive(Default)]
struct Outcome {
    commits: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len().max(1)) - 1;
        l.get(i).copied().unwrap_or_default() as f64 / 1000.0
    }

    fn add(&mut self, other: Outcome) {
        self.commits += other.commits;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
    }
}

async fn run(o: Options) -> anyhow::Result<bool> {
    // The cluster starts durable (fsync and synchronous commit on): a throwaway one's command
    // line turns both off, and no later setting can turn fsync back on.
    let (db, mut conn, _) = BenchDatabase::migrated_with(Durability {
        ephemeral: !o.fsync,
    })
    .await?;
    if o.flush_ms > 0.0 {
        if db.describe == "DATABASE_URL" {
            bail!("--flush-ms changes the cluster's settings: only on the private cluster");
        }
        // The flush leader sleeps this long with the WAL write lock held; a notifying commit
        // also holds the notify lock across it, so direct commits flush one at a time while
        // the outbox's writers flush together (group commit).
        let micros = (o.flush_ms * 1000.0).round() as u64;
        for statement in [
            format!("alter system set commit_delay = {micros}"),
            "alter system set commit_siblings = 0".to_owned(),
            "select pg_reload_conf()".to_owned(),
        ] {
            conn.batch_execute(&statement).await?;
        }
    }
    conn.batch_execute(&format!(
        "drop table if exists bench_outbox_rows;
         create table bench_outbox_rows (id integer primary key, n bigint not null default 0);
         insert into bench_outbox_rows (id) select g from generate_series(1, {}) g;
         grant select, update on bench_outbox_rows to stackgate_app;",
        o.writers
    ))
    .await?;
    // What the server runs with, read back (not what was asked for).
    println!(
        "database: {} (fsync {}, synchronous_commit {}, commit_delay {} µs){}; {} writers, {} s per mode and round, {} rounds",
        db.describe,
        setting(&mut conn, "fsync").await?,
        setting(&mut conn, "synchronous_commit").await?,
        setting(&mut conn, "commit_delay").await?,
        if o.flush_ms > 0.0 {
            format!(", {} ms before each WAL flush", o.flush_ms)
        } else {
            String::new()
        },
        o.writers,
        o.seconds,
        o.rounds
    );
    println!(
        "{:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "listeners", "mode", "commits/s", "p50 ms", "p99 ms", "delivered"
    );
    let mut met = true;
    for listeners in [1usize, 3] {
        let mut totals = [Outcome::default(), Outcome::default()];
        for _ in 0..o.rounds {
            for (i, mode) in [Mode::Direct, Mode::Outbox].into_iter().enumerate() {
                let (outcome, delivered) = measure(&db, &o, mode, listeners).await?;
                println!(
                    "{listeners:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9}",
                    format!("{mode:?}").to_lowercase(),
                    outcome.rate(),
                    outcome.percentile_ms(0.5),
                    outcome.percentile_ms(0.99),
                    if delivered { "all" } else { "MISSING" }
                );
                met &= delivered;
                totals[i].add(outcome);
            }
        }
        let [direct, outbox] = totals;
        let ratio = outbox.rate() / direct.rate();
        println!(
            "{listeners} listener(s): direct {:.0}/s p99 {:.2} ms; outbox {:.0}/s p99 {:.2} ms; \
             ratio {ratio:.2}× (target ≥ {TARGET_RATIO}× at an equal or lower p99: {})",
            direct.rate(),
            direct.percentile_ms(0.99),
            outbox.rate(),
            outbox.percentile_ms(0.99),
            if ratio >= TARGET_RATIO && outbox.percentile_ms(0.99) <= direct.percentile_ms(0.99) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    Ok(met)
}

/// One run of `mode` with `listeners` LISTEN connections: the writers' outcome, and whether
/// every listener received every committed event.
async fn measure(
    db: &BenchDatabase,
    o: &Options,
    mode: Mode,
    listeners: usize,
) -> anyhow::Result<(Outcome, bool)> {
    let url = db.url.expose_secret().to_owned();
    let tag = Uuid::new_v4().simple().to_string();
    // Listeners, each counting this run's events.
    let mut counters = Vec::new();
    let mut listening = Vec::new();
    for _ in 0..listeners {
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let tag = tag.clone();
        listening.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(conn.notifications_stream());
            while let Some(Ok(n)) = stream.next().await {
                if n.payload.contains(&tag) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        counters.push(count);
    }
    let relay = (mode == Mode::Outbox).then(|| {
        Relay::new(
            db.url.clone(),
            EventSettings {
                poll: Duration::from_millis(20),
                ..EventSettings::default()
            },
        )
        .spawn()
    });
    if let Some(relay) = &relay
        && !relay.wait_holding(Duration::from_secs(10)).await
    {
        bail!("the relay did not take the lease");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..o.writers {
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute("set synchronous_commit = on").await?;
        let stop = stop.clone();
        let tag = tag.clone();
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let org = Uuid::new_v4();
            let id = i32::try_from(w + 1).unwrap_or(1);
            while !AtomicBool::load(&stop, Ordering::Relaxed) {
                let payload = format!(
                    r#"{{"type":"change","org_id":"{org}","table":"bench_{tag}","id":"{}"}}"#,
                    Uuid::new_v4()
                );
                let began = Instant::now();
                commit(&mut conn, mode, id, org, &payload).await?;
                latencies.push(began.elapsed().as_micros() as u64);
            }
            anyhow::Ok(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcome = Outcome::default();
    for writer in writers {
        let latencies = writer.await??;
        outcome.commits += latencies.len() as u64;
        outcome.latencies_us.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    // Every event reaches every listener (the relay drains the outbox first), within 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let all = counters
            .iter()
            .all(|c| AtomicU64::load(c, Ordering::Relaxed) >= outcome.commits);
        if all || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Some(relay) = relay {
        relay.stop().await;
    }
    for l in listening {
        l.abort();
    }
    Ok((outcome, delivered))
}

/// One notifying commit.
async fn commit(
    conn: &mut AsyncPgConnection,
    mode: Mode,
    id: i32,
    org: Uuid,
    payload: &str,
) -> anyhow::Result<()> {
    conn.batch_execute("begin").await?;
    diesel::sql_query("update bench_outbox_rows set n = n + 1 where id = $1")
        .bind::<Integer, _>(id)
        .execute(conn)
        .await?;
    match mode {
        Mode::Direct => {
            diesel::sql_query("select pg_notify($1, $2)::text")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(payload)
                .execute(conn)
                .await?
        }
        Mode::Outbox => {
            diesel::sql_query("select stackgate_publish($1, $2)::text")
                .bind::<SqlUuid, _>(org)
                .bind::<Text, _>(payload)
                .execute(conn)
                .await?
        }
    };
    conn.batch_execute("commit").await?;
    Ok(())
}
