//! Adversarial tests: outbound calls (issue 11 row B, items 3 and 10).
//!
//! The oracle is a TCP listener on 127.0.0.1 that counts the connections it accepts: "nothing
//! was sent" is checked where a request would have had to arrive, not inferred from an answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use secrecy::SecretString;
use serde_json::{Value, json};
use stackgate::crypto::Keyring;
use stackgate::db::models::credentials::{self, NewDock};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Script};
use stackgate::sync::engine::{Engine, EngineConfig, RunRequest};
use stackgate::sync::{Kind, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixtures;
use crate::harness::wait::{PATIENCE, wait_for};
use crate::harness::ws::Ws;
use crate::harness::{TestApp, TestDb, error_code};

const CREATE: &str = "mutation($name: String!, $url: String) { createDock(input: { name: $name, \
    provider: \"digitalocean\", apiKey: \"do-key-0000\", endpoint: $url }) { id } }";

/// What the listener does with each connection.
#[derive(Clone)]
enum Reply {
    /// Writes this raw HTTP response after the request's head.
    Http(String),
    /// Closes the connection at once.
    Close,
    /// Holds the connection and never answers.
    Silent,
    /// Speaks something that is not HTTP.
    Garbage,
}

/// A raw HTTP/1.1 response.
fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    Reply::Http(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n{extra}\r\n{body}",
        body.len()
    ))
}

/// A listener on loopback that counts the connections it accepts.
struct Listener {
    host: String,
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Listener {
    async fn start(reply: Reply) -> Self {
        Self::on("127.0.0.1", reply).await.expect("listener")
    }

    async fn on(ip: &str, reply: Reply) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip.parse::<IpAddr>().expect("ip"), 0)).await?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, reply.clone()));
            }
        });
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        Ok(Self {
            host,
            port,
            accepted,
            task,
        })
    }

    fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    fn connections(&self) -> usize {
        AtomicUsize::load(&self.accepted, Ordering::SeqCst)
    }

    /// Waits until `n` connections have arrived (at most 10 s).
    async fn wait_for(&self, n: usize) {
        wait_for(&format!("{n} connections"), PATIENCE, async || {
            let arrived = self.connections();
            (arrived >= n)
                .then_some(())
                .ok_or(format!("{arrived} arrived"))
        })
        .await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Close => drop(stream),
        Reply::Silent => drain(&mut stream).await,
        Reply::Garbage => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            drain(&mut stream).await;
        }
        Reply::Http(raw) => {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(raw.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Reads until the peer closes.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = Text)]
    result: String,
    #[diesel(sql_type = Nullable<Text>)]
    message: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor: Option<String>,
}

/// The audit entries of `action`, oldest first.
async fn audit(app: &TestApp, action: &str) -> Vec<AuditRow> {
    diesel::sql_query(
        "select a.result, a.message, u.external_id as actor from audit_logs a \
         left join users u on u.id = a.user_id where a.action = $1 order by a.created_at, a.id",
    )
    .bind::<Text, _>(action)
    .load(&mut app.db.owner().await)
    .await
    .expect("audit log")
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("<none>")
}

/// A server whose org `acme` has the owner `alice`; `adjust` changes its configuration.
async fn acme(adjust: impl FnOnce(&mut stackgate::config::Config)) -> (TestApp, String) {
    let (app, _) = fixtures::with_alice(TestApp::spawn_with(adjust).await).await;
    let token = app.token("alice", Some("acme"));
    (app, token)
}

async fn create(app: &TestApp, token: &str, name: &str, url: &str) -> Value {
    let vars = json!({ "name": name, "url": url });
    app.graphql(Some(token), CREATE, vars).await.1
}

