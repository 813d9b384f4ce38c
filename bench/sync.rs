//! The sync benchmark (issue 5): a fake DigitalOcean account of `--resources` resources, synced
//! once from scratch and then again with nothing changed.
//!
//! ```sh
//! cargo bench --bench sync -- [--resources 100000] [--page-size 200] [--changed 0]
//! ```
//!
//! 1. PostgreSQL: `DATABASE_URL` when set, else a throwaway private cluster under /tmp (fsync
//!    off), removed when this process exits. Migrated; one organization `sync-bench`.
//! 2. A fake DigitalOcean ([`FakeProvider`], in this process, on 127.0.0.1) holding the resources
//!    split evenly over droplets, apps, domains and database clusters, serving at most
//!    `--page-size` items per page; one dock whose endpoint is the fake.
//! 3. Each run goes through the scheduler exactly as `serve` does: `Scheduler::tick` claims the
//!    due dock with a lease and the engine runs it (fetch every page, then one apply
//!    transaction). Between runs the dock is made due again by moving `last_sync_at` back.
//! 4. Printed per run: fetch and apply time (from the engine's report), the wall time from the
//!    claim to the run's end, rows created/updated/deleted/unchanged, pages, and this process's
//!    peak RSS during the run (the fake server's memory included: it runs in this process).
//! 5. The re-sync must report 0 created, 0 updated and 0 deleted, and no resource row may carry
//!    a transaction id newer than the re-sync's start (`xmin`): nothing was rewritten. With
//!    `--changed K`, a third run renames K droplets and must update exactly K rows.
//!
//! Exit status: 0 when every check passed, 1 otherwise (the 15 s target is reported, not
//! enforced).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;
use stackgate::crypto::Keyring;
use stackgate::db::models::credentials::{self, NewDock};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Script};
use stackgate::sync::engine::{Engine, EngineConfig, RunReport};
use stackgate::sync::scheduler::{Scheduler, SchedulerConfig};
use stackgate::sync::{Kind, Registry};
use uuid::Uuid;

mod support;

use support::{BenchDatabase, peak_rss_kb, reset_peak_rss};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "dop_v1_bench_0123456789abcdef0123456789abcdef";
/// Issue 5's target for the first sync of 100,000 resources.
const TARGET: Duration = Duration::from_secs(15);
/// The whole bench gives up after this long.
const DEADLINE: Duration = Duration::from_secs(900);

const USAGE: &str = "\
usage: cargo bench --bench sync -- [options]

  --resources N   resources in the fake DigitalOcean account, split evenly over droplets,
                  apps, domains and database clusters (default 100000)
  --page-size N   most items the fake serves per page, 1 to 200 (default 200)
  --changed K     a third run after renaming K droplets, which must update exactly K (default 0)

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp (fsync off) and removed at the end.";

#[derive(Clone, Debug)]
struct Options {
    resources: usize,
    page_size: usize,
    changed: usize,
}

/// A flag's value as a whole number.
fn whole(flag: &str, value: String) -> anyhow::Result<usize> {
    value
        .parse()
        .with_context(|| format!("{flag}: a whole number"))
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        resources: 100_000,
        page_size: 200,
        changed: 0,
    };
    support::parse_flags(USAGE, |flag, value| {
        match flag {
            "--resources" => o.resources = whole(flag, value()?)?,
            "--page-size" => o.page_size = whole(flag, value()?)?,
            "--changed" => o.changed = whole(flag, value()?)?,
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
        Ok(())
    })?;
    if !(4..=2_000_000).contains(&o.resources) {
        bail!("--resources must be from 4 to 2000000");
    }
    if !(1..=200).contains(&o.page_size) {
        bail!("--page-size must be from 1 to 200 (DigitalOcean's largest page)");
    }
    if o.changed > o.resources / 4 {
        bail!("--changed must be at most the number of droplets (a quarter of --resources)");
    }
    Ok(o)
}

fn main() -> ExitCode {
    support::main(parse_args(), |o| async move {
        tokio::time::timeout(DEADLINE, run(o))
            .await
            .map_err(|_| anyhow!("gave up after {} s", DEADLINE.as_secs()))?
    })
}

/// One run's numbers.
struct Measured {
    report: RunReport,
    wall: Duration,
    peak_rss_kb: Option<u64>,
}

