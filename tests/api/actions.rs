//! Provider actions (`performResourceAction`) against the fakes: each provider's action carried
//! out and seen in the fake's state, refusals and a rejected key recorded as failed runs without
//! the dock's key, unsupported actions, permissions and tenancy refused before any request
//! leaves, idempotency keys, the run history, `node`, and the `actionRuns` subscription.

use std::time::Duration;

use serde_json::{Value, json};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Fault, FaultAction, Script};
use stackgate::sync::Kind;

use crate::fixtures;
use crate::harness::wait::{PATIENCE, wait_for};
use crate::harness::ws::Ws;
use crate::harness::{TestApp, error_code};

/// The docks' API key: it must never show in a response, a summary or the audit log.
const KEY: &str = "act-key-5e1f0c9a-never-shown";

const PERFORM: &str = "mutation($r: ID!, $a: ResourceAction!, $k: String) {
    performResourceAction(resourceId: $r, action: $a, idempotencyKey: $k) {
        id action status summary startedAt finishedAt
        resource { id name } requestedBy { email } } }";

const RUN_FIELDS: &str = "id action status summary resource { id } requestedBy { email }";

/// A fake of `kind` with `script`, and the id of a dock of `org` (`org-0` or `org-1`) on it,
/// created and synced through the API by the org's owner.
async fn docked(app: &TestApp, org: &str, kind: FakeKind, script: Script) -> (FakeProvider, Value) {
    let (url, fake) = FakeProvider::start(kind, script).await.expect("fake");
    let dock = dock_on(app, org, kind, &url).await;
    (fake, dock)
}

/// A dock of `org` on the fake at `url`, synced once.
async fn dock_on(app: &TestApp, org: &str, kind: FakeKind, url: &str) -> Value {
    let owner = app.token(&format!("{org}-owner"), Some(org));
    let create = "mutation($p: String!, $key: String!, $url: String) { createDock(input: { \
        name: $p, provider: $p, apiKey: $key, endpoint: $url }) { id } }";
    let (_, body) = app
        .graphql(
            Some(&owner),
            create,
            json!({ "p": kind.provider(), "key": KEY, "url": url }),
        )
        .await;
    let dock = body["data"]["createDock"]["id"].clone();
    assert!(dock.is_string(), "{kind:?}: {body}");
    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { syncDock(id: $id) { id } }",
            json!({ "id": dock }),
        )
        .await;
    let run = app
        .finished_run(&owner, &body["data"]["syncDock"]["id"])
        .await;
    assert_eq!(run["status"], "SUCCESS", "{kind:?}: {run}");
    dock
}

/// The global id of the resource named `name` of `kind` on `dock`.
async fn resource(app: &TestApp, dock: &Value, kind: Kind, name: &str) -> String {
    let dock =
        stackgate::graphql::ids::decode_as(dock.as_str().expect("id"), "Dock").expect("a dock id");
    let (table, type_name) = match kind {
        Kind::Server => ("servers", "Server"),
        Kind::WebService => ("web_services", "WebService"),
        Kind::Domain => ("domains", "Domain"),
        Kind::Database => ("databases", "Database"),
    };
    let sql = format!("select id from {table} where dock_id = '{dock}' and name = '{name}'");
    let id = fixtures::id_of(&mut app.db.owner().await, &sql).await;
    TestApp::global_id(type_name, id)
}

/// Asks `performResourceAction` as `token` (none: unauthenticated); the response body.
async fn perform(
    app: &TestApp,
    token: Option<&str>,
    resource: &str,
    action: &str,
    key: Option<&str>,
) -> Value {
    let (_, body) = app
        .graphql(
            token,
            PERFORM,
            json!({ "r": resource, "a": action, "k": key }),
        )
        .await;
    body
}

/// The run a successful `performResourceAction` returned.
fn run_of(body: &Value) -> Value {
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["performResourceAction"].clone()
}

/// How many action runs the organization `slug` has, as the schema owner counts them.
async fn runs_stored(app: &TestApp, slug: &str) -> i64 {
    let conn = &mut app.db.owner().await;
    let org = fixtures::find_org(conn, slug).await;
    fixtures::count(
        conn,
        "select count(*) as n from action_runs where org_id = $1",
        org.id,
    )
    .await
}