/// Row B: a read-only viewer and a client-portal user calling `createDock` at a listening port
/// get `FORBIDDEN` before anything is sent (the key is not carried anywhere), and each denial is
/// audited. The other dock mutations are refused to the viewer the same way, before their
/// outbound call or write.
#[tokio::test(flavor = "multi_thread")]
async fn guests_are_refused_dock_mutations_before_anything_is_sent() {
    let app = fixtures::seeded().await;
    let target = Listener::start(http("200 OK", &[], "{}")).await;
    for (who, url) in [
        ("org-0-viewer", target.url()),
        ("org-0-client-0", format!("{}/#", target.url())),
    ] {
        let token = app.token(who, Some("org-0"));
        let body = create(&app, &token, &format!("by {who}"), &url).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
    }
    assert_eq!(
        target.connections(),
        0,
        "nothing may be sent before the check"
    );
    let denials: Vec<(String, Option<String>)> = audit(&app, "dock.create")
        .await
        .into_iter()
        .map(|r| (r.result, r.actor))
        .collect();
    assert_eq!(
        denials,
        [
            ("denied".to_owned(), Some("org-0-viewer".to_owned())),
            ("denied".to_owned(), Some("org-0-client-0".to_owned())),
        ]
    );

    // The seeded DigitalOcean dock, pointed at the listener: a viewer sees it, may not touch it.
    diesel::sql_query(
        "update docks set endpoint = $1 where id = md5('org-0:dock:digitalocean')::uuid",
    )
    .bind::<Text, _>(target.url())
    .execute(&mut app.db.owner().await)
    .await
    .expect("endpoint");
    let owner = app.token("org-0-owner", Some("org-0"));
    let docks = app
        .graphql(
            Some(&owner),
            "{ viewer { organization { docks { nodes { id provider } } } } }",
            json!({}),
        )
        .await
        .1;
    let dock = docks["data"]["viewer"]["organization"]["docks"]["nodes"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["provider"] == "digitalocean"))
        .map(|d| d["id"].clone())
        .unwrap_or_else(|| panic!("{docks}"));
    let viewer = app.token("org-0-viewer", Some("org-0"));
    for (action, mutation) in [
        (
            "dock.update_credentials",
            "mutation($id: ID!) { updateDockCredentials(id: $id, apiKey: \"do-key-1111\") { id } }",
        ),
        (
            "dock.sync",
            "mutation($id: ID!) { syncDock(id: $id) { id } }",
        ),
        ("dock.delete", "mutation($id: ID!) { deleteDock(id: $id) }"),
    ] {
        let body = app
            .graphql(Some(&viewer), mutation, json!({ "id": dock }))
            .await
            .1;
        assert_eq!(error_code(&body), "FORBIDDEN", "{action}: {body}");
        let results: Vec<String> = audit(&app, action)
            .await
            .into_iter()
            .map(|r| r.result)
            .collect();
        assert_eq!(results, ["denied"], "{action}");
    }
    assert_eq!(
        target.connections(),
        0,
        "nothing may be sent before the check"
    );
    let runs = diesel::sql_query(
        "select 'x' as result, null as message, null as actor from sync_runs \
         where dock_id = md5('org-0:dock:digitalocean')::uuid and trigger = 'manual' \
           and started_at > now() - interval '1 hour'",
    )
    .load::<AuditRow>(&mut app.db.owner().await)
    .await
    .expect("runs");
    assert!(runs.is_empty(), "no run was started: {runs:?}");
}

/// Row B over WebSocket: the same denial through a `graphql-transport-ws` socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_guests_create_dock_over_websocket_is_refused_before_anything_is_sent() {
    let app = fixtures::seeded().await;
    let target = Listener::start(http("200 OK", &[], "{}")).await;
    let token = app.token("org-0-viewer", Some("org-0"));
    let mut socket = Ws::open(&app, &token).await;
    let vars = json!({ "name": "over ws", "url": target.url() });
    socket.subscribe(CREATE, vars).await;
    let answer = socket.message().await.expect("answer");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    assert_eq!(
        target.connections(),
        0,
        "nothing may be sent before the check"
    );
    let results: Vec<String> = audit(&app, "dock.create")
        .await
        .into_iter()
        .map(|r| r.result)
        .collect();
    assert_eq!(results, ["denied"]);
}

