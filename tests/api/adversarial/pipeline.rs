//! Adversarial tests: the one operation pipeline. The same bad inputs give the same codes over
//! HTTP and WebSocket (rows J and the pipeline item); a socket's caller is authenticated again for
//! every operation, and loses its subscriptions when access goes (row A); an operation never
//! holds two pooled connections (the pool-exhaustion finding).

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use super::{BOTH, Transport, Ws, ask};
use crate::fixtures;
use crate::harness::wait::{PATIENCE, wait_until};
use crate::harness::{TestApp, error_code};

/// An app with `acme`, its owner `alice` and a member `mallory`; tokens for both.
async fn acme() -> (TestApp, String, String) {
    let (app, alice) = fixtures::with_alice(TestApp::spawn().await).await;
    let acme = fixtures::find_org(&mut app.db.owner().await, "acme").await;
    fixtures::member(&mut app.db.owner().await, &acme, "mallory", "member").await;
    let mallory = app.token("mallory", None);
    (app, alice, mallory)
}

fn nested(depth: usize) -> String {
    let mut q = String::from("{ viewer { organization { projects(first: 1) { nodes { ");
    for _ in 0..depth {
        q.push_str("resources(first: 1) { nodes { projects { ");
    }
    q.push_str("id");
    for _ in 0..depth {
        q.push_str(" } } }");
    }
    q.push_str(" } } } } }");
    q
}

/// The table of bad inputs: each answers with the same code over both transports (row J: over
/// WebSocket, depth and complexity refusals carried no code).
#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_the_same_codes_over_both_transports() {
    let (app, alice, _) = acme().await;
    let aliases: String = (0..60).map(|i| format!("a{i}: __typename ")).collect();
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("syntax", "{ viewer { ".into(), json!({}), "BAD_USER_INPUT"),
        (
            "unknown field",
            "{ nope }".into(),
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "bad variable",
            "query($id: ID!) { node(id: $id) { id } }".into(),
            json!({ "id": 5 }),
            "BAD_USER_INPUT",
        ),
        (
            "malformed id",
            "{ node(id: \"!!\") { id } }".into(),
            json!({}),
            "BAD_USER_INPUT",
        ),
        ("too deep", nested(8), json!({}), "QUERY_TOO_COMPLEX"),
        (
            "too complex",
            "{ viewer { organization { resources(first: 100000) { nodes { id name } } } } }".into(),
            json!({}),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "too many aliases",
            format!("{{ {aliases} }}"),
            json!({}),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "unknown operation",
            "query A { __typename } query B { __typename }".into(),
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "fragment cycle",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into(),
            json!({}),
            "BAD_USER_INPUT",
        ),
    ];
    for (name, query, variables, code) in &cases {
        for transport in BOTH {
            let body = ask(&app, transport, &alice, query, variables.clone()).await;
            assert_eq!(
                error_code(&body),
                *code,
                "{name} over {transport:?}: {body}"
            );
        }
    }
    // No credentials, and bad credentials: the same codes too.
    let (_, body) = app
        .graphql(None, "{ viewer { user { name } } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let body = ask(
        &app,
        Transport::Http,
        &alice,
        "subscription { syncEvents { phase } }",
        json!({}),
    )
    .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "a subscription over HTTP: {body}"
    );
}

