//! Alert notifications: channels, signed webhooks, retries with back-off and the delivery log,
//! routing, the outbound guard, Slack, SMTP, the secret shown once, acknowledging and resolving
//! alerts, and who may do what. Every receiver listens on 127.0.0.1 inside the test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use stackgate::db::build_pool;
use stackgate::health::Monitor;
use stackgate::notify::SmtpConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

use crate::fixtures::{self, Org, Target::Web};
use crate::harness::wait::{PATIENCE, wait_until};
use crate::harness::{TestApp, error_code};

// ---------------------------------------------------------------------------------------------
// Receivers

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: String,
}

/// An HTTP endpoint on 127.0.0.1 that records every POST and answers 500 to the first
/// `failures` of them, 200 after.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(failures: usize) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let left = Arc::new(AtomicUsize::new(failures));
        let shared = got.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let (got, left) = (shared.clone(), left.clone());
            async move {
                got.lock().expect("lock").push(Received {
                    at: Instant::now(),
                    headers,
                    body,
                });
                let failing = left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                match failing {
                    true => StatusCode::INTERNAL_SERVER_ERROR,
                    false => StatusCode::OK,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            got,
            _task: task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

/// A tiny SMTP sink on 127.0.0.1: accepts any mail and keeps each message's text.
struct SmtpSink {
    addr: String,
    messages: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp");
        let addr = listener.local_addr().expect("addr").to_string();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let shared = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let messages = shared.clone();
                tokio::spawn(async move {
                    let (read, mut write) = conn.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink.localhost ready\r\n").await;
                    let mut envelope = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.to_ascii_uppercase();
                        let reply: &[u8] = if verb.starts_with("EHLO") {
                            b"250-sink.localhost\r\n250 8BITMIME\r\n"
                        } else if verb.starts_with("MAIL") || verb.starts_with("RCPT") {
                            envelope.push_str(&line);
                            envelope.push('\n');
                            b"250 ok\r\n"
                        } else if verb == "DATA" {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut data = envelope.clone();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            messages.lock().expect("lock").push(data);
                            b"250 queued\r\n"
                        } else if verb == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"500 what\r\n"
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        Self {
            addr,
            messages,
            _task: task,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A server delivering notifications (first retry after `backoff`) with an SMTP relay.
async fn app_with(backoff: Duration, smtp: Option<&SmtpSink>) -> TestApp {
    let smtp = smtp.map(|s| SmtpConfig {
        addr: s.addr.clone(),
        from: "stackgate@example.invalid".into(),
    });
    TestApp::spawn_with(move |c| {
        c.run_notifications = true;
        c.notify.backoff = backoff;
        c.notify.max_backoff = backoff * 8;
        c.notify.idle = Duration::from_millis(20);
        c.notify.smtp = smtp;
    })
    .await
}

struct Acme {
    org: Org,
    dock: Uuid,
    owner: String,
}

impl Acme {
    /// Opens an alert of `severity` on a new server of the dock, as the monitor does on a
    /// transition (the trigger enqueues its deliveries); returns the server.
    async fn alert_on_new_server(&self, app: &TestApp, severity: &str, message: &str) -> Uuid {
        let owner = &mut app.db.owner().await;
        let server = fixtures::resource(
            owner,
            &self.org,
            self.dock,
            crate::fixtures::Target::Server("127.0.0.1"),
        )
        .await;
        fixtures::alert(owner, server, severity, message).await;
        server
    }
}

async fn acme(app: &TestApp) -> Acme {
    let conn = &mut app.db.owner().await;
    let org = fixtures::org(conn, "acme").await;
    fixtures::member(conn, &org, "acme-owner", "owner").await;
    fixtures::member(conn, &org, "acme-viewer", "viewer").await;
    let dock = fixtures::dock(conn, &org).await;
    Acme {
        org,
        dock,
        owner: app.token("acme-owner", Some("acme")),
    }
}

const CREATE: &str = "mutation($input: CreateNotificationChannelInput!) {
    createNotificationChannel(input: $input) { signingSecret channel { id name kind url email secretHint } } }";

/// Creates a channel as `token`; returns the payload (panics on errors).
async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    let (_, body) = app
        .graphql(Some(token), CREATE, json!({ "input": input }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createNotificationChannel"].clone()
}

const LOG: &str = "query($id: ID!) { node(id: $id) { ... on NotificationChannel {
    deliveries(first: 10) { totalCount nodes { id event status attempts lastError deliveredAt
      nextAttemptAt alert { id severity } } } } } }";

/// A channel's delivery log, newest first.
async fn log(app: &TestApp, token: &str, channel: &Value) -> Value {
    let (_, body) = app
        .graphql(Some(token), LOG, json!({ "id": channel }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["node"]["deliveries"].clone()
}

/// Waits until the channel's newest delivery has `status`; returns it.
async fn settled(app: &TestApp, token: &str, channel: &Value, status: &str) -> Value {
    let mut last = Value::Null;
    wait_until(&format!("a {status} delivery"), PATIENCE, async || {
        last = log(app, token, channel).await["nodes"][0].clone();
        last["status"] == status
    })
    .await;
    last
}

fn verify(secret: &str, header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn alerts(app: &TestApp, token: &str) -> Value {
    let (_, body) = app
        .graphql(
            Some(token),
            "{ viewer { organization { alerts(first: 10) { nodes { id severity } } } } }",
            json!({}),
        )
        .await;
    body["data"]["viewer"]["organization"]["alerts"]["nodes"].clone()
}

// ---------------------------------------------------------------------------------------------
// Webhooks

#[tokio::test(flavor = "multi_thread")]
async fn a_health_transition_delivers_one_signed_webhook() {
    let app = app_with(Duration::from_millis(50), None).await;
    let acme = acme(&app).await;
    let receiver = Receiver::start(0).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "ops hook", "kind": "WEBHOOK", "url": receiver.url }),
    )
    .await;
    let secret = created["signingSecret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let channel = created["channel"]["id"].clone();
    // A second replica delivers too: the transition still arrives once.
    let _replica = app.replica().await;

    // A web service whose port is closed turns UNHEALTHY through the real monitor.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = format!("http://{}/health", closed.local_addr().expect("addr"));
    drop(closed);
    let owner = &mut app.db.owner().await;
    fixtures::resource(owner, &acme.org, acme.dock, Web(&dead)).await;
    let pool = build_pool(&app.db.app_url(), 4).expect("pool");
    let monitor = Monitor::new(pool, crate::health::config(1, 4)).expect("monitor");
    crate::health::round(&monitor, owner).await;
    crate::health::round(&monitor, owner).await;

    let delivered = settled(&app, &acme.owner, &channel, "DELIVERED").await;
    assert_eq!(delivered["event"], "OPENED");
    assert_eq!(delivered["attempts"], 1);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let request = &got[0];
    let header = request.headers["x-stackgate-signature"]
        .to_str()
        .expect("ascii");
    assert!(verify(&secret, header, &request.body), "{header}");
    assert!(!verify("whsec_wrong", header, &request.body));
    assert_eq!(request.headers["x-stackgate-event"], "alert.opened");
    assert_eq!(
        request.headers["x-stackgate-delivery"],
        delivered["id"].as_str().expect("id")
    );
    let payload: Value = serde_json::from_str(&request.body).expect("json");
    let opened = alerts(&app, &acme.owner).await;
    assert_eq!(payload["event"], "alert.opened");
    assert_eq!(payload["alert"]["id"], opened[0]["id"], "{payload}");
    assert_eq!(payload["alert"]["severity"], "critical");
    assert_eq!(payload["alert"]["resource"]["kind"], "web_service");
    assert_eq!(log(&app, &acme.owner, &channel).await["totalCount"], 1);

    // The same transition is one row per channel: a second one is refused by the unique key.
    let duplicate = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "insert into notification_deliveries (org_id, channel_id, alert_id, event) \
             select org_id, channel_id, alert_id, event from notification_deliveries",
        ),
        owner,
    )
    .await;
    assert!(duplicate.is_err(), "a duplicate delivery row was accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_is_retried_with_back_off_and_logged() {
    let backoff = Duration::from_millis(200);
    let app = app_with(backoff, None).await;
    let acme = acme(&app).await;
    let receiver = Receiver::start(2).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "flaky", "kind": "WEBHOOK", "url": receiver.url }),
    )
    .await;
    let channel = created["channel"]["id"].clone();
    acme.alert_on_new_server(&app, "critical", "down").await;

    let delivered = settled(&app, &acme.owner, &channel, "DELIVERED").await;
    assert_eq!(delivered["attempts"], 3, "{delivered}");
    assert_eq!(delivered["lastError"], "the endpoint answered HTTP 500");
    assert_eq!(delivered["nextAttemptAt"], Value::Null);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let (first, second) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(first >= backoff, "first retry after {first:?}");
    assert!(second >= backoff * 2, "second retry after {second:?}");
    // Every attempt carries the same delivery id, so a receiver can drop repeats.
    assert!(
        got.iter()
            .all(|r| r.headers["x-stackgate-delivery"] == got[0].headers["x-stackgate-delivery"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_has_at_most_fifty_channels() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    diesel::sql_query(
        "insert into notification_channels (org_id, name, kind, email_to) \
         select $1, 'mail-' || g, 'email', 'ops@example.invalid' from generate_series(1, 50) g",
    )
    .bind::<diesel::sql_types::Uuid, _>(acme.org.id)
    .execute(&mut app.db.owner().await)
    .await
    .expect("fifty channels");
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            "mutation { createNotificationChannel(input: {
                name: \"one more\", kind: WEBHOOK, url: \"http://127.0.0.1:9/hook\" }) { channel { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let count = fixtures::count(
        &mut app.db.owner().await,
        "select count(*) as n from notification_channels where org_id = $1",
        acme.org.id,
    )
    .await;
    assert_eq!(count, 50, "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_give_up_after_the_last_attempt() {
    let app = TestApp::spawn_with(|c| {
        c.run_notifications = true;
        c.notify.backoff = Duration::from_millis(20);
        c.notify.idle = Duration::from_millis(20);
        c.notify.max_attempts = 2;
    })
    .await;
    let acme = acme(&app).await;
    let receiver = Receiver::start(usize::MAX).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "down", "kind": "WEBHOOK", "url": receiver.url }),
    )
    .await;
    let channel = created["channel"]["id"].clone();
    acme.alert_on_new_server(&app, "critical", "down").await;
    let failed = settled(&app, &acme.owner, &channel, "FAILED").await;
    assert_eq!(failed["attempts"], 2);
    assert_eq!(receiver.received().len(), 2);

    // The log's page after its oldest delivery is empty and keeps the channel's total.
    let paged = "query($id: ID!, $after: String) { node(id: $id) { ... on NotificationChannel {
        deliveries(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor }
          nodes { id } } } } }";
    let mut after = Value::Null;
    for expected in [json!([{ "id": failed["id"] }]), json!([])] {
        let (_, body) = app
            .graphql(
                Some(&acme.owner),
                paged,
                json!({ "id": channel, "after": after }),
            )
            .await;
        let page = &body["data"]["node"]["deliveries"];
        assert_eq!(page["nodes"], expected, "{body}");
        assert_eq!(page["totalCount"], 1, "{body}");
        assert_eq!(page["pageInfo"]["hasNextPage"], false, "{body}");
        after = page["pageInfo"]["endCursor"].clone();
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

#[tokio::test(flavor = "multi_thread")]
async fn routing_rules_pick_the_channels() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let owner = &mut app.db.owner().await;
    let project = fixtures::project(owner, &acme.org, "shop").await;
    let other = fixtures::project(owner, &acme.org, "blog").await;
    let ours = fixtures::resource(
        owner,
        &acme.org,
        acme.dock,
        crate::fixtures::Target::Server("127.0.0.1"),
    )
    .await;
    let theirs = fixtures::resource(
        owner,
        &acme.org,
        acme.dock,
        crate::fixtures::Target::Server("127.0.0.2"),
    )
    .await;
    fixtures::link(owner, &acme.org, project, "server", ours).await;
    fixtures::link(owner, &acme.org, other, "server", theirs).await;
    let project_id = stackgate_id("Project", project);
    let url = "http://127.0.0.1:9/hook";
    let critical = create(
        &app,
        &acme.owner,
        json!({ "name": "pager", "kind": "WEBHOOK", "url": url, "minSeverity": "CRITICAL" }),
    )
    .await;
    let shop = create(
        &app,
        &acme.owner,
        json!({ "name": "shop", "kind": "WEBHOOK", "url": url, "projectId": project_id }),
    )
    .await;
    let webs = create(
        &app,
        &acme.owner,
        json!({ "name": "webs", "kind": "WEBHOOK", "url": url, "resourceKind": "WEB_SERVICE" }),
    )
    .await;
    let off = create(
        &app,
        &acme.owner,
        json!({ "name": "off", "kind": "WEBHOOK", "url": url, "enabled": false }),
    )
    .await;

    fixtures::alert(owner, ours, "warning", "slow").await;
    fixtures::alert(owner, theirs, "critical", "down").await;

    let count = async |channel: &Value| {
        let page = log(&app, &acme.owner, &channel["channel"]["id"]).await;
        page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|d| d["alert"]["severity"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        count(&critical).await,
        vec!["critical"],
        "a warning does not reach a critical-only channel"
    );
    assert_eq!(
        count(&shop).await,
        vec!["warning"],
        "another project's alert does not reach a project channel"
    );
    assert!(
        count(&webs).await.is_empty(),
        "servers' alerts do not reach a web-service channel"
    );
    assert!(
        count(&off).await.is_empty(),
        "a disabled channel gets nothing"
    );
}

fn stackgate_id(type_name: &str, id: Uuid) -> String {
    stackgate::notify::send::global_id(type_name, id)
}

// ---------------------------------------------------------------------------------------------
// The outbound guard, Slack, e-mail

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_unless_allowed() {
    let app = TestApp::spawn_with(|c| c.security.allow_private_endpoints = false).await;
    let acme = acme(&app).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest",
    ] {
        for kind in ["WEBHOOK", "SLACK"] {
            let (_, body) = app
                .graphql(
                    Some(&acme.owner),
                    CREATE,
                    json!({ "input": { "name": "x", "kind": kind, "url": url } }),
                )
                .await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
            assert!(
                !body.to_string().contains("/hook"),
                "the URL is not quoted: {body}"
            );
        }
    }
    let conn = &mut app.db.owner().await;
    assert_eq!(
        fixtures::count(
            conn,
            "select count(*) as n from notification_channels where org_id = $1",
            acme.org.id
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_channels_post_text_and_keep_their_url_secret() {
    let app = app_with(Duration::from_millis(50), None).await;
    let acme = acme(&app).await;
    let receiver = Receiver::start(0).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "slack", "kind": "SLACK", "url": receiver.url }),
    )
    .await;
    assert_eq!(created["signingSecret"], Value::Null);
    assert_eq!(
        created["channel"]["url"],
        Value::Null,
        "a Slack URL is a secret"
    );
    assert_eq!(
        created["channel"]["secretHint"],
        &receiver.url[receiver.url.len() - 4..]
    );
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            "mutation($id: ID!) { testNotificationChannel(id: $id) { status event attempts alert { id } } }",
            json!({ "id": created["channel"]["id"] }),
        )
        .await;
    assert_eq!(
        body["data"]["testNotificationChannel"],
        json!({ "status": "DELIVERED", "event": "TEST", "attempts": 1, "alert": null }),
        "{body}"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let payload: Value = serde_json::from_str(&got[0].body).expect("json");
    let object = payload.as_object().expect("object");
    assert_eq!(object.len(), 1, "{payload}");
    assert!(
        payload["text"]
            .as_str()
            .is_some_and(|t| t.contains("slack")),
        "{payload}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn email_channels_send_through_the_smtp_relay() {
    let sink = SmtpSink::start().await;
    let app = app_with(Duration::from_millis(50), Some(&sink)).await;
    let acme = acme(&app).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "mail", "kind": "EMAIL", "email": "ops@example.invalid" }),
    )
    .await;
    assert_eq!(created["channel"]["email"], "ops@example.invalid");
    let channel = created["channel"]["id"].clone();
    acme.alert_on_new_server(&app, "critical", "server is unhealthy: refused")
        .await;
    settled(&app, &acme.owner, &channel, "DELIVERED").await;
    let messages = sink.messages.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let mail = &messages[0];
    assert!(mail.contains("RCPT TO:<ops@example.invalid>"), "{mail}");
    assert!(mail.contains("To: ops@example.invalid"), "{mail}");
    assert!(
        mail.contains("Subject: [critical] server is unhealthy: refused"),
        "{mail}"
    );

    // Without a relay, e-mail channels are refused.
    let plain = TestApp::spawn().await;
    let other = acme_on(&plain).await;
    let (_, body) = plain
        .graphql(
            Some(&other),
            CREATE,
            json!({ "input": { "name": "mail", "kind": "EMAIL", "email": "ops@example.invalid" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

async fn acme_on(app: &TestApp) -> String {
    acme(app).await.owner
}

// ---------------------------------------------------------------------------------------------
// Secrets, alerts handled by people, permissions

#[tokio::test(flavor = "multi_thread")]
async fn the_signing_secret_is_shown_once() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "hook", "kind": "WEBHOOK", "url": "http://127.0.0.1:9/hook" }),
    )
    .await;
    let secret = created["signingSecret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    assert_eq!(
        created["channel"]["secretHint"],
        &secret[secret.len() - 4..]
    );
    let everything = "{ viewer { organization { notificationChannels { totalCount nodes {
        id name kind url email secretHint minSeverity enabled resourceKind project { id }
        deliveries { totalCount } } } } } }";
    let (_, body) = app.graphql(Some(&acme.owner), everything, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["notificationChannels"]["totalCount"], 1,
        "{body}"
    );
    assert!(!body.to_string().contains(&secret));
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            "mutation($id: ID!) { updateNotificationChannel(id: $id, input: { name: \"renamed\" }) { name secretHint } }",
            json!({ "id": created["channel"]["id"] }),
        )
        .await;
    assert_eq!(
        body["data"]["updateNotificationChannel"]["name"], "renamed",
        "{body}"
    );
    assert!(!body.to_string().contains(&secret));
    // Stored encrypted: the plain text is nowhere in the row, nor in the audit log.
    let conn = &mut app.db.owner().await;
    let plain = fixtures::count(
        conn,
        "select count(*) as n from notification_channels c, audit_logs l where c.org_id = $1 and \
         (c::text like '%whsec_%' or l::text like '%whsec_%')",
        acme.org.id,
    )
    .await;
    assert_eq!(plain, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn people_acknowledge_and_resolve_alerts() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let receiver_url = "http://127.0.0.1:9/hook";
    let created = create(
        &app,
        &acme.owner,
        json!({ "name": "hook", "kind": "WEBHOOK", "url": receiver_url }),
    )
    .await;
    acme.alert_on_new_server(&app, "critical", "down").await;
    let alert = alerts(&app, &acme.owner).await[0]["id"].clone();
    let me = {
        let (_, body) = app
            .graphql(Some(&acme.owner), "{ viewer { user { id } } }", json!({}))
            .await;
        body["data"]["viewer"]["user"]["id"].clone()
    };
    let ack = "mutation($id: ID!, $note: String) { acknowledgeAlert(id: $id, note: $note) {
        acknowledgedAt acknowledgedBy { id } acknowledgementNote resolvedAt } }";
    let resolve = "mutation($id: ID!, $note: String) { resolveAlert(id: $id, note: $note) {
        resolvedAt resolvedBy { id } resolutionNote acknowledgedBy { id } } }";

    let viewer = app.token("acme-viewer", Some("acme"));
    let (_, body) = app
        .graphql(Some(&viewer), ack, json!({ "id": alert, "note": "mine" }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let before = chrono::Utc::now();
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            ack,
            json!({ "id": alert, "note": "  looking  " }),
        )
        .await;
    let acked = &body["data"]["acknowledgeAlert"];
    assert_eq!(acked["acknowledgedBy"]["id"], me, "{body}");
    assert_eq!(acked["acknowledgementNote"], "looking");
    assert_eq!(acked["resolvedAt"], Value::Null);
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(acked["acknowledgedAt"].clone()).expect("time");
    assert!(at >= before - chrono::Duration::seconds(5), "{at}");
    let (_, body) = app
        .graphql(Some(&acme.owner), ack, json!({ "id": alert }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "acknowledged twice: {body}");

    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            resolve,
            json!({ "id": alert, "note": "restarted" }),
        )
        .await;
    let resolved = &body["data"]["resolveAlert"];
    assert_eq!(resolved["resolvedBy"]["id"], me, "{body}");
    assert_eq!(resolved["resolutionNote"], "restarted");
    assert_eq!(resolved["acknowledgedBy"]["id"], me);
    assert!(resolved["resolvedAt"].is_string());
    let (_, body) = app
        .graphql(Some(&acme.owner), resolve, json!({ "id": alert }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "resolved twice: {body}");
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            ack,
            json!({ "id": alert, "note": "x".repeat(1001) }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // Resolving by hand notifies the channels too: opened, then resolved.
    let events: Vec<String> = log(&app, &acme.owner, &created["channel"]["id"]).await["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|d| d["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(events, vec!["RESOLVED", "OPENED"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_are_monitoring_full_and_stay_in_their_organization() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let conn = &mut app.db.owner().await;
    let globex = fixtures::org(conn, "globex").await;
    fixtures::member(conn, &globex, "globex-owner", "owner").await;
    let theirs_token = app.token("globex-owner", Some("globex"));
    let input = json!({ "name": "hook", "kind": "WEBHOOK", "url": "http://127.0.0.1:9/hook" });

    let viewer = app.token("acme-viewer", Some("acme"));
    let (_, body) = app
        .graphql(Some(&viewer), CREATE, json!({ "input": input }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app.graphql(None, CREATE, json!({ "input": input })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    // A viewer (monitoring READ) sees the channels, without changing them.
    let ours = create(&app, &acme.owner, input.clone()).await["channel"]["id"].clone();
    let (_, body) = app
        .graphql(
            Some(&viewer),
            "{ viewer { organization { notificationChannels { nodes { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["notificationChannels"]["nodes"][0]["id"], ours,
        "{body}"
    );

    let theirs = create(&app, &theirs_token, input.clone()).await["channel"]["id"].clone();
    for document in [
        "mutation($id: ID!) { updateNotificationChannel(id: $id, input: { enabled: false }) { id } }",
        "mutation($id: ID!) { deleteNotificationChannel(id: $id) }",
        "mutation($id: ID!) { testNotificationChannel(id: $id) { id } }",
    ] {
        let (_, body) = app
            .graphql(Some(&acme.owner), document, json!({ "id": theirs }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{document}: {body}");
        let (_, body) = app
            .graphql(
                Some(&acme.owner),
                document,
                json!({ "id": stackgate_id("NotificationChannel", Uuid::new_v4()) }),
            )
            .await;
        assert_eq!(
            error_code(&body),
            "NOT_FOUND",
            "unknown id, {document}: {body}"
        );
    }
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(body, json!({ "data": { "node": null } }));
    let (_, body) = app
        .graphql(
            Some(&acme.owner),
            "mutation($id: ID!) { deleteNotificationChannel(id: $id) }",
            json!({ "id": ours }),
        )
        .await;
    assert_eq!(body["data"]["deleteNotificationChannel"], ours, "{body}");
}