async fn run(o: Options) -> anyhow::Result<bool> {
    let db = BenchDatabase::open().await?;
    stackgate::db::run_migrations(&db.url).await?;
    let mut owner = stackgate::db::connect_owner(&db.url).await?;
    let org = stackgate::db::models::organization::ensure(&mut owner, "Sync bench", "sync-bench")
        .await?
        .id;

    // The fake account: an even split, the remainder to droplets.
    let quarter = o.resources / 4;
    let counts = [
        (Kind::Server, o.resources - 3 * quarter),
        (Kind::WebService, quarter),
        (Kind::Domain, quarter),
        (Kind::Database, quarter),
    ];
    let script = counts
        .iter()
        .fold(Script::new(TOKEN), |s, &(kind, n)| s.count(kind, n))
        .page_size(o.page_size);
    let script = Script {
        // Two or three full listings must stay within the advertised rate limit.
        rate_limit: u32::try_from(o.resources).unwrap_or(u32::MAX),
        ..script
    };
    let (endpoint, fake) = FakeProvider::start(FakeKind::DigitalOcean, script).await?;

    let keyring = Arc::new(Keyring::random("bench"));
    let key = SecretString::from(TOKEN.to_owned());
    let dock = credentials::create_dock(
        &mut owner,
        &keyring,
        &NewDock {
            org_id: org,
            name: &format!("fake-digitalocean-{}", Uuid::new_v4().simple()),
            provider: "digitalocean",
            api_key: &key,
            endpoint: Some(&endpoint),
            sync_interval_seconds: 3600,
        },
    )
    .await?;

    let pool = stackgate::db::build_pool(&db.url, 4)?;
    // The fake provider listens on 127.0.0.1.
    let config = EngineConfig {
        allow_private_endpoints: true,
        ..EngineConfig::default()
    };
    let engine = Engine::new(pool, keyring, Registry::default(), config);
    let scheduler = Scheduler::new(
        engine,
        SchedulerConfig {
            owner: format!("sync-bench:{}", std::process::id()),
            ..SchedulerConfig::default()
        },
    );
    println!(
        "database: {}; fake DigitalOcean at {endpoint}: {} resources ({}), {} per page",
        db.describe,
        o.resources,
        counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        o.page_size
    );

    let mut ok = true;
    let first = sync_once(&scheduler).await?;
    let stored = stored_rows(&mut owner, dock).await?;
    ok &= check(
        first.report.succeeded(),
        &format!("first sync succeeded ({:?})", first.report.error),
    );
    ok &= check(
        (first.report.counts.created, first.report.counts.updated) == (o.resources as i64, 0),
        &format!(
            "first sync created {} and updated {} (expected {} and 0)",
            first.report.counts.created, first.report.counts.updated, o.resources
        ),
    );
    ok &= check(
        stored == o.resources as i64,
        &format!("{stored} resource rows stored (expected {})", o.resources),
    );

    make_due(&mut owner, dock).await?;
    let before = current_xid(&mut owner).await?;
    let second = sync_once(&scheduler).await?;
    let rewritten = rows_written_since(&mut owner, dock, &before).await?;
    let c = second.report.counts;
    ok &= check(
        second.report.succeeded(),
        &format!("re-sync succeeded ({:?})", second.report.error),
    );
    ok &= check(
        (c.created, c.updated, c.deleted, c.unchanged) == (0, 0, 0, o.resources as i64),
        &format!(
            "re-sync reported created {}, updated {}, deleted {}, unchanged {} (expected 0, 0, 0, {})",
            c.created, c.updated, c.deleted, c.unchanged, o.resources
        ),
    );
    ok &= check(
        rewritten == 0,
        &format!("re-sync rewrote {rewritten} resource rows (by xmin; expected 0)"),
    );

    let mut runs = vec![("first sync", first), ("re-sync", second)];
    if o.changed > 0 {
        for position in 0..o.changed {
            fake.rename(
                Kind::Server,
                position,
                &format!("renamed-server-{position:06}"),
            );
        }
        make_due(&mut owner, dock).await?;
        let before = current_xid(&mut owner).await?;
        let third = sync_once(&scheduler).await?;
        let rewritten = rows_written_since(&mut owner, dock, &before).await?;
        let c = third.report.counts;
        ok &= check(
            (c.created, c.updated, c.deleted) == (0, o.changed as i64, 0),
            &format!(
                "changed re-sync reported created {}, updated {}, deleted {} (expected 0, {}, 0)",
                c.created, c.updated, c.deleted, o.changed
            ),
        );
        ok &= check(
            rewritten == o.changed as i64,
            &format!(
                "changed re-sync rewrote {rewritten} rows (by xmin; expected {})",
                o.changed
            ),
        );
        runs.push(("changed", third));
    }
    drop(fake);

    print_table(&runs);
    let total = runs[0].1.report.fetch_time + runs[0].1.report.apply_time;
    println!(
        "issue 5 target: {} resources fetched and applied in ≤ {} s: {:.2} s{}",
        o.resources,
        TARGET.as_secs(),
        total.as_secs_f64(),
        if o.resources != 100_000 {
            " (not the target's size)"
        } else if total <= TARGET {
            ": met"
        } else {
            ": NOT met"
        }
    );
    Ok(ok)
}

