//! The GridPane and Cloudflare docks against their fakes: every page, status mappings, secrets
//! stripped, 429 and 5xx waited out, refusals and malformed pages applying nothing, the deletion
//! sweep, and the key check of `createDock`. The engine harness is `sync.rs`'s.

use std::time::{Duration, Instant};

use serde_json::json;
use stackgate::devkit::fake::{FakeKind, FakeProvider, Fault, FaultAction, Script};
use stackgate::sync::Kind;

use crate::fixtures;
use crate::harness::error_code;
use crate::sync::{Env, KEY, assert_mappings, captured_logs, secrets_stored, snapshot, text};

/// The fakes of this file, each with the kind its faults are put on (one it lists first).
const FAKES: [(FakeKind, Kind); 2] = [
    (FakeKind::GridPane, Kind::Server),
    (FakeKind::Cloudflare, Kind::Domain),
];

#[tokio::test(flavor = "multi_thread")]
async fn gridpane_lists_every_page_maps_statuses_and_strips_secrets() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(25)
        .web_services(23)
        .domains(12)
        .page_size(10);
    let (url, fake) = FakeProvider::start(FakeKind::GridPane, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::GridPane, &url, KEY).await;
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.created, 60);
    assert_eq!(
        report.counts.pages,
        3 + 3 + 2,
        "ten per page, links followed"
    );
    assert_eq!(fake.requests() as i64, report.counts.requests);

    let conn = &mut env.db.owner().await;
    assert_mappings(
        conn,
        dock,
        &[
            (
                "servers",
                &[
                    ("active", "active"),
                    ("building", "provisioning"),
                    ("inactive", "stopped"),
                    ("failed", "error"),
                ],
            ),
            (
                "web_services",
                &[
                    ("active", "active"),
                    ("building", "provisioning"),
                    ("disabled", "stopped"),
                    ("failed", "error"),
                ],
            ),
            (
                "domains",
                &[
                    ("active", "active"),
                    ("pending", "provisioning"),
                    ("failed", "error"),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(
        secrets_stored(conn, dock).await,
        0,
        "no password, salt or DNS key"
    );
    let server = text(
        conn,
        "select primary_ip_address || ' ' || vcpus || ' ' || memory_mb || ' ' || image || ' ' || region \
         || ' ' || (full_api_data->'system_users'->0->>'username') as t \
         from servers where dock_id = $1 and name = 'server-00000'",
        dock,
    )
    .await;
    assert_eq!(
        server.as_deref(),
        Some("127.1.0.1 2 4096 ubuntu 24.04 nyc1 gpuser"),
        "fields mapped; what is not a secret is kept"
    );
    let site = text(
        conn,
        "select production_url || ' ' || environment || ' ' || framework as t \
         from web_services where dock_id = $1 and name = 'app-00000'",
        dock,
    )
    .await;
    assert_eq!(
        site.as_deref(),
        Some("https://app-00000 production wordpress")
    );
    let dns = text(
        conn,
        "select (full_api_data->'user_dns')::text as t from domains where dock_id = $1 \
         and name = 'site-00011.invalid'",
        dock,
    )
    .await;
    assert_eq!(
        dns.as_deref(),
        Some(r#"{"id": 4, "provider": {"id": 2, "name": "cloudflare"}, "dns_provider_id": 2}"#),
        "the last page of the nested domain envelope was read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_keeps_each_zones_dns_records_within_the_cap() {
    let env = Env::new().await;
    let script = Script::new(KEY).domains(55).dns_records(2);
    let (url, fake) = FakeProvider::start(FakeKind::Cloudflare, script)
        .await
        .expect("fake");
    fake.set_dns_records(Kind::Domain, 0, 650);
    fake.set_dns_records(Kind::Domain, 1, 500);
    let dock = env.dock(env.org, FakeKind::Cloudflare, &url, KEY).await;
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.created, 55);
    assert_eq!(
        report.counts.pages,
        2 + 6 + 5 + 53,
        "two pages of 50 zones; 650 records stop one page past the cap, 500 read whole"
    );
    let conn = &mut env.db.owner().await;
    assert_mappings(
        conn,
        dock,
        &[(
            "domains",
            &[
                ("active", "active"),
                ("pending", "provisioning"),
                ("initializing", "provisioning"),
                ("moved", "stopped"),
            ],
        )],
    )
    .await;
    assert_eq!(
        secrets_stored(conn, dock).await,
        0,
        "no owner e-mail, no verification key"
    );
    let records = "select string_agg(jsonb_array_length(full_api_data->'dns_records') || ' ' ||         (full_api_data->>'dns_records_truncated'), ',' order by name) as t from domains         where dock_id = $1 and name in ('site-00000.invalid', 'site-00001.invalid', 'site-00002.invalid')";
    assert_eq!(
        text(conn, records, dock).await.as_deref(),
        Some("500 true,500 false,2 false")
    );
    let zone = "select (full_api_data->'plan'->>'name') || ' ' || (full_api_data->'name_servers'->>0)         || ' ' || (full_api_data->'owner')::text || ' ' || (full_api_data->'dns_records'->1->>'type')         || ' ' || domain_name as t from domains where dock_id = $1 and name = 'site-00054.invalid'";
    assert_eq!(
        text(conn, zone, dock).await.as_deref(),
        Some(
            r#"Free Website ada.ns.cloudflare.invalid {"id": "owner-1", "type": "user"} AAAA site-00054.invalid"#
        )
    );

    // A page whose envelope says `success: false` fails the run; nothing is applied.
    let before = snapshot(conn).await;
    fake.remove(Kind::Domain, 54);
    fake.set_faults(vec![Fault::on_page(
        Kind::Domain,
        2,
        FaultAction::Unsuccessful,
    )]);
    let report = env.run(dock).await;
    let error = report.error.expect("an unsuccessful page fails the run");
    assert!(error.contains("`success` is not true"), "{error}");
    assert_eq!(snapshot(conn).await, before);
    fake.set_faults(Vec::new());
    let report = env.run(dock).await;
    assert_eq!(report.counts.deleted, 1, "{:?}", report.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_passing_5xx_are_waited_out() {
    for (kind, first) in FAKES {
        let env = Env::new().await;
        let script = Script::new(KEY)
            .count(first, 30)
            .page_size(10)
            .fault(
                Fault::on_page(
                    first,
                    2,
                    FaultAction::TooManyRequests(Duration::from_millis(300)),
                )
                .times(1),
            )
            .fault(Fault::on_page(first, 3, FaultAction::ServerError(503)).times(2));
        let (url, fake) = FakeProvider::start(kind, script).await.expect("fake");
        let dock = env.dock(env.org, kind, &url, KEY).await;
        let started = Instant::now();
        let report = env.run(dock).await;
        assert!(report.succeeded(), "{kind:?}: {:?}", report.error);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{kind:?}: retry-after was honoured"
        );
        assert_eq!(report.counts.created, 30, "{kind:?}");
        assert_eq!(
            report.counts.requests,
            report.counts.pages + 3,
            "{kind:?}: one 429 and two 503 retried"
        );
        assert_eq!(fake.requests() as i64, report.counts.requests, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_bad_pages_apply_nothing_and_the_sweep_follows_the_provider() {
    let logs = captured_logs();
    for (kind, first) in FAKES {
        let env = Env::new().await;
        let script = Script::new(KEY).count(first, 25).page_size(10);
        let script = kind
            .kinds()
            .iter()
            .filter(|k| **k != first)
            .fold(script, |s, k| s.count(*k, 3));
        let (url, fake) = FakeProvider::start(kind, script).await.expect("fake");
        let dock = env.dock(env.org, kind, &url, KEY).await;
        assert!(env.run(dock).await.succeeded(), "{kind:?}");
        let conn = &mut env.db.owner().await;
        let before = snapshot(conn).await;
        // A successful run now would rename one resource and mark another deleted.
        let gone = fake.resources(first)[20].name.clone();
        fake.rename(first, 0, "renamed");
        fake.remove(first, 20);

        let cases: Vec<(&str, Fault, &str)> = vec![
            (
                "401",
                Fault::always(FaultAction::Unauthorized),
                "credentials refused (HTTP 401)",
            ),
            (
                "malformed JSON on page 3",
                Fault::on_page(first, 3, FaultAction::MalformedJson),
                "malformed response: not JSON",
            ),
            (
                "5xx past the retries",
                Fault::on_page(first, 2, FaultAction::ServerError(502)),
                "HTTP 502 after 3",
            ),
        ];
        for (name, fault, expected) in cases {
            fake.set_faults(vec![fault]);
            let report = env.run(dock).await;
            let error = report
                .error
                .clone()
                .unwrap_or_else(|| panic!("{kind:?} {name}: the run should fail"));
            assert!(error.contains(expected), "{kind:?} {name}: {error}");
            assert!(!error.contains(KEY), "{kind:?} {name}: {error}");
            for words in ["Unauthenticated", "Authentication error"] {
                assert!(!error.contains(words), "{kind:?} {name}: {error}");
            }
            assert_eq!(
                snapshot(conn).await,
                before,
                "{kind:?} {name}: previous data untouched"
            );
        }
        let logs = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
        assert!(!logs.contains(KEY), "{kind:?}: the logs contain the key");

        fake.set_faults(Vec::new());
        let report = env.run(dock).await;
        assert!(report.succeeded(), "{kind:?}: {:?}", report.error);
        assert_eq!(
            (report.counts.updated, report.counts.deleted),
            (1, 1),
            "{kind:?}"
        );
        let table = match first {
            Kind::Server => "servers",
            _ => "domains",
        };
        let sql = format!(
            "select string_agg(name || '=' || status, ',' order by name) as t from {table} \
             where dock_id = $1 and (status = 'deleted' or name = 'renamed')"
        );
        assert_eq!(
            text(conn, &sql, dock).await,
            Some(format!("renamed=active,{gone}=deleted")),
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_dock_checks_the_key_with_each_provider() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-1-owner", Some("org-1"));
    for (kind, first) in FAKES {
        let (url, _fake) = FakeProvider::start(kind, Script::new(KEY).count(first, 4))
            .await
            .expect("fake");
        let create = "mutation($p: String!, $key: String!, $url: String) { createDock(input: { \
            name: $p, provider: $p, apiKey: $key, endpoint: $url }) { id provider apiKeyHint } }";
        let vars = |key: &str| json!({ "p": kind.provider(), "key": key, "url": url });
        let (_, body) = app
            .graphql(Some(&owner), create, vars("wrong-token-9999"))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{kind:?}: {body}");
        let text = body.to_string();
        assert!(
            text.contains("the provider refused the API key (HTTP 401)"),
            "{kind:?}: {text}"
        );
        assert!(!text.contains("wrong-token-9999"), "{kind:?}: {text}");

        let (_, body) = app.graphql(Some(&owner), create, vars(KEY)).await;
        let dock = body["data"]["createDock"].clone();
        assert_eq!(dock["provider"], kind.provider(), "{kind:?}: {body}");
        assert_eq!(dock["apiKeyHint"], &KEY[KEY.len() - 4..], "{kind:?}");
        let (_, body) = app
            .graphql(
                Some(&owner),
                "mutation($id: ID!) { syncDock(id: $id) { id } }",
                json!({ "id": dock["id"] }),
            )
            .await;
        let finished = app
            .finished_run(&owner, &body["data"]["syncDock"]["id"])
            .await;
        assert_eq!(finished["status"], "SUCCESS", "{kind:?}: {finished}");
        assert_eq!(finished["created"], 4, "{kind:?}: {finished}");
    }
}
