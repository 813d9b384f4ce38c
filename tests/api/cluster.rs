//! The local cluster (`deploy/local/cluster.sh`), driven as a client sees it: a primary, a
//! streaming standby, three `stackgate serve` replicas (the built binary) and haproxy in front,
//! all on 127.0.0.1 and stopped by the script's own watchdog even if this test dies.
//!
//! Through haproxy alone: writes land on whichever replica haproxy picks, each read that carries
//! the write's position sees it, a live query held on one replica is pushed the writes committed
//! through the others, and every replica and the standby serve. Then the faults: a replica
//! SIGKILLed (haproxy routes around it, no client sees an error) and the standby stopped (reads
//! fall back to the primary, no client sees an error).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use rand::Rng;
use secrecy::SecretString;
use serde_json::{Value, json};
use stackgate::auth::jwt::JwtKeys;

use crate::harness::wait;
use crate::harness::ws::Ws;

const BIN: &str = env!("CARGO_BIN_EXE_stackgate");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local/cluster.sh");
/// How long the cluster may live: the script's watchdog stops it after this, whatever happens.
const LIFETIME_SECONDS: u32 = 600;
/// Ports the script takes from its base.
const PORTS: u16 = 7;

/// A running cluster, brought down (and its directory removed) when dropped.
struct Cluster {
    dir: PathBuf,
    env: HashMap<String, String>,
    client: reqwest::Client,
}

