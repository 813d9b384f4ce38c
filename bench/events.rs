//! Live-event latency (issue 5's target): from the commit of a transaction that publishes a sync
//! event to its delivery on every one of 1,000 WebSocket subscribers, p99 ≤ 50 ms.
//!
//! `cargo bench --bench events` (options: `-- --help`) seeds a database, starts `stackgate serve`
//! as its own process, opens N `graphql-transport-ws` connections that each subscribe to
//! `dockSyncStatus` of one seeded dock, and then commits M transactions, each updating the dock
//! and publishing a `PAGE` event into the outbox (as the sync engine does; the server's relay
//! NOTIFYs it), one every interval.
//! Each event carries its sequence number in `itemsFetched`; every subscriber stamps when it
//! receives it. The latency of a delivery is its receipt time minus the instant the publishing
//! transaction's COMMIT returned. The subscribers run in this process on the same 2 cores as the
//! server and PostgreSQL, so the numbers include their share of the machine.
//!
//! `--nats` carries events over NATS JetStream instead (`STACKGATE_EVENT_BUS=nats://…`, a private
//! `nats-server -js` on 127.0.0.1 with a temporary store; target p99 ≤ 100 ms), and `--replicas N`
//! starts N `serve` processes on the same database, the subscribers spread over them round-robin.

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::QueryableByName;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use stackgate::events::{Phase, SyncEvent};
use tokio::sync::{Barrier, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use support::{BenchDatabase, CLOCK_TICKS, CpuSnapshot, local_postmaster};

const USAGE: &str = "\
cargo bench --bench events -- [options]

  --subscribers N   WebSocket subscribers (default 1000)
  --events M        events published and measured (default 50)
  --interval-ms T   milliseconds between published events (default 100)
  --replicas R      `stackgate serve` processes, subscribers spread over them (default 1)
  --nats            carry events over a private NATS JetStream server (/usr/sbin/nats-server)

DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

/// The target: p99 from commit to delivery.
const TARGET_P99_MS: f64 = 50.0;
/// The target over NATS JetStream (one more hop, and a replica per WebSocket share).
const TARGET_P99_NATS_MS: f64 = 100.0;
/// Where Debian's `nats-server` package puts the server.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

const SUBSCRIPTION: &str =
    "subscription($id: ID!) { dockSyncStatus(dockId: $id) { phase itemsFetched at } }";

#[derive(Clone, Debug)]
struct Options {
    subscribers: usize,
    events: usize,
    interval: Duration,
    replicas: usize,
    nats: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        subscribers: 1000,
        events: 50,
        interval: Duration::from_millis(100),
        replicas: 1,
        nats: false,
    };
    support::parse_flags(USAGE, |flag, value| {
        match flag {
            "--replicas" => o.replicas = value()?.parse().context("--replicas")?,
            "--nats" => o.nats = true,
            "--subscribers" => o.subscribers = value()?.parse().context("--subscribers")?,
            "--events" => o.events = value()?.parse().context("--events")?,
            "--interval-ms" => {
                o.interval = Duration::from_millis(value()?.parse().context("--interval-ms")?);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
        Ok(())
    })?;
    if !(1..=5).contains(&o.replicas) {
        bail!("--replicas must be from 1 to 5");
    }
    if !(1..=5000).contains(&o.subscribers) {
        bail!("--subscribers must be from 1 to 5000");
    }
    if !(1..=10_000).contains(&o.events) {
        bail!("--events must be from 1 to 10000");
    }
    if o.interval > Duration::from_secs(10) {
        bail!("--interval-ms must be at most 10000");
    }
    Ok(o)
}

fn main() -> ExitCode {
    support::main(parse_args(), run)
}

#[derive(QueryableByName)]
struct DockRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    org_id: Uuid,
}

/// What one subscriber saw: for each event's sequence number, when it arrived.
type Receipts = Vec<(usize, Instant)>;

async fn run(o: Options) -> anyhow::Result<bool> {
    let logs = std::env::temp_dir().join(format!("stackgate-bench-{}-logs", std::process::id()));
    std::fs::create_dir_all(&logs)?;

    // 1. The database: seeded, with every dock's next sync a day away (nothing but us publishes).
    let db = BenchDatabase::open().await?;
    let url = db.url.clone();
    stackgate::db::run_migrations(&url).await?;
    let mut conn = stackgate::db::connect_owner(&url).await?;
    stackgate::devkit::seed::seed(&mut conn, 1).await?;
    conn.batch_execute("update docks set last_sync_at = now(), sync_interval_seconds = 86400")
        .await?;
    let dock: DockRow = diesel::sql_query(
        "select d.id, d.org_id from docks d join organizations o on o.id = d.org_id \
          where o.slug = 'org-0' and d.deleted_at is null order by d.name limit 1",
    )
    .get_result(&mut conn)
    .await
    .context("a seeded dock of org-0")?;
    let postmaster = match db.postmaster {
        Some(pid) => Some(pid),
        None => local_postmaster(&mut conn).await,
    };
    println!("database: {}; seeded scale 1", db.describe);

    // 2. stackgate, as its own process.
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let token = stackgate::auth::jwt::JwtKeys::hs256(&SecretString::from(secret.clone())).mint(
        "org-0-owner",
        Some("org-0"),
        3600,
    )?;
    // Every subscriber is the same user, and all connect at once: the per-principal socket and
    // operation budgets, and the pending-handshake budget, must fit them all.
    let budget = [
        (
            "STACKGATE_WS_MAX_PER_PRINCIPAL",
            (o.subscribers + 8).to_string(),
        ),
        ("STACKGATE_WS_MAX_PENDING", (o.subscribers + 8).to_string()),
        ("STACKGATE_RATE_PER_PRINCIPAL", "1000000/s".to_owned()),
    ];
    // With --nats, a private JetStream server first.
    let mut env = budget.to_vec();
    let nats = match o.nats {
        true => {
            let (guard, nats_url) = start_nats(&logs).await?;
            env.push(("STACKGATE_EVENT_BUS", nats_url));
            Some(guard)
        }
        false => None,
    };
    let mut servers = Vec::with_capacity(o.replicas);
    for n in 0..o.replicas {
        servers.push(
            support::serve_with(
                "stackgate",
                &url,
                &secret,
                &logs.join(format!("stackgate-{n}.log")),
                "warn",
                &env,
            )
            .await?,
        );
    }
    println!(
        "{} replica(s), events over {}",
        o.replicas,
        if o.nats {
            "NATS JetStream"
        } else {
            "PostgreSQL NOTIFY"
        }
    );

    // 3. The subscribers: connected, acknowledged and subscribed before anything is measured.
    let opened = Instant::now();
    let ready = Arc::new(Barrier::new(o.subscribers + 1));
    let (warm_tx, mut warm_rx) = mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::with_capacity(o.subscribers);
    let gid = stackgate::graphql::ids::encode("Dock", dock.id).0;
    for n in 0..o.subscribers {
        let base = &servers[n % servers.len()].1;
        let ws = format!("ws://{base}/graphql/ws");
        let (token, gid, ready, warm) =
            (token.clone(), gid.clone(), ready.clone(), warm_tx.clone());
        let events = o.events;
        tasks.push(tokio::spawn(async move {
            subscriber(&ws, &token, &gid, ready, warm, events).await
        }));
    }
    drop(warm_tx);
    tokio::time::timeout(Duration::from_secs(120), ready.wait())
        .await
        .map_err(|_| anyhow!("subscribers did not connect within 120 s"))?;
    println!(
        "{} subscribers connected in {:.1} s",
        o.subscribers,
        opened.elapsed().as_secs_f64()
    );

    // 4. Warm-up events (sequence 0) until every subscriber has received one: from then on each
    //    is surely subscribed on the server.
    let mut publisher = AsyncPgConnection::establish(url.expose_secret()).await?;
    let mut warmed = 0usize;
    let warm_deadline = Instant::now() + Duration::from_secs(60);
    while warmed < o.subscribers {
        if Instant::now() > warm_deadline {
            bail!(
                "only {warmed} of {} subscribers received the warm-up event",
                o.subscribers
            );
        }
        publish(&mut publisher, &dock, 0).await?;
        let until = tokio::time::sleep(Duration::from_millis(250));
        tokio::pin!(until);
        loop {
            tokio::select! {
                got = warm_rx.recv() => match got {
                    Some(()) => warmed += 1,
                    None => bail!("subscribers ended during the warm-up"),
                },
                () = &mut until => break,
            }
            if warmed == o.subscribers {
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 5. The measured events.
    let cpu_before = CpuSnapshot::take(servers[0].0.pid(), postmaster);
    let mut committed = Vec::with_capacity(o.events);
    for seq in 1..=o.events {
        let at = publish(&mut publisher, &dock, seq).await?;
        committed.push(at);
        tokio::time::sleep(o.interval).await;
    }
    let mut latencies = Vec::with_capacity(o.events * o.subscribers);
    let mut missing = 0usize;
    for task in tasks {
        let receipts = match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(joined) => joined.context("a subscriber panicked")??,
            Err(_) => bail!("a subscriber did not receive every event within 30 s"),
        };
        missing += o.events.saturating_sub(receipts.len());
        for (seq, at) in receipts {
            if let Some(committed) = committed.get(seq - 1) {
                latencies.push(at.saturating_duration_since(*committed).as_secs_f64() * 1000.0);
            }
        }
    }
    let cpu_after = CpuSnapshot::take(servers[0].0.pid(), postmaster);
    for (server, _) in &mut servers {
        server.stop();
    }
    drop(nats);

    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    if latencies.is_empty() {
        bail!("no deliveries measured");
    }
    let p99 = pct(0.99);
    println!(
        "\n{} events × {} subscribers = {} deliveries ({} missing), one event every {} ms",
        o.events,
        o.subscribers,
        latencies.len(),
        missing,
        o.interval.as_millis()
    );
    println!(
        "commit → delivery:  p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        pct(0.50),
        pct(0.90),
        p99,
        latencies[latencies.len() - 1]
    );
    let per_delivery = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.1} µs",
            b.saturating_sub(a) as f64 / CLOCK_TICKS * 1e6 / (o.events * o.subscribers) as f64
        ),
        _ => "n/a".to_owned(),
    };
    println!(
        "CPU per delivery:   server {}   PostgreSQL {}   subscribers (this process) {}",
        per_delivery(cpu_before.server, cpu_after.server),
        per_delivery(cpu_before.postgres, cpu_after.postgres),
        per_delivery(Some(cpu_before.me), Some(cpu_after.me)),
    );
    let target = if o.nats {
        TARGET_P99_NATS_MS
    } else {
        TARGET_P99_MS
    };
    let met = p99 <= target && missing == 0;
    println!(
        "target p99 ≤ {target} ms with every event delivered: {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(met)
}

/// Starts `nats-server -js` on 127.0.0.1 (a free port, a store under `logs`); returns it and its
/// URL once it accepts connections.
async fn start_nats(logs: &std::path::Path) -> anyhow::Result<(support::ChildGuard, String)> {
    if !std::path::Path::new(NATS_SERVER).exists() {
        bail!("{NATS_SERVER} is missing: install Debian's `nats-server` (tests/setup.sh does)");
    }
    let port = support::free_port()?;
    let mut cmd = std::process::Command::new(NATS_SERVER);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(logs.join("nats-store"));
    let guard = support::ChildGuard::spawn("nats-server", cmd, &logs.join("nats-server.log"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("nats-server did not accept connections within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((guard, format!("nats://127.0.0.1:{port}")))
}

/// Commits one transaction that touches the dock and publishes a `PAGE` event numbered `seq`;
/// returns when its COMMIT returned.
async fn publish(
    conn: &mut AsyncPgConnection,
    dock: &DockRow,
    seq: usize,
) -> anyhow::Result<Instant> {
    let mut event = SyncEvent::new(dock.org_id, dock.id, None, Phase::Page);
    event.items = Some(i64::try_from(seq)?);
    let payload = event.to_payload();
    conn.batch_execute("begin").await?;
    diesel::sql_query("update docks set updated_at = now() where id = $1")
        .bind::<SqlUuid, _>(dock.id)
        .execute(conn)
        .await?;
    diesel::sql_query("select stackgate_publish($1, $2)::text")
        .bind::<SqlUuid, _>(dock.org_id)
        .bind::<Text, _>(&payload)
        .execute(conn)
        .await?;
    conn.batch_execute("commit").await?;
    Ok(Instant::now())
}

/// One subscriber: connects, subscribes, says when it is ready and when the warm-up event came,
/// then stamps every measured event until it has `events` of them.
async fn subscriber(
    ws: &str,
    token: &str,
    dock: &str,
    ready: Arc<Barrier>,
    warm: mpsc::UnboundedSender<()>,
    events: usize,
) -> anyhow::Result<Receipts> {
    let mut request = ws.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // A small read buffer: tungstenite zero-fills all of it on every read (see src/http/ws.rs).
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => break,
            Some(Ok(Message::Text(t))) if t.contains("\"ka\"") || t.contains("ping") => {}
            Some(Ok(other)) => bail!("expected connection_ack, got {other:?}"),
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before connection_ack"),
        }
    }
    let subscribe = json!({ "id": "1", "type": "subscribe",
        "payload": { "query": SUBSCRIPTION, "variables": { "id": dock } } });
    socket.send(Message::text(subscribe.to_string())).await?;
    ready.wait().await;
    let mut receipts = Vec::with_capacity(events);
    let mut warmed = false;
    while receipts.len() < events {
        let message = match socket.next().await {
            Some(m) => m?,
            None => bail!("the server closed a subscription"),
        };
        let at = Instant::now();
        let Message::Text(text) = message else {
            continue;
        };
        let Some(seq) = items_fetched(&text) else {
            if text.contains("\"errors\"") || text.contains("\"error\"") {
                bail!("subscription error: {text}");
            }
            continue;
        };
        if seq == 0 {
            if !warmed {
                warmed = true;
                let _ = warm.send(());
            }
        } else {
            receipts.push((seq, at));
        }
    }
    let _ = socket.close(None).await;
    Ok(receipts)
}

/// The `itemsFetched` number of a `next` message, read without parsing the whole document.
fn items_fetched(text: &str) -> Option<usize> {
    let rest = &text[text.find("\"itemsFetched\":")? + "\"itemsFetched\":".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
