//! Correctness under interleaving: a seeded random walk of mutations, syncs and health
//! transitions, each followed by reads through a server with the response cache on and by a live
//! query there, both checked against a server without the cache at the same point. Once the
//! replica has received an event, no answer and no live result may be older than it.
//!
//! `STACKGATE_TEST_SEED` picks the walk (the seed is printed, so a failure can be replayed).

use serde_json::{Value, json};

use crate::fixtures::{self, AcmeSite};
use crate::harness::ws::Ws;
use crate::harness::{TestApp, wait};

/// What a dashboard shows: projects, their health counts and links, the organization's
/// resources and docks.
const DASHBOARD: &str = "query Dashboard { viewer { organization { name
    projects(first: 10) { nodes { name healthSummary { healthy degraded unhealthy unknown }
        resources(first: 10) { nodes { id name status health { state } } } } }
    resources(first: 10) { nodes { id name status health { state } } }
    docks { nodes { name lastSyncStatus } } } } }";

/// A small deterministic generator (xorshift64*).
struct Walk(u64);

impl Walk {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One committed change, as the walk picks it.
async fn step(app: &TestApp, site: &AcmeSite, walk: &mut Walk, i: u64, linked: &mut [bool; 2]) {
    let alice = app.token("alice", None);
    let servers = [site.server, site.hidden];
    let which = walk.below(2) as usize;
    let server = servers[which];
    let conn = &mut app.db.owner().await;
    match walk.below(4) {
        0 => {
            let rename = "mutation($id: ID!, $name: String!) {
                updateProject(id: $id, input: { name: $name }) { id } }";
            let vars = json!({ "id": TestApp::global_id("Project", site.project),
                "name": format!("Project {i}") });
            let (_, body) = app.graphql(Some(&alice), rename, vars).await;
            assert!(body.get("errors").is_none(), "{body}");
        }
        1 => {
            let mutation = if linked[which] {
                "mutation($p: ID!, $r: ID!) { unlinkResource(projectId: $p, resourceId: $r) }"
            } else {
                "mutation($p: ID!, $r: ID!) { linkResource(projectId: $p, resourceId: $r) { linkedAt } }"
            };
            let vars = json!({ "p": TestApp::global_id("Project", site.project),
                "r": TestApp::global_id("Server", server) });
            let (_, body) = app.graphql(Some(&alice), mutation, vars).await;
            assert!(body.get("errors").is_none(), "{body}");
            linked[which] = !linked[which];
        }
        2 => {
            let states = ["healthy", "degraded", "unhealthy"];
            let state = states[walk.below(3) as usize];
            fixtures::health_transition(conn, (site.org.id, site.dock, server), ("unknown", state))
                .await;
        }
        _ => {
            let status = ["active", "stopped"][walk.below(2) as usize];
            let name = format!("server {i}");
            fixtures::synced_change(conn, (site.org.id, site.dock, server), &name, status).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_answers_and_live_results_are_never_older_than_the_last_event() {
    let seed = std::env::var("STACKGATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("STACKGATE_TEST_SEED={seed}");
    let app = TestApp::spawn().await;
    let site = fixtures::acme_site(&app).await;
    let mut config = app.config.clone();
    config.security.response_cache_bytes = 1 << 22;
    config.security.live_interval = std::time::Duration::from_millis(20);
    let cached = stackgate::server::start(config).await.expect("starts");
    let cached_url = format!("http://{}", cached.addr);
    let (alice, bob) = (app.token("alice", None), app.token("bob", None));
    let ask = async |base: &str, token: &str| -> Value {
        let response = app
            .client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": DASHBOARD }))
            .send()
            .await
            .expect("sent");
        let body: Value = response.json().await.expect("JSON");
        assert!(body.get("errors").is_none(), "{body}");
        body
    };
    let live_query = DASHBOARD.replacen("query Dashboard", "query Dashboard @live", 1);
    let mut live = Ws::subscribed(
        &format!("{cached_url}/graphql/ws"),
        &alice,
        &live_query,
        json!({}),
    )
    .await;
    let mut last_live = live.result().await;
    let mut walk = Walk(seed);
    let mut linked = [false, false];
    for i in 0..40 {
        step(&app, &site, &mut walk, i, &mut linked).await;
        app.settle_events_on(&cached).await;
        for token in [&alice, &bob] {
            let fresh = ask(&app.url(""), token).await;
            let served = ask(&cached_url, token).await;
            assert_eq!(
                served, fresh,
                "seed {seed}, step {i}: a cached answer is stale"
            );
        }
        let fresh = ask(&app.url(""), &alice).await;
        // The live query sends its new result within its interval (or had it already).
        let what = format!("seed {seed}, step {i}: the live result to catch up");
        while last_live["data"] != fresh["data"] {
            last_live = tokio::time::timeout(wait::PATIENCE, live.result())
                .await
                .unwrap_or_else(|_| panic!("{what}: still {last_live}, want {fresh}"));
        }
    }
}