/// Item 3 (row B): with private endpoints disallowed, an owner's `createDock` at loopback in
/// every spelling (literal, decimal, hexadecimal, short form, IPv6, IPv4-mapped, `localhost`,
/// `*.localhost`) is `BAD_USER_INPUT` "endpoint is not a public address" before any connection,
/// and each refusal is audited.
#[tokio::test(flavor = "multi_thread")]
async fn private_endpoints_are_refused_before_any_connection() {
    let (app, token) = acme(|c| c.security.allow_private_endpoints = false).await;
    let v4 = Listener::start(http("200 OK", &[], "{}")).await;
    let v6 = Listener::on("::1", http("200 OK", &[], "{}")).await.ok();
    let p = v4.port;
    let mut endpoints = vec![
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
        format!("https://LOCALHOST.:{p}/"),
        format!("http://0x7f000001:{p}"),
        format!("http://2130706433:{p}"),
        format!("http://127.1:{p}"),
        format!("http://0177.0.0.1:{p}"),
        format!("http://[::ffff:127.0.0.1]:{p}"),
        format!("http://api.stackgate-test.localhost:{p}/v2"),
    ];
    if let Some(v6) = &v6 {
        endpoints.push(v6.url());
    } else {
        endpoints.push(format!("http://[::1]:{p}"));
    }
    for (i, url) in endpoints.iter().enumerate() {
        let body = create(&app, &token, &format!("private {i}"), url).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        assert_eq!(
            message(&body),
            "endpoint is not a public address",
            "{url}: {body}"
        );
    }
    assert_eq!(v4.connections(), 0, "a refused endpoint was contacted");
    assert_eq!(v6.as_ref().map_or(0, Listener::connections), 0);
    let refusals = audit(&app, "dock.create").await;
    assert_eq!(refusals.len(), endpoints.len(), "{refusals:?}");
    assert!(
        refusals.iter().all(|r| r.result == "error"
            && r.message.as_deref() == Some("endpoint is not a public address")),
        "{refusals:?}"
    );
}

/// Item 2: an endpoint is a base URL, `http(s)` only, with no user information, query or
/// fragment (`http://127.0.0.1:9999/#` turned the API path into a fragment); such URLs are
/// refused before any connection even where private endpoints are allowed.
#[tokio::test(flavor = "multi_thread")]
async fn endpoint_urls_are_http_base_urls_only() {
    let (app, token) = acme(|_| {}).await;
    let target = Listener::start(http("200 OK", &[], "{}")).await;
    let url = target.url();
    let endpoints = [
        format!("{url}/#"),
        format!("{url}/?x=1"),
        format!("http://user:pw@127.0.0.1:{}", target.port),
        format!("http://user@127.0.0.1:{}", target.port),
        format!("ftp://127.0.0.1:{}", target.port),
        "file:///etc/passwd".to_owned(),
        format!("gopher://127.0.0.1:{}/", target.port),
    ];
    for (i, endpoint) in endpoints.iter().enumerate() {
        let body = create(&app, &token, &format!("bad url {i}"), endpoint).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{endpoint}: {body}");
        assert!(message(&body).starts_with("`endpoint`"), "{body}");
    }
    assert_eq!(target.connections(), 0);
}

