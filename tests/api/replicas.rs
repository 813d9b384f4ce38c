//! Read replicas against a real streaming standby (`harness::replicas`): where reads go,
//! read-your-writes through `X-Stackgate-Lsn` and its cookie, row-level security on the
//! standby, and a stopped or lagging standby skipped without an error to clients.

use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use stackgate::db::Scope;

use crate::fixtures;
use crate::harness::replicas::Replicated;
use crate::harness::wait;
use crate::harness::ws::Ws;

const PROJECTS: &str = "{ viewer { organization { projects(first: 50) { nodes { slug } } } } }";
const CREATE: &str =
    "mutation($input: CreateProjectInput!) { createProject(input: $input) { slug } }";

/// Posts `query` as `token` with extra request headers; the response's headers and body.
async fn post(
    r: &Replicated,
    token: &str,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = r
        .app
        .client
        .post(r.app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("JSON"))
}

/// The slugs of the viewer's organization's projects, failing on any error.
async fn slugs(r: &Replicated, token: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let (_, _, body) = post(r, token, PROJECTS, json!({}), headers).await;
    assert!(body["errors"].is_null(), "{body}");
    let mut slugs: Vec<String> = body["data"]["viewer"]["organization"]["projects"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|n| n["slug"].as_str().unwrap_or_default().to_owned())
        .collect();
    slugs.sort();
    slugs
}

/// `acme` with owner alice and project `site`, and `globex` with project `secret`; alice's token.
async fn two_orgs(r: &Replicated) -> (String, fixtures::Org, fixtures::Org, uuid::Uuid) {
    let conn = &mut r.app.db.owner().await;
    let acme = fixtures::org(conn, "acme").await;
    let alice = fixtures::member(conn, &acme, "alice", "owner").await;
    fixtures::project(conn, &acme, "site").await;
    let globex = fixtures::org(conn, "globex").await;
    fixtures::project(conn, &globex, "secret").await;
    (r.app.token("alice", Some("acme")), acme, globex, alice)
}