/// How many audit entries and action runs of any organization hold [`KEY`].
async fn key_stored(app: &TestApp) -> i64 {
    let conn = &mut app.db.owner().await;
    let sql = format!(
        "select count(*) as n from (select coalesce(message, '') || metadata::text as t \
           from audit_logs union all select coalesce(summary, '') from action_runs) x \
         where t like '%{KEY}%' and $1::uuid is not null"
    );
    fixtures::count(conn, &sql, uuid::Uuid::nil()).await
}

/// The fake's resource `index` of `kind` once its status is `status` (bounded wait).
async fn settled(fake: &FakeProvider, kind: Kind, index: usize, status: &str) -> Vec<String> {
    let what = format!("the fake's {kind:?} {index} to be {status}");
    wait_for(&what, PATIENCE, async || {
        let r = fake.resources(kind)[index].clone();
        match r.status == status {
            true => Ok(r.actions),
            false => Err(r.status),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_provider_carries_out_its_action() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    // Long enough that the status in between is still there when the mutation returns.
    let slow = Duration::from_secs(2);

    // (fake, script, kind, name, action, the fake's word, status at once, status later,
    // words of the summary)
    let cases = [
        (
            FakeKind::DigitalOcean,
            Script::new(KEY).servers(1),
            Kind::Server,
            "server-00000",
            "REBOOT",
            "reboot",
            "off",
            "active",
            vec!["droplet action", "(reboot)"],
        ),
        (
            FakeKind::Linode,
            Script::new(KEY).servers(1),
            Kind::Server,
            "server-00000",
            "POWER_OFF",
            "shutdown",
            "shutting_down",
            "offline",
            vec!["shutdown accepted"],
        ),
        (
            FakeKind::Vercel,
            Script::new(KEY).web_services(1),
            Kind::WebService,
            "app-00000",
            "REDEPLOY",
            "redeploy",
            "BUILDING",
            "READY",
            vec!["deployment dpl_0_r1"],
        ),
        (
            FakeKind::GridPane,
            Script::new(KEY).web_services(1),
            Kind::WebService,
            "app-00000",
            "PURGE_CACHE",
            "purge_cache",
            "active",
            "active",
            vec!["cache purged"],
        ),
        (
            FakeKind::Cloudflare,
            Script::new(KEY).domains(1),
            Kind::Domain,
            "site-00000.invalid",
            "PURGE_CACHE",
            "purge_cache",
            "active",
            "active",
            vec!["everything purged"],
        ),
    ];
    let n = cases.len();
    for (kind, script, rkind, name, action, word, now, later, words) in cases {
        let (fake, dock) = docked(&app, "org-0", kind, script.action_time(slow)).await;
        let id = resource(&app, &dock, rkind, name).await;
        let before = fake.requests();
        let run = run_of(&perform(&app, Some(&owner), &id, action, None).await);
        assert_eq!(run["status"], "SUCCEEDED", "{kind:?}: {run}");
        assert_eq!(run["action"], action, "{kind:?}");
        assert_eq!(run["resource"]["id"], id.as_str(), "{kind:?}");
        assert_eq!(run["resource"]["name"], name, "{kind:?}");
        assert_eq!(
            run["requestedBy"]["email"], "org-0-owner@example.test",
            "{kind:?}"
        );
        assert!(run["finishedAt"].is_string(), "{kind:?}: {run}");
        let summary = run["summary"].as_str().unwrap_or_default();
        for w in words {
            assert!(summary.contains(w), "{kind:?}: {summary}");
        }
        assert_eq!(fake.requests(), before + 1, "{kind:?}: one POST");
        let at_once = fake.resources(rkind)[0].clone();
        assert_eq!(at_once.actions, vec![word.to_owned()], "{kind:?}");
        assert_eq!(at_once.status, now, "{kind:?}: the status at once");
        assert_eq!(
            settled(&fake, rkind, 0, later).await,
            vec![word.to_owned()],
            "{kind:?}"
        );
    }
    let audit = app.audit(&owner, &["resource.action"]).await;
    let ok = audit.iter().filter(|(_, r)| r == "success").count();
    assert_eq!((ok, audit.len()), (n, n), "{audit:?}");
    assert_eq!(runs_stored(&app, "org-0").await, n as i64);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_failed_runs_without_the_key() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let (fake, dock) = docked(
        &app,
        "org-0",
        FakeKind::DigitalOcean,
        Script::new(KEY).servers(1),
    )
    .await;
    let id = resource(&app, &dock, Kind::Server, "server-00000").await;

    // Powering on a running droplet: the provider says no (422); a run, not an error.
    let body = perform(&app, Some(&owner), &id, "POWER_ON", None).await;
    let run = run_of(&body);
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(run["finishedAt"].is_string(), "{run}");
    let summary = run["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("422"), "{summary}");
    let droplet = fake.resources(Kind::Server)[0].clone();
    assert_eq!(
        (droplet.status.as_str(), droplet.actions.len()),
        ("active", 0)
    );

    // The key no longer accepted (rotated at the provider): a failed run, the key nowhere.
    fake.set_token("rotated-at-the-provider");
    let body = perform(&app, Some(&owner), &id, "REBOOT", None).await;
    let text = body.to_string();
    let run = run_of(&body);
    assert_eq!(run["status"], "FAILED", "{run}");
    let summary = run["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("credentials refused (HTTP 401)"),
        "{summary}"
    );
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(fake.resources(Kind::Server)[0].actions.len(), 0);

    // Both runs are kept, newest first, and audited as asked and as failed.
    let query = format!(
        "query($id: ID!) {{ node(id: $id) {{ ... on Resource {{ actionRuns {{ {RUN_FIELDS} }} }} }} }}"
    );
    let (_, body) = app.graphql(Some(&owner), &query, json!({ "id": id })).await;
    assert!(!body.to_string().contains(KEY), "{body}");
    let runs = body["data"]["node"]["actionRuns"].clone();
    let statuses: Vec<(&str, &str)> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![("REBOOT", "FAILED"), ("POWER_ON", "FAILED")],
        "{body}"
    );
    let audit = app.audit(&owner, &["resource.action"]).await;
    let count = |r: &str| audit.iter().filter(|(_, x)| x == r).count();
    assert_eq!((count("success"), count("error")), (2, 2), "{audit:?}");
    assert_eq!(
        key_stored(&app).await,
        0,
        "the key is in the audit log or a run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_actions_are_bad_input_and_send_nothing() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let script = Script::new(KEY).servers(1).domains(1);
    let (fake, dock) = docked(&app, "org-0", FakeKind::DigitalOcean, script).await;
    let droplet = resource(&app, &dock, Kind::Server, "server-00000").await;
    let domain = resource(&app, &dock, Kind::Domain, "site-00000.invalid").await;
    let before = fake.requests();
    for (id, action) in [
        (&droplet, "REDEPLOY"),
        (&droplet, "PURGE_CACHE"),
        (&domain, "PURGE_CACHE"),
        (&domain, "REBOOT"),
    ] {
        let body = perform(&app, Some(&owner), id, action, None).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{action}: {body}");
        assert!(body["data"].is_null(), "{action}: {body}");
    }
    assert_eq!(fake.requests(), before, "no request reached the provider");
    assert_eq!(runs_stored(&app, "org-0").await, 0);
    let query = "query($a: ID!, $b: ID!) {
        a: node(id: $a) { ... on Resource { availableActions } }
        b: node(id: $b) { ... on Resource { availableActions } } }";
    let (_, body) = app
        .graphql(Some(&owner), query, json!({ "a": droplet, "b": domain }))
        .await;
    assert_eq!(
        body["data"],
        json!({ "a": { "availableActions": ["REBOOT", "POWER_OFF", "POWER_ON"] },
                "b": { "availableActions": [] } }),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_who_may_act_reaches_the_provider() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let viewer = app.token("org-0-viewer", Some("org-0"));
    let stranger = app.token("org-1-owner", Some("org-1"));
    let (fake, dock) = docked(
        &app,
        "org-0",
        FakeKind::DigitalOcean,
        Script::new(KEY).servers(1),
    )
    .await;
    let id = resource(&app, &dock, Kind::Server, "server-00000").await;
    let before = fake.requests();

    let available = "query($id: ID!) { node(id: $id) { ... on Resource { availableActions } } }";
    let (_, body) = app
        .graphql(Some(&viewer), available, json!({ "id": id }))
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "availableActions": [] }),
        "the viewer sees the droplet but may not act on it: {body}"
    );
    let (_, body) = app
        .graphql(Some(&owner), available, json!({ "id": id }))
        .await;
    assert_eq!(
        body["data"]["node"]["availableActions"],
        json!(["REBOOT", "POWER_OFF", "POWER_ON"]),
        "{body}"
    );

    let body = perform(&app, Some(&viewer), &id, "REBOOT", None).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let audit = app.audit(&owner, &["resource.action"]).await;
    assert_eq!(
        audit,
        vec![("resource.action".to_owned(), "denied".to_owned())]
    );

    // Another organization's resource is as unknown as an id that never existed.
    let theirs = perform(&app, Some(&stranger), &id, "REBOOT", None).await;
    let random = TestApp::global_id("Server", uuid::Uuid::new_v4());
    let nowhere = perform(&app, Some(&stranger), &random, "REBOOT", None).await;
    assert_eq!(error_code(&theirs), "NOT_FOUND", "{theirs}");
    assert_eq!(error_code(&nowhere), "NOT_FOUND", "{nowhere}");
    assert_eq!(
        theirs["errors"][0]["message"], nowhere["errors"][0]["message"],
        "the answer does not tell an existing resource apart"
    );
    let body = perform(&app, None, &id, "REBOOT", None).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    assert_eq!(fake.requests(), before, "no request reached the provider");
    assert!(fake.resources(Kind::Server)[0].actions.is_empty());
    assert_eq!(runs_stored(&app, "org-0").await, 0);
    assert_eq!(runs_stored(&app, "org-1").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_acts_once() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    // Droplets 0 and 4 are active (the status words cycle through four).
    let (fake, dock) = docked(
        &app,
        "org-0",
        FakeKind::DigitalOcean,
        Script::new(KEY).servers(5),
    )
    .await;
    let id = resource(&app, &dock, Kind::Server, "server-00000").await;
    let before = fake.requests();

    let first = run_of(&perform(&app, Some(&owner), &id, "REBOOT", Some("retry-1")).await);
    let again = run_of(&perform(&app, Some(&owner), &id, "REBOOT", Some("retry-1")).await);
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(again, first, "the same run, unchanged");
    assert_eq!(fake.requests(), before + 1, "one POST");
    assert_eq!(fake.resources(Kind::Server)[0].actions, vec!["reboot"]);

    let body = perform(&app, Some(&owner), &id, "POWER_OFF", Some("retry-1")).await;
    assert_eq!(error_code(&body), "CONFLICT", "another action: {body}");
    let other = resource(&app, &dock, Kind::Server, "server-00004").await;
    let body = perform(&app, Some(&owner), &other, "REBOOT", Some("retry-1")).await;
    assert_eq!(error_code(&body), "CONFLICT", "another resource: {body}");

    let long = "k".repeat(101);
    for key in ["", long.as_str(), "bell\u{7}", "tab\there", "naïve"] {
        let body = perform(&app, Some(&owner), &other, "REBOOT", Some(key)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{key:?}: {body}");
    }
    assert_eq!(
        fake.requests(),
        before + 1,
        "nothing sent for a refused key"
    );
    assert_eq!(runs_stored(&app, "org-0").await, 1);

    // The longest key is accepted, and keys are per organization.
    let longest = "k".repeat(100);
    let run = run_of(&perform(&app, Some(&owner), &other, "REBOOT", Some(&longest)).await);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(fake.resources(Kind::Server)[4].actions, vec!["reboot"]);
    let (theirs, their_dock) = docked(
        &app,
        "org-1",
        FakeKind::DigitalOcean,
        Script::new(KEY).servers(1),
    )
    .await;
    let their_id = resource(&app, &their_dock, Kind::Server, "server-00000").await;
    let stranger = app.token("org-1-owner", Some("org-1"));
    let run = run_of(&perform(&app, Some(&stranger), &their_id, "REBOOT", Some("retry-1")).await);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_ne!(run["id"], first["id"]);
    assert_eq!(theirs.resources(Kind::Server)[0].actions, vec!["reboot"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_listed_newest_first_and_only_to_their_organization() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let stranger = app.token("org-1-owner", Some("org-1"));
    let script = Script::new(KEY).web_services(2);
    let (fake, dock) = docked(&app, "org-0", FakeKind::GridPane, script).await;
    let site = resource(&app, &dock, Kind::WebService, "app-00000").await;
    let other = resource(&app, &dock, Kind::WebService, "app-00001").await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = run_of(&perform(&app, Some(&owner), &site, "PURGE_CACHE", None).await);
        ids.push(run["id"].clone());
    }
    run_of(&perform(&app, Some(&owner), &other, "PURGE_CACHE", None).await);
    assert_eq!(fake.resources(Kind::WebService)[0].actions.len(), 3);

    let query = "query($id: ID!, $n: Int) { node(id: $id) { ... on Resource {
        actionRuns(first: $n) { id } } } }";
    let listed = async |n: Value| {
        let (_, body) = app
            .graphql(Some(&owner), query, json!({ "id": site, "n": n }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["node"]["actionRuns"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>()
    };
    let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
    assert_eq!(listed(json!(null)).await, newest_first, "only this site's");
    assert_eq!(listed(json!(2)).await, newest_first[..2].to_vec());

    let node =
        format!("query($id: ID!) {{ node(id: $id) {{ ... on ActionRun {{ {RUN_FIELDS} }} }} }}");
    let (_, body) = app
        .graphql(Some(&owner), &node, json!({ "id": ids[0] }))
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "id": ids[0], "action": "PURGE_CACHE", "status": "SUCCEEDED",
                "summary": body["data"]["node"]["summary"], "resource": { "id": site },
                "requestedBy": { "email": "org-0-owner@example.test" } }),
        "{body}"
    );
    assert!(body["data"]["node"]["summary"].is_string(), "{body}");
    let (_, body) = app
        .graphql(Some(&stranger), &node, json!({ "id": ids[0] }))
        .await;
    assert_eq!(
        body,
        json!({ "data": { "node": null } }),
        "another org's run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subscription_follows_a_run_within_its_organization() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let stranger = app.token("org-1-owner", Some("org-1"));
    let (url, fake) = FakeProvider::start(FakeKind::GridPane, Script::new(KEY).web_services(1))
        .await
        .expect("fake");
    let ours = dock_on(&app, "org-0", FakeKind::GridPane, &url).await;
    let theirs = dock_on(&app, "org-1", FakeKind::GridPane, &url).await;
    let site = resource(&app, &ours, Kind::WebService, "app-00000").await;
    let their_site = resource(&app, &theirs, Kind::WebService, "app-00000").await;

    let subscription = "subscription($r: ID) { actionRuns(resourceId: $r) { id action status } }";
    let mut mine = Ws::subscribed(&app.ws_url(), &owner, subscription, json!({ "r": site })).await;
    let mut other = Ws::subscribed(&app.ws_url(), &stranger, subscription, json!({})).await;
    app.wait_subscribed(2).await;

    // The provider answers slowly, so the run is still running when its first event is read.
    fake.set_faults(vec![
        Fault::always(FaultAction::Slow(Duration::from_secs(1))).times(1),
    ]);
    let run = run_of(&perform(&app, Some(&owner), &site, "PURGE_CACHE", None).await);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let started = mine.event("actionRuns").await;
    assert_eq!(
        started,
        json!({ "id": run["id"], "action": "PURGE_CACHE", "status": "RUNNING" })
    );
    let finished = mine.event("actionRuns").await;
    assert_eq!(
        finished,
        json!({ "id": run["id"], "action": "PURGE_CACHE", "status": "SUCCEEDED" })
    );

    // org-1's subscriber: its first event is its own run, so none of org-0's reached it.
    let own = run_of(&perform(&app, Some(&stranger), &their_site, "PURGE_CACHE", None).await);
    let first = other.event("actionRuns").await;
    assert_eq!(first["id"], own["id"], "{first}");
    assert_ne!(own["id"], run["id"]);
}