/// Claims the due dock through the scheduler and waits for its run.
async fn sync_once(scheduler: &Scheduler) -> anyhow::Result<Measured> {
    reset_peak_rss();
    let started = Instant::now();
    let mut tasks = scheduler.tick().await?;
    if tasks.len() != 1 {
        bail!(
            "the scheduler claimed {} docks, expected the bench's one",
            tasks.len()
        );
    }
    let report = tasks.remove(0).await??;
    Ok(Measured {
        report,
        wall: started.elapsed(),
        peak_rss_kb: peak_rss_kb(),
    })
}

fn check(passed: bool, what: &str) -> bool {
    println!("check: {what}: {}", if passed { "ok" } else { "FAILED" });
    passed
}

fn print_table(runs: &[(&str, Measured)]) {
    let row = |label: &str, f: &dyn Fn(&Measured) -> String| {
        let mut line = format!("{label:<24}");
        for (_, m) in runs {
            line.push_str(&format!("{:>14}", f(m)));
        }
        println!("{line}");
    };
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    let mut header = format!("{:<24}", "");
    for (name, _) in runs {
        header.push_str(&format!("{name:>14}"));
    }
    println!("{header}");
    row("fetch (ms)", &|m| ms(m.report.fetch_time));
    row("apply (ms)", &|m| ms(m.report.apply_time));
    row("fetch + apply (ms)", &|m| {
        ms(m.report.fetch_time + m.report.apply_time)
    });
    row("wall, claim to end (ms)", &|m| ms(m.wall));
    row("pages", &|m| m.report.counts.pages.to_string());
    row("requests", &|m| m.report.counts.requests.to_string());
    row("created", &|m| m.report.counts.created.to_string());
    row("updated", &|m| m.report.counts.updated.to_string());
    row("deleted", &|m| m.report.counts.deleted.to_string());
    row("unchanged", &|m| m.report.counts.unchanged.to_string());
    row("resources/s (total)", &|m| {
        let n = m.report.counts.created + m.report.counts.updated + m.report.counts.unchanged;
        let secs = (m.report.fetch_time + m.report.apply_time).as_secs_f64();
        format!("{:.0}", n as f64 / secs.max(1e-9))
    });
    row("peak RSS (MB)", &|m| {
        m.peak_rss_kb
            .map_or("n/a".into(), |kb| format!("{:.0}", kb as f64 / 1024.0))
    });
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct T {
    #[diesel(sql_type = Text)]
    t: String,
}

const ALL_ROWS: &str = "select xmin from servers where dock_id = $1 \
     union all select xmin from web_services where dock_id = $1 \
     union all select xmin from domains where dock_id = $1 \
     union all select xmin from databases where dock_id = $1";

async fn stored_rows(conn: &mut AsyncPgConnection, dock: Uuid) -> anyhow::Result<i64> {
    let sql = format!("select count(*) as n from ({ALL_ROWS}) r");
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dock)
        .get_result::<N>(conn)
        .await?
        .n)
}

/// The id of a transaction that began before the next run (32-bit, as `xmin` is).
async fn current_xid(conn: &mut AsyncPgConnection) -> anyhow::Result<String> {
    Ok(
        diesel::sql_query("select (pg_current_xact_id()::text::bigint % 4294967296)::text as t")
            .get_result::<T>(conn)
            .await?
            .t,
    )
}

/// Resource rows of the dock written by a transaction newer than `xid`.
async fn rows_written_since(
    conn: &mut AsyncPgConnection,
    dock: Uuid,
    xid: &str,
) -> anyhow::Result<i64> {
    let sql = format!("select count(*) as n from ({ALL_ROWS}) r where age(r.xmin) < age($2::xid)");
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dock)
        .bind::<Text, _>(xid)
        .get_result::<N>(conn)
        .await?
        .n)
}

/// Moves the dock's last sync back past its interval, so the next tick claims it.
async fn make_due(conn: &mut AsyncPgConnection, dock: Uuid) -> anyhow::Result<()> {
    diesel::sql_query(
        "update docks set last_sync_at = now() - interval '1 day', backoff_until = null where id = $1",
    )
    .bind::<SqlUuid, _>(dock)
    .execute(conn)
    .await?;
    Ok(())
}