/// Item 3: a verification failure never quotes the remote end: a 401, 403 or 500 whose body and
/// headers carry a marker gives a stable message with the status (class) only, in the response
/// and in the audit log.
#[tokio::test(flavor = "multi_thread")]
async fn verification_errors_never_quote_the_remote_end() {
    let (app, token) = acme(|_| {}).await;
    const MARKER: &str = "remote-marker-7c1f";
    let body = format!(r#"{{"id":"x","message":"{MARKER}","error":"{MARKER}"}}"#);
    let headers = [("x-debug", MARKER), ("www-authenticate", MARKER)];
    let cases = [
        (
            "401 Unauthorized",
            "the provider refused the API key (HTTP 401)",
        ),
        (
            "403 Forbidden",
            "the provider refused the API key (HTTP 403)",
        ),
        (
            "500 Internal Server Error",
            "the provider answered HTTP 5xx",
        ),
        ("404 Not Found", "the provider answered HTTP 4xx"),
        ("200 OK", "the provider's answer was not understood"),
    ];
    for (i, (status, expected)) in cases.iter().enumerate() {
        let reply_body = if status.starts_with("200") {
            format!("<html>{MARKER}</html>")
        } else {
            body.clone()
        };
        let target = Listener::start(http(status, &headers, &reply_body)).await;
        let answer = create(&app, &token, &format!("remote {i}"), &target.url()).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{status}: {answer}");
        assert_eq!(message(&answer), *expected, "{status}: {answer}");
        assert!(!answer.to_string().contains(MARKER), "{status}: {answer}");
        assert_eq!(target.connections(), 1, "{status}: one request, no retry");
    }
    let audited = audit(&app, "dock.create").await;
    assert_eq!(audited.len(), cases.len());
    for row in audited {
        assert_eq!(row.result, "error");
        assert!(!row.message.unwrap_or_default().contains(MARKER));
    }
}

/// Item 3 (row B's port scanner): a closed port, an open one that closes at once, one that
/// speaks something else and one that never answers all read the same.
#[tokio::test(flavor = "multi_thread")]
async fn closed_open_and_silent_ports_read_the_same() {
    let (app, token) = acme(|c| c.security.outbound_timeout = Some(Duration::from_secs(2))).await;
    let closing = Listener::start(Reply::Close).await;
    let garbage = Listener::start(Reply::Garbage).await;
    let silent = Listener::start(Reply::Silent).await;
    let closed = format!("http://127.0.0.1:{}", closed_port().await);
    let mut messages = Vec::new();
    for (i, url) in [closed, closing.url(), garbage.url(), silent.url()]
        .iter()
        .enumerate()
    {
        let body = create(&app, &token, &format!("port {i}"), url).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        messages.push(message(&body).to_owned());
    }
    assert_eq!(
        messages, ["the provider could not be reached"; 4],
        "the answer tells nothing about the port"
    );
}

/// Item 2: a redirect is not followed (it could lead past the address guard).
#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed() {
    let (app, token) = acme(|_| {}).await;
    let elsewhere = Listener::start(http("200 OK", &[], "{}")).await;
    let location = format!("{}/v2/account", elsewhere.url());
    let redirecting = Listener::start(http("302 Found", &[("location", &location)], "")).await;
    let body = create(&app, &token, "redirected", &redirecting.url()).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(message(&body), "the provider answered HTTP 3xx");
    assert_eq!(redirecting.connections(), 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
}

/// Item 4: `createDock` against a provider that never answers returns within its deadline, and
/// while several such checks wait, the pool still serves everyone else (the checks hold no
/// database connection).
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_provider_neither_outlasts_the_deadline_nor_holds_the_pool() {
    let deadline = Duration::from_secs(2);
    let (app, token) = acme(|c| {
        c.security.outbound_timeout = Some(deadline);
        c.pool_size = 2;
    })
    .await;
    let app = Arc::new(app);
    let silent = Listener::start(Reply::Silent).await;
    let started = Instant::now();
    let checks: Vec<_> = (0..4)
        .map(|i| {
            let (app, token, url) = (app.clone(), token.clone(), silent.url());
            tokio::spawn(async move { create(&app, &token, &format!("silent {i}"), &url).await })
        })
        .collect();
    silent.wait_for(4).await;
    let asked = Instant::now();
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ viewer { organization { slug docks { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "acme",
        "{body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "a query waited {:?} behind the checks",
        asked.elapsed()
    );
    for check in checks {
        let body = check.await.expect("check");
        assert_eq!(
            message(&body),
            "the provider could not be reached",
            "{body}"
        );
    }
    assert!(
        started.elapsed() < deadline + Duration::from_secs(2),
        "the checks took {:?}",
        started.elapsed()
    );
    assert_eq!(silent.connections(), 4, "one request each, no retry");
}

/// Item 2: the scheduler's run of a dock whose endpoint the guard refuses fails with a recorded
/// error, and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_dock_with_a_refused_endpoint_is_not_synced() {
    let (app, token) = acme(|c| c.security.allow_private_endpoints = false).await;
    let target = Listener::start(http("200 OK", &[], "{}")).await;
    let keyring = Keyring::from_config(
        app.config
            .encryption_keys
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret),
    )
    .expect("keyring");
    let org_id = fixtures::find_org(&mut app.db.owner().await, "acme")
        .await
        .id;
    let key = SecretString::from("do-key-0000".to_owned());
    let url = target.url();
    let dock = NewDock {
        org_id,
        name: "stored before the guard",
        provider: "digitalocean",
        api_key: &key,
        endpoint: Some(&url),
        sync_interval_seconds: 3600,
    };
    let dock_id = credentials::create_dock(&mut app.db.owner().await, &keyring, &dock)
        .await
        .expect("dock");
    let dock_gid = stackgate::graphql::ids::encode("Dock", dock_id);
    let (_, body) = app
        .graphql(
            Some(&token),
            "mutation($id: ID!) { syncDock(id: $id) { id } }",
            json!({ "id": dock_gid }),
        )
        .await;
    let run = body["data"]["syncDock"]["id"].clone();
    assert!(run.is_string(), "{body}");
    let node = app.finished_run(&token, &run).await;
    assert_eq!(node["status"], "ERROR", "{node}");
    let error = node["error"].as_str().unwrap_or_default();
    assert!(error.contains("is not a public address"), "{error}");
    assert_eq!(target.connections(), 0, "the run sent a request");
}

/// Item 10: the seed (scale 1), the demo and one sync of every fake provider's default data
/// carry only addresses that can never leave the machine: every IP is loopback, every URL,
/// hostname, e-mail domain and domain name is `localhost` or under `.localhost` / `.invalid`,
/// in every string column and `full_api_data` of the resource tables and the docks.
#[tokio::test(flavor = "multi_thread")]
async fn fakes_seed_and_demo_carry_only_loopback_addresses() {
    let db = TestDb::migrated().await;
    let conn = &mut db.owner().await;
    stackgate::devkit::seed::seed(conn, 1).await.expect("seed");
    let keyring = Arc::new(Keyring::for_testing());
    let demo = stackgate::devkit::demo::prepare(&db.url(), keyring.clone())
        .await
        .expect("demo");
    let org = fixtures::org(conn, "fakes").await;
    let pool = stackgate::db::build_pool(&db.url(), 2).expect("pool");
    let config = EngineConfig {
        allow_private_endpoints: true,
        ..EngineConfig::default()
    };
    let engine = Engine::new(pool, keyring.clone(), Registry::default(), config);
    let mut fakes = Vec::new();
    for fake in [FakeKind::DigitalOcean, FakeKind::Linode, FakeKind::Vercel] {
        let mut script = Script::new("fake-key-0000");
        for kind in Kind::ALL {
            script = script.count(kind, 30);
        }
        let (url, handle) = FakeProvider::start(fake, script).await.expect("fake");
        let key = SecretString::from("fake-key-0000".to_owned());
        let dock = NewDock {
            org_id: org.id,
            name: fake.provider(),
            provider: fake.provider(),
            api_key: &key,
            endpoint: Some(&url),
            sync_interval_seconds: 3600,
        };
        let dock = credentials::create_dock(conn, &keyring, &dock)
            .await
            .expect("dock");
        let report = engine
            .run(&RunRequest::new(org.id, dock))
            .await
            .expect("run");
        assert!(report.succeeded(), "{:?}", report.error);
        fakes.push(handle);
    }

    let mut checked = 0;
    let mut outside = Vec::new();
    for table in ["servers", "web_services", "domains", "databases", "docks"] {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            row: String,
        }
        let rows: Vec<Row> =
            diesel::sql_query(format!("select row_to_json(t)::text as row from {table} t"))
                .load(conn)
                .await
                .expect("rows");
        assert!(!rows.is_empty(), "no {table}");
        for row in rows {
            let value: Value = serde_json::from_str(&row.row).expect("json");
            let mut strings = Vec::new();
            collect_strings(&value, &mut strings);
            for s in strings {
                for address in addresses(&s) {
                    checked += 1;
                    if !stays_local(&address) {
                        outside.push(format!("{table}: {address} (in {s:?})"));
                    }
                }
            }
        }
    }
    outside.dedup();
    assert!(
        outside.is_empty(),
        "{} addresses leave the machine: {:#?}",
        outside.len(),
        &outside[..outside.len().min(20)]
    );
    assert!(
        checked > 2_000,
        "only {checked} addresses found: the scan is vacuous"
    );
    drop(demo);
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Every host-like thing in a string: URL hosts, IP addresses (with or without a prefix
/// length), host names with an alphabetic last label, e-mail domains.
fn addresses(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    for token in s.split(|c: char| c.is_whitespace() || "\"'(),;<>{}|".contains(c)) {
        if token.contains("://") {
            let host = reqwest::Url::parse(token)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            found.push(host.unwrap_or_else(|| token.to_owned()));
            continue;
        }
        for part in token.split(['/', '@', '=']) {
            let part = part.trim_end_matches('.');
            if part.parse::<IpAddr>().is_ok() {
                found.push(part.to_owned());
            } else if let Some((host, port)) = part.rsplit_once(':')
                && port.parse::<u16>().is_ok()
                && (host.parse::<IpAddr>().is_ok() || is_hostname(host))
            {
                found.push(host.to_owned());
            } else if is_hostname(part) {
                found.push(part.to_owned());
            }
        }
    }
    found
}

/// `a.b` made of letters, digits and `-`, whose last label is not a number (`16.4` is a version).
fn is_hostname(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    let Some((_, last)) = s.rsplit_once('.') else {
        return false;
    };
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && last.chars().any(|c| c.is_ascii_alphabetic())
        && !s.split('.').any(str::is_empty)
}

fn stays_local(address: &str) -> bool {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.ends_with(".invalid")
}
