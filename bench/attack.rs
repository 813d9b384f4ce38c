//! The mixed attack run: rows C–F of the hardening review, in parallel, against `stackgate serve`
//! as its own process, bounded in time; meanwhile `/healthz` is probed every 20 ms and the
//! server's RSS sampled every 100 ms. Reports `/healthz` latency percentiles, RSS before, at
//! peak and after (once the attack has stopped and the server idled a few seconds), and what each
//! attack got back. Targets: `/healthz` p99 ≤ 50 ms, peak RSS ≤ 256 MB, RSS after within 20% of
//! before. Everything goes to 127.0.0.1; the run stops by itself.
//!
//! `cargo bench --bench attack -- --help`

mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use support::BenchDatabase;

const USAGE: &str = "\
usage: cargo bench --bench attack -- [options]

  --seconds S     how long the attacks run (default 20)
  --workers N     concurrent tasks per attack (default 4)

Rows: C (unauthenticated POSTs, each with a new operationName), D (WebSocket messages of up to
the body limit before connection_init, and 30 MB ones), E (2^26-step fragment bombs, with and
without a token), F (nodes(ids:) with 5,000 ids, and 100 ids × resources(first: 500)).
DATABASE_URL (a superuser URL) selects an existing database; otherwise a private PostgreSQL
cluster is started under /tmp and removed at the end.";

#[derive(Clone, Debug)]
struct Options {
    seconds: f64,
    workers: usize,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        seconds: 20.0,
        workers: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--seconds" => {
                o.seconds = args
                    .next()
                    .ok_or_else(|| anyhow!("--seconds needs a value"))?
                    .parse()
                    .context("--seconds")?;
            }
            "--workers" => {
                o.workers = args
                    .next()
                    .ok_or_else(|| anyhow!("--workers needs a value"))?
                    .parse()
                    .context("--workers")?;
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if !(1.0..=600.0).contains(&o.seconds) || !(1..=64).contains(&o.workers) {
        bail!("--seconds must be in [1, 600] and --workers in [1, 64]");
    }
    Ok(o)
}

fn main() -> ExitCode {
    support::main(parse_args(), run)
}

/// What each attack got back: outcome → count.
type Tally = Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>;

fn count(tally: &Tally, attack: &str, outcome: impl Into<String>) {
    if let Ok(mut t) = tally.lock() {
        *t.entry(attack.to_owned())
            .or_default()
            .entry(outcome.into())
            .or_default() += 1;
    }
}