/// Row A: after `removeMember`, the removed member's open socket can run nothing more, and its
/// subscription ends with the error; nothing it tried was written.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_member_s_open_socket_is_refused_at_the_next_operation() {
    let (app, alice, mallory) = acme().await;
    let mut socket = Ws::open(&app, &mallory).await;
    let sub = socket
        .subscribe("subscription { syncEvents { phase } }", json!({}))
        .await;
    let body = socket.run("{ viewer { user { name } } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["user"]["name"], "mallory", "{body}");

    let (_, body) = app
        .graphql(
            Some(&alice),
            "{ viewer { organization { members { user { id name } } } } }",
            json!({}),
        )
        .await;
    let member = body["data"]["viewer"]["organization"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user"]["name"] == "mallory")
        .expect("mallory")["user"]["id"]
        .clone();
    let (_, body) = app
        .graphql(
            Some(&alice),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": member }),
        )
        .await;
    assert_eq!(body["data"]["removeMember"], true, "{body}");

    let create = "mutation { createProject(input: { name: \"Evil\", slug: \"evil\" }) { id } }";
    let body = socket.run(create, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // Left with no organization, they may only list and accept invitations.
    let body = socket
        .run("{ viewer { organization { slug } } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // The subscription ends with the same error, without waiting for an event.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let message = socket.message().await.expect("the subscription's end");
        if message["id"] == sub.as_str() {
            assert_eq!(message["type"], "next", "{message}");
            assert_eq!(error_code(&message["payload"]), "FORBIDDEN", "{message}");
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let mut conn = app.db.owner().await;
    let count: i64 = count(
        &mut conn,
        "select count(*) from projects where slug = 'evil'",
    )
    .await;
    assert_eq!(count, 0, "nothing was written");
}

/// Row A: a token that expires while its socket is open stops working at its expiry, for
/// operations and subscriptions alike.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_stops_working_on_its_open_socket() {
    let (app, _, _) = acme().await;
    let short = app.jwt.mint("alice", None, 3).expect("mint");
    let mut socket = Ws::open(&app, &short).await;
    let sub = socket
        .subscribe("subscription { syncEvents { phase } }", json!({}))
        .await;
    let body = socket.run("{ viewer { user { name } } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["user"]["name"], "alice", "{body}");
    // The subscription ends at the expiry (its socket's renewal wakes for it).
    loop {
        let message = socket.message().await.expect("the subscription's end");
        if message["id"] == sub.as_str() {
            assert_eq!(
                error_code(&message["payload"]),
                "UNAUTHENTICATED",
                "{message}"
            );
            break;
        }
    }
    let create = "mutation { createProject(input: { name: \"Late\", slug: \"late\" }) { id } }";
    let body = socket.run(create, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

/// The pool-exhaustion finding: a document of two mutations used to hold its read connection
/// while each mutation took a second one, so as many such documents as pooled connections
/// starved everyone. Now each finishes on a pool of one.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_mutation_document_needs_one_connection() {
    let app = TestApp::spawn_with(|c| c.pool_size = 1).await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let alice = app.token("alice", None);
    let documents = (0..4).map(|i| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let query = format!(
                "mutation {{ a: createProject(input: {{ name: \"A{i}\", slug: \"a{i}\" }}) {{ id slug }}
                             b: createProject(input: {{ name: \"B{i}\", slug: \"b{i}\" }}) {{ id slug }} }}"
            );
            app.graphql(Some(&alice), &query, json!({})).await.1
        }
    });
    let started = Instant::now();
    let bodies = futures_util::future::join_all(documents).await;
    for body in &bodies {
        assert!(body.get("errors").is_none(), "{body}");
        assert!(body["data"]["b"]["slug"].is_string(), "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "no request waited out the pool: {:?}",
        started.elapsed()
    );
    let made: i64 = count(&mut conn, "select count(*) from projects").await;
    assert_eq!(made, 8);
}

/// An exhausted pool answers `RATE_LIMITED` after its bounded wait instead of stalling.
#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_rate_limited_after_its_wait() {
    let app = TestApp::spawn_with(|c| {
        c.pool_size = 1;
        c.security.pool_timeout = Duration::from_millis(300);
    })
    .await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let alice = app.token("alice", None);
    // Hold the only connection: lock a row the pool's next statement needs.
    conn.batch_execute("begin; lock table organizations in access exclusive mode")
        .await
        .expect("lock");
    let slow = {
        let (app, alice) = (&app, alice.clone());
        async move {
            app.graphql(
                Some(&alice),
                "{ viewer { organization { slug } } }",
                json!({}),
            )
            .await
        }
    };
    // Once the first request waits on the lock with the only connection, a second one asks;
    // the lock is released once it has its answer.
    let quick = async {
        let mut watcher = app.db.owner().await;
        let waiting = "select count(*) from pg_stat_activity \
                       where datname = current_database() and wait_event_type = 'Lock'";
        wait_until("a request waiting on the lock", PATIENCE, async || {
            count(&mut watcher, waiting).await > 0
        })
        .await;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            PATIENCE,
            app.graphql(
                Some(&alice),
                "{ viewer { organization { slug } } }",
                json!({}),
            ),
        )
        .await
        .expect("an answer while the pool is exhausted");
        let waited = started.elapsed();
        conn.batch_execute("rollback").await.expect("unlock");
        (answer, waited)
    };
    let (_, ((status, body), waited)) = tokio::join!(slow, quick);
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(status, 429, "{body}");
    assert!(waited < Duration::from_secs(2), "bounded wait: {waited:?}");
}

async fn count(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect("count")
        .count
}