#[derive(diesel::QueryableByName)]
struct Slug {
    #[diesel(sql_type = Text)]
    slug: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_read_the_standby_under_the_same_row_level_security() {
    let r = Replicated::spawn(Duration::from_secs(5), Duration::from_millis(500)).await;
    let (token, acme, globex, alice) = two_orgs(&r).await;
    r.wait_standing("in use").await;

    let before = r.standby_scans("projects").await;
    assert_eq!(slugs(&r, &token, &[]).await, ["site"]);
    r.wait_standby_read("projects", before).await;

    // The serving role on the standby sees exactly what the tenant setting allows.
    let standby_url = r.standby.standby_serving_url("stackgate").expect("URL");
    let url = secrecy::ExposeSecret::expose_secret(&standby_url).to_owned();
    let conn = &mut stackgate::db::connect_as_app(url, "replica-test")
        .await
        .expect("standby as the serving role");
    let seen = async |conn: &mut diesel_async::AsyncPgConnection, scope: Scope| {
        let rows: Vec<Slug> = scope
            .transaction_on(conn, async |c| {
                Ok(diesel::sql_query("select slug from projects order by slug")
                    .load(c)
                    .await?)
            })
            .await
            .expect("read on the standby");
        rows.into_iter().map(|s| s.slug).collect::<Vec<_>>()
    };
    assert_eq!(seen(conn, Scope::org(acme.id, alice)).await, ["site"]);
    assert_eq!(seen(conn, Scope::org(globex.id, alice)).await, ["secret"]);
    assert!(seen(conn, Scope::default()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_is_read_back_through_its_position_while_the_standby_is_paused() {
    let r = Replicated::spawn(Duration::from_secs(60), Duration::from_millis(300)).await;
    let (token, ..) = two_orgs(&r).await;
    r.wait_standing("in use").await;
    r.on_standby("select pg_wal_replay_pause()").await;

    let input = json!({ "input": { "name": "Launch", "slug": "launch" } });
    let (_, headers, body) = post(&r, &token, CREATE, input, &[]).await;
    assert_eq!(body["data"]["createProject"]["slug"], "launch", "{body}");
    let lsn = headers
        .get("x-stackgate-lsn")
        .and_then(|v| v.to_str().ok())
        .expect("a mutation's response carries its WAL position")
        .to_owned();
    assert!(stackgate::db::replicas::Lsn::parse(&lsn).is_some(), "{lsn}");
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("and a cookie")
        .to_owned();
    assert!(
        cookie.starts_with(&format!("stackgate_lsn={lsn};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // The standby has not replayed the write: the primary serves, after the bounded wait.
    let cookie_header = format!("stackgate_lsn={lsn}");
    for headers in [
        vec![("x-stackgate-lsn", lsn.as_str())],
        vec![("cookie", cookie_header.as_str())],
    ] {
        let started = std::time::Instant::now();
        assert_eq!(slugs(&r, &token, &headers).await, ["launch", "site"]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wait is bounded"
        );
    }
    let (_, headers, _) = post(&r, &token, PROJECTS, json!({}), &[]).await;
    assert!(
        headers.get("x-stackgate-lsn").is_none(),
        "only writes answer with a position"
    );

    // Once replayed, the standby serves the same read.
    r.on_standby("select pg_wal_replay_resume()").await;
    let before = r.standby_scans("projects").await;
    assert_eq!(
        slugs(&r, &token, &[("x-stackgate-lsn", &lsn)]).await,
        ["launch", "site"]
    );
    r.wait_standby_read("projects", before).await;
}

/// The shared response cache drops an answer when the event of a write reaches this replica;
/// until then, a read carrying the write's position is not answered from it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_answer_never_hides_the_write_a_read_carries() {
    let r = Replicated::spawn_adjusted(Duration::from_secs(5), Duration::from_millis(300), |c| {
        c.security.response_cache_bytes = 1 << 20;
        // The relay publishes at most this late: the write's event arrives well after the read.
        c.events.poll = Duration::from_secs(1);
    })
    .await;
    let (token, ..) = two_orgs(&r).await;
    // The rows were written without events: let the standby replay them before anything is
    // cached.
    wait::wait_for(
        "the standby to replay the fixtures",
        wait::PATIENCE,
        async || {
            let conn = &mut r.standby_owner().await;
            let found = diesel::sql_query("select slug from projects where slug = 'secret'")
                .load::<Slug>(conn)
                .await
                .map_err(|e| e.to_string())?;
            (!found.is_empty())
                .then_some(())
                .ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
    let server = r.app.server.as_ref().expect("running");
    let cache = server.state.pipeline.response_cache();
    assert_eq!(slugs(&r, &token, &[]).await, ["site"]);
    let hits = cache.hits();
    assert_eq!(slugs(&r, &token, &[]).await, ["site"]);
    assert_eq!(cache.hits(), hits + 1, "the second read is a cache hit");

    let input = json!({ "input": { "name": "Launch", "slug": "launch" } });
    let (_, headers, _) = post(&r, &token, CREATE, input, &[]).await;
    let lsn = headers
        .get("x-stackgate-lsn")
        .and_then(|v| v.to_str().ok())
        .expect("a position")
        .to_owned();
    assert_eq!(
        slugs(&r, &token, &[("x-stackgate-lsn", &lsn)]).await,
        ["launch", "site"],
        "a read carrying the write sees it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_position_header_is_refused_and_a_malformed_cookie_ignored() {
    let r = Replicated::spawn(Duration::from_secs(5), Duration::from_millis(100)).await;
    let (token, ..) = two_orgs(&r).await;
    for bad in ["nonsense", "0/0", "1/2/3", "123456789/0", "-1/5"] {
        let (status, _, body) =
            post(&r, &token, PROJECTS, json!({}), &[("x-stackgate-lsn", bad)]).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            crate::harness::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
    }
    let cookie = [("cookie", "stackgate_lsn=garbage; other=1")];
    assert_eq!(slugs(&r, &token, &cookie).await, ["site"]);
    // A position far ahead of the primary is waited for at most the bounded wait.
    let started = std::time::Instant::now();
    let ahead = [("x-stackgate-lsn", "FFFFFFFF/FFFFFFFF")];
    assert_eq!(slugs(&r, &token, &ahead).await, ["site"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_standby_is_skipped_without_an_error_to_clients() {
    let mut r = Replicated::spawn(Duration::from_secs(5), Duration::from_millis(200)).await;
    let (token, ..) = two_orgs(&r).await;
    r.wait_standing("in use").await;
    assert_eq!(slugs(&r, &token, &[]).await, ["site"]);

    r.standby.stop().expect("standby stops");
    for _ in 0..5 {
        assert_eq!(slugs(&r, &token, &[]).await, ["site"]);
    }
    r.wait_standing("down").await;
    assert_eq!(slugs(&r, &token, &[]).await, ["site"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_standby_is_skipped_until_it_catches_up() {
    let r = Replicated::spawn(Duration::from_millis(400), Duration::from_millis(100)).await;
    let (token, acme, ..) = two_orgs(&r).await;
    r.wait_standing("in use").await;

    r.on_standby("select pg_wal_replay_pause()").await;
    fixtures::project(&mut r.app.db.owner().await, &acme, "late").await;
    r.wait_standing("lagging").await;
    let before = r.standby_scans("projects").await;
    assert_eq!(slugs(&r, &token, &[]).await, ["late", "site"]);
    assert!(r.readyz().await.1.contains("lagging"));

    r.on_standby("select pg_wal_replay_resume()").await;
    r.wait_standing("in use").await;
    assert_eq!(slugs(&r, &token, &[]).await, ["late", "site"]);
    r.wait_standby_read("projects", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_rerun_never_reads_a_standby_that_has_not_replayed_its_event() {
    let r = Replicated::spawn(Duration::from_secs(60), Duration::from_millis(200)).await;
    let (token, acme, ..) = two_orgs(&r).await;
    r.wait_standing("in use").await;
    // With 60 s of lag allowed, the standby may be in use before it has `site`.
    r.wait_replayed().await;
    let live =
        "query Live @live { viewer { organization { projects(first: 50) { nodes { slug } } } } }";
    let mut ws = Ws::subscribed(&r.app.ws_url(), &token, live, json!({})).await;
    let first = ws.event("viewer").await;
    assert_eq!(
        first["organization"]["projects"]["nodes"],
        json!([{ "slug": "site" }])
    );
    r.app.wait_subscribed(1).await;

    // Replay stops: the event of the next write arrives, its commit is not on the standby.
    r.on_standby("select pg_wal_replay_pause()").await;
    fixtures::project(&mut r.app.db.owner().await, &acme, "late").await;
    let next = ws.event("viewer").await;
    let mut slugs: Vec<&str> = next["organization"]["projects"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{next}"))
        .iter()
        .filter_map(|n| n["slug"].as_str())
        .collect();
    slugs.sort_unstable();
    assert_eq!(slugs, ["late", "site"], "the re-run saw the event's commit");

    // A socket's own mutation is read back by its next query, whatever the standby did.
    let mut socket = Ws::open(&r.app, &token).await;
    let created = socket
        .query(CREATE, json!({ "input": { "name": "Ws", "slug": "ws" } }))
        .await;
    assert_eq!(created["data"]["createProject"]["slug"], "ws", "{created}");
    let read = socket.query(PROJECTS, json!({})).await;
    let nodes = &read["data"]["viewer"]["organization"]["projects"]["nodes"];
    assert!(nodes.to_string().contains("\"ws\""), "{read}");
    r.on_standby("select pg_wal_replay_resume()").await;
}