impl Cluster {
    fn up(bus: &str) -> Self {
        let dir = PathBuf::from(format!(
            "/tmp/stackgate-cluster-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut last = String::new();
        for _ in 0..3 {
            let base = free_base();
            let out = script(&[
                "up",
                path(&dir),
                "--base-port",
                &base.to_string(),
                "--bus",
                bus,
                "--lifetime",
                &LIFETIME_SECONDS.to_string(),
                "--bin",
                BIN,
                "--serve-env",
                "STACKGATE_HEALTH_MONITOR=false",
            ]);
            if out.status.success() {
                let text = std::fs::read_to_string(dir.join("cluster.env")).expect("cluster.env");
                let env = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                return Self {
                    dir,
                    env,
                    client: reqwest::Client::new(),
                };
            }
            // A port taken between the check and the start: try another base.
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("the cluster did not start: {last}");
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or("")
    }

    fn lb(&self) -> &str {
        self.get("STACKGATE_URL")
    }

    fn replicas(&self) -> Vec<&str> {
        self.get("REPLICA_URLS").split(',').collect()
    }

    fn token(&self, sub: &str, org: Option<&str>) -> String {
        let secret = SecretString::from(self.get("STACKGATE_JWT_SECRET").to_owned());
        JwtKeys::hs256(&secret)
            .mint_profile(sub, org, Some(("alice@example.com", "Alice")), 3600)
            .expect("mint")
    }

    /// Runs `cluster.sh <command> <dir> <name>`; panics on failure.
    fn run(&self, command: &str, name: &str) {
        let out = script(&[command, path(&self.dir), name]);
        assert!(
            out.status.success(),
            "cluster.sh {command} {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// POSTs a GraphQL request to `base`; the body (asserted free of errors) and the write
    /// position header, if any.
    async fn graphql(
        &self,
        base: &str,
        token: &str,
        query: &str,
        variables: Value,
        position: Option<&str>,
    ) -> (Value, Option<String>) {
        let mut request = self
            .client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(30))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(position) = position {
            request = request.header("x-stackgate-lsn", position);
        }
        let response = request.send().await.expect("an answer through haproxy");
        let status = response.status().as_u16();
        let lsn = response
            .headers()
            .get("x-stackgate-lsn")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        (body, lsn)
    }

    /// The organization's project slugs, read through haproxy (with a write's position).
    async fn slugs(&self, token: &str, position: Option<&str>) -> Vec<String> {
        let (body, _) = self
            .graphql(self.lb(), token, SLUGS, json!({}), position)
            .await;
        slugs_of(&body)
    }

    /// GraphQL requests replica `base` has answered, from its `/metrics`.
    async fn requests_on(&self, base: &str) -> f64 {
        let text = self
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| l.starts_with("stackgate_graphql_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Scans of `projects` the standby has counted: reads it served.
    async fn standby_scans(&self) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Scans {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let url = SecretString::from(self.get("STANDBY_URL").to_owned());
        let conn = &mut stackgate::db::connect_owner(&url).await.expect("standby");
        diesel::sql_query(
            "select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint as n
             from pg_stat_user_tables where relname = 'projects'",
        )
        .get_result::<Scans>(conn)
        .await
        .expect("statistics")
        .n
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = script(&["down", path(&self.dir)]);
        if !out.status.success() {
            eprintln!(
                "cluster.sh down: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

fn script(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("cluster.sh runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A base port whose [`PORTS`] ports are free on 127.0.0.1 now.
fn free_base() -> u16 {
    loop {
        let base = rand::rng().random_range(20_000..60_000u16);
        let free =
            (base..base + PORTS).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
}

const SLUGS: &str = "{ viewer { organization { projects(first: 100) { nodes { slug } } } } }";
const LIVE_SLUGS: &str =
    "query @live { viewer { organization { projects(first: 100) { nodes { slug } } } } }";
const CREATE: &str = "mutation($slug: String!) {
    createProject(input: { name: $slug, slug: $slug }) { id } }";

fn slugs_of(body: &Value) -> Vec<String> {
    let nodes = body["data"]["viewer"]["organization"]["projects"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("projects: {body}"));
    let mut slugs: Vec<String> = nodes
        .iter()
        .filter_map(|n| n["slug"].as_str().map(str::to_owned))
        .collect();
    slugs.sort();
    slugs
}

async fn three_replicas_serve_one_cluster(bus: &str) {
    let cluster = Cluster::up(bus);
    let lb = cluster.lb().to_owned();
    let alice = cluster.token("cluster-alice", None);
    cluster
        .graphql(
            &lb,
            &alice,
            "mutation { createOrganization(input: { name: \"Cluster\", slug: \"cluster\" }) { id } }",
            json!({}),
            None,
        )
        .await;
    let token = cluster.token("cluster-alice", Some("cluster"));

    // A live query held through haproxy on one replica; writes go through all of them.
    let mut live = Ws::subscribed(&format!("{lb}/graphql/ws"), &token, LIVE_SLUGS, json!({})).await;
    assert_eq!(slugs_of(&live.result().await), Vec::<String>::new());

    let mut written = Vec::new();
    for i in 0..6 {
        let slug = format!("p{i}");
        let (_, lsn) = cluster
            .graphql(&lb, &token, CREATE, json!({ "slug": slug }), None)
            .await;
        let lsn = lsn.expect("a mutation's answer carries its write position");
        written.push(slug);
        // Read-your-writes: whichever replica answers, and whether the standby or the primary
        // serves it, a read carrying the position sees the write.
        let seen = cluster.slugs(&token, Some(&lsn)).await;
        assert_eq!(seen, written, "read after write {i} through haproxy");
    }
    // The live query's replica was pushed every write, including those made through the others.
    let mut last = Vec::new();
    while last != written {
        last = slugs_of(&live.result().await);
    }

    // Every replica answered, and the standby served reads.
    for base in cluster.replicas() {
        let served = cluster.requests_on(base).await;
        assert!(served > 0.0, "{base} served no GraphQL request");
    }
    assert!(
        cluster.standby_scans().await > 0,
        "the standby served no read"
    );

    // A replica SIGKILLed: haproxy retries refused connections elsewhere and stops sending to it.
    cluster.run("kill", "replica-2");
    for i in 0..30 {
        assert_eq!(
            cluster.slugs(&token, None).await,
            written,
            "read {i} after the kill"
        );
    }
    let (_, lsn) = cluster
        .graphql(&lb, &token, CREATE, json!({ "slug": "after-kill" }), None)
        .await;
    written.push("after-kill".to_owned());
    written.sort();
    assert_eq!(cluster.slugs(&token, lsn.as_deref()).await, written);

    // The standby stopped: reads fall back to the primary with no error to clients. They carry
    // the write's position as a browser sends its cookie: if the killed replica held the outbox
    // relay's lease, the write's event waits for the lease to expire, and until it arrives a read
    // without a position may be answered from a cache filled before the write.
    cluster.run("stop-pg", "standby");
    for i in 0..20 {
        assert_eq!(
            cluster.slugs(&token, lsn.as_deref()).await,
            written,
            "read {i} without the standby"
        );
    }
    // Once another replica has taken the relay over, the event clears every cache: reads without
    // a position see the write too (the relay's lease is 5 s; a cached answer lives 10 s at most).
    wait::wait_for(
        "reads without a position to see the write made after the kill",
        wait::PATIENCE,
        async || {
            let seen = cluster.slugs(&token, None).await;
            (seen == written).then_some(()).ok_or(format!("{seen:?}"))
        },
    )
    .await;
    let replica = cluster.replicas()[0].to_owned();
    wait::wait_for(
        "replica-1 to report the standby down",
        wait::PATIENCE,
        async || {
            let body = cluster
                .client
                .get(format!("{replica}/readyz"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            body.contains(": down").then_some(()).ok_or(body)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_over_the_postgres_bus() {
    three_replicas_serve_one_cluster("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_over_the_nats_bus() {
    three_replicas_serve_one_cluster("nats").await;
}
