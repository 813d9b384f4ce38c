//! OpenTelemetry traces (`docs/observability.md`): a real `stackgate serve` process exports its
//! spans over OTLP/HTTP (JSON) to a receiver this test runs on 127.0.0.1, continues the trace of
//! an incoming `traceparent`, and passes its own to the (fake) provider it syncs from.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stackgate::auth::jwt::JwtKeys;
use stackgate::crypto::Keyring;
use stackgate::db::models::credentials::{self, NewDock};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Script};

use crate::fixtures;
use crate::harness::serve::ServeProcess;
use crate::harness::wait::{PATIENCE, wait_for, wait_until};
use crate::harness::{JWT_SECRET, TestDb};

/// The dock's API key: it must never show in an exported span.
const KEY: &str = "dop_v1_otel_otel_otel_otel_otel_otel_0123";
/// The caller's trace and span, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const QUERY: &str = "query Docks { viewer { organization { docks(first: 10) { nodes { name \
                     syncRuns(first: 5) { nodes { status } } } } } } }";

/// Everything the receiver was sent to `/v1/traces`, one JSON body per export.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Starts the receiver on a free port of 127.0.0.1; it stops with the test's runtime.
    async fn start() -> (String, Self) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, receiver)
    }

    fn exports(&self) -> usize {
        self.bodies.lock().expect("bodies").len()
    }

    /// Every exported span, flattened: name, ids, and attributes as a key → value map.
    fn spans(&self) -> Vec<Span> {
        let bodies = self.bodies.lock().expect("bodies");
        let mut out = Vec::new();
        for body in bodies.iter() {
            let scopes = body["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten());
            for span in scopes.flat_map(|s| s["spans"].as_array().into_iter().flatten()) {
                out.push(Span::of(span));
            }
        }
        out
    }

    fn text(&self) -> String {
        serde_json::to_string(&*self.bodies.lock().expect("bodies")).expect("json")
    }
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> &'static str {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    receiver.bodies.lock().expect("bodies").push(value);
    "{}"
}

#[derive(Clone, Debug)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: serde_json::Map<String, Value>,
}

impl Span {
    fn of(span: &Value) -> Self {
        let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
        let id = |key: &str| text(key).to_ascii_lowercase();
        let attributes = span["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|kv| {
                let value = kv["value"].as_object()?.values().next()?.clone();
                Some((kv["key"].as_str()?.to_owned(), value))
            })
            .collect();
        Self {
            name: text("name"),
            trace: id("traceId"),
            id: id("spanId"),
            parent: id("parentSpanId"),
            attributes,
        }
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// True when `span` descends from `ancestor` among `all`.
fn descends(span: &Span, ancestor: &Span, all: &[Span]) -> bool {
    let mut parent = span.parent.clone();
    for _ in 0..all.len() {
        if parent == ancestor.id {
            return true;
        }
        match all.iter().find(|s| s.id == parent) {
            Some(up) => parent = up.parent.clone(),
            None => return false,
        }
    }
    false
}

/// An organization `acme` with owner alice, a DigitalOcean dock on a fake provider (due at
/// once), and the environment a `serve` process needs for it.
struct World {
    db: TestDb,
    fake: FakeProvider,
    token: String,
    keys: SecretString,
}

impl World {
    async fn build() -> Self {
        let db = TestDb::migrated().await;
        let conn = &mut db.owner().await;
        let org = fixtures::org(conn, "acme").await;
        fixtures::member(conn, &org, "alice", "owner").await;
        let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(2))
            .await
            .expect("fake");
        let keys = Keyring::generate_spec("otel");
        let keyring = Keyring::from_config(Some(keys.expose_secret())).expect("keyring");
        let key = SecretString::from(KEY.to_owned());
        credentials::create_dock(
            conn,
            &keyring,
            &NewDock {
                org_id: org.id,
                name: "traced",
                provider: FakeKind::DigitalOcean.provider(),
                api_key: &key,
                endpoint: Some(&url),
                sync_interval_seconds: 3600,
            },
        )
        .await
        .expect("dock");
        let token = JwtKeys::hs256(&SecretString::from(JWT_SECRET.to_owned()))
            .mint("alice", Some("acme"), 3600)
            .expect("token");
        Self {
            db,
            fake,
            token,
            keys,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.db.url().expose_secret().to_owned()),
            (
                "STACKGATE_APP_DATABASE_URL",
                self.db.app_url().expose_secret().to_owned(),
            ),
            ("STACKGATE_JWT_SECRET", JWT_SECRET.to_owned()),
            (
                "STACKGATE_ENCRYPTION_KEYS",
                self.keys.expose_secret().to_owned(),
            ),
            ("STACKGATE_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned()),
            ("STACKGATE_HEALTH_MONITOR", "false".to_owned()),
            ("STACKGATE_NOTIFICATIONS", "false".to_owned()),
            ("STACKGATE_SYNC_CLAIM_INTERVAL", "200ms".to_owned()),
            ("STACKGATE_POOL_SIZE", "4".to_owned()),
        ]
    }