async fn run(o: Options) -> anyhow::Result<bool> {
    let logs = std::env::temp_dir().join(format!("stackgate-bench-{}-logs", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let db = BenchDatabase::open().await?;
    let url = db.url.clone();
    stackgate::db::run_migrations(&url).await?;
    let mut conn = stackgate::db::connect_owner(&url).await?;
    stackgate::devkit::seed::seed(&mut conn, 1).await?;
    drop(conn);
    println!("database: {}; seeded scale 1", db.describe);

    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let keys = stackgate::auth::jwt::JwtKeys::hs256(&SecretString::from(secret.clone()));
    let token = keys.mint("org-0-owner", Some("org-0"), 3600)?;
    let (mut server, base) =
        support::serve(&url, &secret, &logs.join("stackgate.log"), "error").await?;
    let pid = server.pid().ok_or_else(|| anyhow!("no server pid"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let org = org_id(&client, &base, &token).await?;

    // Warm up (a few ordinary requests), then the resting RSS.
    for _ in 0..20 {
        post(
            &client,
            &base,
            Some(&token),
            json!({ "query": "{ viewer { organization { slug } } }" }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kb(pid).unwrap_or(0);

    let tally: Tally = Arc::default();
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let peak = Arc::new(Mutex::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline + Duration::from_secs(2) {
                if let (Some(now), Ok(mut p)) = (rss_kb(pid), peak.lock()) {
                    *p = (*p).max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let prober = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut latencies = vec![];
            while Instant::now() < deadline {
                let started = Instant::now();
                let ok = client
                    .get(format!("http://{base}/healthz"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                latencies.push((started.elapsed(), ok));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };

    let mut attacks = vec![];
    for worker in 0..o.workers {
        let ctx = Attack {
            client: client.clone(),
            base: base.clone(),
            token: token.clone(),
            org: org.clone(),
            tally: tally.clone(),
            deadline,
            worker,
        };
        attacks.push(tokio::spawn(ctx.clone().row_c()));
        attacks.push(tokio::spawn(ctx.clone().row_d()));
        attacks.push(tokio::spawn(ctx.clone().row_e()));
        attacks.push(tokio::spawn(ctx.row_f()));
    }
    for attack in attacks {
        let _ = attack.await;
    }
    let latencies = prober.await?;
    let _ = sampler.await;
    // Let the server idle, then its RSS again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kb(pid).unwrap_or(0);
    let peak = *peak.lock().map_err(|_| anyhow!("peak lock"))?;
    let metrics = client
        .get(format!("http://{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("stackgate_graphql_requests_total{"))
        .count();
    server.stop();

    let mut ms: Vec<f64> = latencies
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    let failed = latencies.iter().filter(|(_, ok)| !ok).count();
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 * p) as usize).min(ms.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "\nattacks for {:.0} s with {} tasks each:",
        o.seconds, o.workers
    );
    if let Ok(t) = tally.lock() {
        for (attack, outcomes) in t.iter() {
            let list: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            println!("  {attack}: {}", list.join(", "));
        }
    }
    println!(
        "\n/healthz: {} probes, {failed} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 ≤ 50 ms)",
        ms.len(),
        pct(0.5),
        pct(0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "server RSS: before {:.1} MB, peak {:.1} MB (target ≤ 256), after {:.1} MB ({:+.0}% of before; target within 20%)",
        mb(before),
        mb(peak),
        mb(after),
        (after as f64 / before.max(1) as f64 - 1.0) * 100.0
    );
    println!("request-count series in /metrics: {series}");
    let met = pct(0.99) <= 50.0
        && failed == 0
        && mb(peak) <= 256.0
        && (after as f64) <= before as f64 * 1.2;
    println!("targets {}", if met { "met" } else { "MISSED" });
    Ok(met)
}

#[derive(Clone)]
struct Attack {
    client: reqwest::Client,
    base: String,
    token: String,
    org: Value,
    tally: Tally,
    deadline: Instant,
    worker: usize,
}

impl Attack {
    /// Row C: unauthenticated POSTs, each with a new operation name.
    async fn row_c(self) {
        let mut n = 0u64;
        while Instant::now() < self.deadline {
            n += 1;
            let name = format!("C{}x{n}x{}", self.worker, Uuid::new_v4().simple());
            let body =
                json!({ "query": format!("query {name} {{ __typename }}"), "operationName": name });
            let outcome = post(&self.client, &self.base, None, body).await;
            count(&self.tally, "C unauthenticated names", outcome);
        }
    }

    /// Row D: big messages before `connection_init` (the body limit, then 30 MB).
    async fn row_d(self) {
        let big = "a".repeat(1024 * 1024 - 64);
        let huge = "a".repeat(30 * 1024 * 1024);
        let mut round = 0u64;
        while Instant::now() < self.deadline {
            round += 1;
            let payload = if round.is_multiple_of(4) { &huge } else { &big };
            let outcome = match ws(&self.base).await {
                Err(_) => "connect refused".to_owned(),
                Ok(mut socket) => {
                    let message = format!(
                        "{{\"type\":\"connection_init\",\"payload\":{{\"x\":\"{payload}\"}}}}"
                    );
                    let _ = socket.send(Message::text(message)).await;
                    match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                        Ok(Some(Ok(Message::Close(frame)))) => {
                            format!("closed {}", frame.map(|f| u16::from(f.code)).unwrap_or(0))
                        }
                        Ok(Some(Ok(_))) => "answered".to_owned(),
                        Ok(Some(Err(_)) | None) => "dropped".to_owned(),
                        Err(_) => "no answer in 5 s".to_owned(),
                    }
                }
            };
            count(&self.tally, "D big pre-init messages", outcome);
        }
    }

    /// Row E: fragment bombs, with and without a token.
    async fn row_e(self) {
        let bomb = fragment_bomb(26);
        let mut n = 0u64;
        while Instant::now() < self.deadline {
            n += 1;
            let token = n.is_multiple_of(2).then_some(self.token.as_str());
            let outcome = post(&self.client, &self.base, token, json!({ "query": bomb })).await;
            count(&self.tally, "E fragment bombs", outcome);
        }
    }

    /// Row F: `nodes` with 5,000 repeated ids, and 100 ids × `resources(first: 500)`.
    async fn row_f(self) {
        let wide = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Organization { resources(first: 500) { nodes { id name } } } } }";
        let mut n = 0u64;
        while Instant::now() < self.deadline {
            n += 1;
            let ids = if n.is_multiple_of(2) { 5000 } else { 100 };
            let body =
                json!({ "query": wide, "variables": { "ids": vec![self.org.clone(); ids] } });
            let outcome = post(&self.client, &self.base, Some(&self.token), body).await;
            count(&self.tally, "F nodes amplification", outcome);
        }
    }
}

/// POSTs a GraphQL body; returns `<status> <first error code or ok>`.
async fn post(client: &reqwest::Client, base: &str, token: Option<&str>, body: Value) -> String {
    let mut request = client.post(format!("http://{base}/graphql")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let Ok(response) = request.send().await else {
        return "transport error".to_owned();
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("ok");
    format!("{status} {code}")
}

async fn ws(
    base: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = format!("ws://{base}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

async fn org_id(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<Value> {
    let body: Value = client
        .post(format!("http://{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ viewer { organization { id } } }" }))
        .send()
        .await?
        .json()
        .await?;
    let id = body["data"]["viewer"]["organization"]["id"].clone();
    if !id.is_string() {
        bail!("no organization id: {body}");
    }
    Ok(id)
}

/// `levels` fragments, each spreading the next twice (the 2 KB document of row E).
fn fragment_bomb(levels: usize) -> String {
    let mut q = String::from("query Bomb { ...A0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment A{i} on Query {{ viewer {{ user {{ id }} }} ...A{n} ...B{n} }}\n\
             fragment B{i} on Query {{ __typename ...A{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!(
        "fragment A{levels} on Query {{ __typename }}\nfragment B{levels} on Query {{ __typename }}\n"
    ));
    q
}

/// A process's resident set in KiB.
fn rss_kb(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