    /// Sends the docks query with the caller's `traceparent`; returns the body.
    async fn query(&self, server: &ServeProcess) -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/graphql", server.addr))
            .bearer_auth(&self.token)
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .json(&json!({ "query": QUERY }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Waits until the fake served the dock's sync.
    async fn synced(&self) {
        wait_until("the dock's sync to reach the fake", PATIENCE, async || {
            self.fake.requests() >= 2
        })
        .await;
    }
}

/// The operation's span continues the caller's trace (its parent is the caller's span), names
/// the document, and holds loader-batch and SQL-statement spans; the sync's run and page spans
/// and the relay's publish are exported, the fake provider was sent a page span's
/// `traceparent`; no key, token or secret is in any exported span.
#[tokio::test(flavor = "multi_thread")]
async fn spans_continue_the_callers_trace_and_reach_the_provider() {
    let world = World::build().await;
    let (endpoint, receiver) = Receiver::start().await;
    let mut env = world.env();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_SERVICE_NAME", "stackgate-under-test".to_owned()),
    ]);
    let server = ServeProcess::start("traced", &env);
    world.synced().await;
    let body = world.query(&server).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["docks"]["nodes"][0]["name"], "traced",
        "{body}"
    );

    let document_id = format!("{:x}", Sha256::digest(QUERY.as_bytes()));
    let (operation, spans) = wait_for("the operation's spans", PATIENCE, async || {
        let spans = receiver.spans();
        let operation = spans
            .iter()
            .find(|s| s.name == "graphql" && s.trace == TRACE_ID)
            .cloned()
            .ok_or_else(|| {
                let mut names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{} {} {}", s.name, s.trace, s.parent))
                    .filter(|n| !n.starts_with("SELECT") && !n.starts_with("sql"))
                    .collect();
                names.dedup();
                format!("{} spans, none of the operation: {names:?}", spans.len())
            })?;
        let under = |name: &str| {
            spans
                .iter()
                .any(|s| s.name.starts_with(name) && descends(s, &operation, &spans))
        };
        match (under("load "), under("SELECT")) {
            (true, true) => Ok((operation, spans)),
            seen => Err(format!("loader and SQL spans under it: {seen:?}")),
        }
    })
    .await;
    assert_eq!(
        operation.parent, PARENT_ID,
        "the caller's span is its parent"
    );
    assert_eq!(
        operation.attribute("graphql.document.id"),
        Some(document_id.as_str())
    );
    assert_eq!(operation.attribute("graphql.operation.name"), Some("Docks"));
    assert_eq!(operation.attribute("graphql.operation.type"), Some("query"));
    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attribute("db.system.name") == Some("postgresql"))
        .filter(|s| descends(s, &operation, &spans))
        .collect();
    assert!(
        statements.iter().any(|s| s
            .attribute("db.query.text")
            .is_some_and(|q| q.contains("$1"))),
        "statements carry their text with placeholders: {statements:?}"
    );

    // The sync: its run span holds page spans, and the fake saw a page span's traceparent.
    let parents = world.fake.traceparents();
    assert!(!parents.is_empty(), "the provider was sent a traceparent");
    let (run, page) = wait_for("the sync's spans", PATIENCE, async || {
        let spans = receiver.spans();
        let Some(run) = spans.iter().find(|s| s.name == "sync.run").cloned() else {
            return Err(format!("{} spans, no sync.run", spans.len()));
        };
        let page = spans
            .iter()
            .find(|s| s.name == "sync.page" && s.parent == run.id)
            .cloned()
            .ok_or("no sync.page under the run")?;
        // The run's events went out through the outbox relay.
        if !spans.iter().any(|s| s.name == "relay.publish") {
            return Err("no relay.publish".into());
        }
        Ok((run, page))
    })
    .await;
    let sent = parents
        .iter()
        .find(|p| p.contains(&run.trace))
        .unwrap_or_else(|| panic!("no traceparent of trace {} in {parents:?}", run.trace));
    let pages: Vec<String> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "sync.page" && s.trace == run.trace)
        .map(|s| s.id)
        .collect();
    assert!(
        pages.iter().any(|id| sent.contains(id.as_str())),
        "{sent} names one of the run's page spans {pages:?} (first: {})",
        page.id
    );

    let exported = receiver.text();
    assert!(
        exported.contains("stackgate-under-test"),
        "OTEL_SERVICE_NAME"
    );
    for secret in [KEY, world.token.as_str(), JWT_SECRET] {
        assert!(!exported.contains(secret), "a secret was exported");
    }
    assert!(
        !exported.contains(world.keys.expose_secret()),
        "the encryption keys were exported"
    );
}

/// Without an OTLP endpoint no exporter runs and no `traceparent` goes out; with one but
/// `OTEL_SDK_DISABLED=true`, the receiver gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_nothing_is_traced() {
    let world = World::build().await;
    let mut env = world.env();
    env.push(("STACKGATE_REPLICA_ID", "replica-7".to_owned()));
    let server = ServeProcess::start("untraced", &env);
    world.synced().await;
    world.query(&server).await;
    // (And the replica's metrics carry its name.)
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"stackgate_graphql_requests_total{replica="replica-7",operation="Docks",status="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        world.fake.traceparents().is_empty(),
        "no traceparent without tracing"
    );
    assert!(!server.log_text().contains("exporting traces"));
    drop(server);

    let (endpoint, receiver) = Receiver::start().await;
    let mut env = world.env();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_SDK_DISABLED", "true".to_owned()),
    ]);
    let server = ServeProcess::start("disabled", &env);
    let body = world.query(&server).await;
    assert!(body["errors"].is_null(), "{body}");
    // Stopping the process flushes whatever an exporter would hold.
    server.stop().await;
    assert_eq!(receiver.exports(), 0, "nothing was exported");
}

/// Spans still queued when the process is stopped gracefully are exported before it exits:
/// with batches sent only every 10 minutes, the operation's span reaches the receiver on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_exports_the_queued_spans() {
    let world = World::build().await;
    let (endpoint, receiver) = Receiver::start().await;
    let mut env = world.env();
    env.extend([
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{endpoint}/v1/traces"),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()),
    ]);
    let server = ServeProcess::start("flushed", &env);
    world.query(&server).await;
    assert_eq!(
        receiver.exports(),
        0,
        "nothing is sent before the batch is due"
    );
    server.stop().await;
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "graphql" && s.trace == TRACE_ID),
        "{} spans exported at the stop, none of the operation",
        spans.len()
    );
}
