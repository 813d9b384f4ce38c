//! Adversarial tests: budgets, before any work and for unauthenticated callers too (rows C–F),
//! rate limits, WebSocket budgets, and a fuzz-style pass of random and mutated documents.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use stackgate::security::rate::{Rate, RateSettings};
use tokio_tungstenite::tungstenite::Message;

use super::{BOTH, Ws, ask};
use crate::fixtures;
use crate::harness::wait::wait_until;
use crate::harness::ws::bearer;
use crate::harness::{TestApp, error_code};

/// `levels` fragments, each spreading the next twice: 2^levels selections from ~80 bytes a level.
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

/// Row E: a 2 KB document of nested fragment spreads used to take 2^k validation steps (k=26:
/// 41 s on the async workers). Now it is refused in a walk of its own length, over both
/// transports, and `/healthz` does not notice.
#[tokio::test(flavor = "multi_thread")]
async fn a_fragment_bomb_is_refused_before_validation() {
    let (app, alice) = fixtures::with_alice(TestApp::spawn().await).await;
    let bomb = fragment_bomb(26);
    assert!(bomb.len() < 4096, "{}", bomb.len());
    for transport in BOTH {
        let started = Instant::now();
        let body = ask(&app, transport, &alice, &bomb, json!({})).await;
        assert_eq!(
            error_code(&body),
            "QUERY_TOO_COMPLEX",
            "{transport:?}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{transport:?}: refused in {:?}",
            started.elapsed()
        );
    }
    // Unauthenticated: refused the same way, before authentication.
    let (_, body) = app.graphql(None, &bomb, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
}

/// Row F: one org id repeated 5,000 times with `resources(first: 500)` made a 90 MB answer. Now
/// `nodes` takes at most 100 ids, each counted in the complexity.
#[tokio::test(flavor = "multi_thread")]
async fn nodes_is_capped_and_every_id_counts() {
    let (app, alice) = fixtures::with_alice(TestApp::spawn().await).await;
    let (_, body) = app
        .graphql(
            Some(&alice),
            "{ viewer { organization { id } } }",
            json!({}),
        )
        .await;
    let org = body["data"]["viewer"]["organization"]["id"].clone();
    let query = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Organization {
        resources(first: 500) { nodes { id name } } } } }";
    for transport in BOTH {
        let many = json!({ "ids": vec![org.clone(); 5000] });
        let ids_only = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";
        let body = ask(&app, transport, &alice, ids_only, many).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{transport:?}: {body}");
        // Within the id cap, the complexity counts every id: 100 × 500 × 2 fields.
        let hundred = json!({ "ids": vec![org.clone(); 100] });
        let body = ask(&app, transport, &alice, query, hundred).await;
        assert_eq!(
            error_code(&body),
            "QUERY_TOO_COMPLEX",
            "{transport:?}: {body}"
        );
    }
    let few = json!({ "ids": vec![org.clone(); 3] });
    let (_, body) = app.graphql(Some(&alice), query, few).await;
    assert_eq!(body["data"]["nodes"][2]["id"], org, "{body}");
}

/// Responses beyond the size limit are refused with a clear error, over HTTP and WebSocket.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_response_is_refused() {
    let app = TestApp::spawn_with(|c| c.security.response_limit = 2048).await;
    let (app, alice) = fixtures::with_alice(app).await;
    let aliases: String = (0..40)
        .map(|i| {
            format!("a{i}: viewer {{ user {{ id name email }} organization {{ id name slug }} }} ")
        })
        .collect();
    for transport in BOTH {
        let query = format!("{{ {aliases} }}");
        let body = ask(&app, transport, &alice, &query, json!({})).await;
        assert_eq!(
            error_code(&body),
            "QUERY_TOO_COMPLEX",
            "{transport:?}: {body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit")),
            "{transport:?}: {body}"
        );
        let small = ask(
            &app,
            transport,
            &alice,
            "{ a0: viewer { user { name } } }",
            json!({}),
        )
        .await;
        assert_eq!(
            small["data"]["a0"]["user"]["name"], "alice",
            "{transport:?}: {small}"
        );
    }
}

/// Row C: 20,000 unauthenticated POSTs with distinct `operationName`s made 20,001 Prometheus
/// series. Unauthenticated operations never create a series, and authenticated names are capped.
#[tokio::test(flavor = "multi_thread")]
async fn metric_labels_stay_bounded() {
    let (app, alice) = fixtures::with_alice(TestApp::spawn().await).await;
    for i in 0..300 {
        let name = format!("Probe{i}x{}", uuid::Uuid::new_v4().simple());
        let query = format!("query {name} {{ __typename }}");
        app.graphql(None, &query, json!({})).await;
        if i < 260 {
            app.graphql(Some(&alice), &query, json!({})).await;
        }
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("stackgate_graphql_requests_total{"))
        .count();
    assert!(
        series <= stackgate::metrics::MAX_OPERATION_LABELS + 12,
        "{series} series"
    );
    assert!(
        metrics.contains("operation=\"unauthenticated\""),
        "{metrics}"
    );
    assert!(metrics.contains("operation=\"other\""));
}

/// Rate limits: over a limit, `RATE_LIMITED` with a `retry-after`, per principal and per address
/// for unauthenticated and failed-authentication traffic; mutations per organization.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_rate_limited_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.security.rates = RateSettings {
            per_principal: Some(Rate::per_minute(5)),
            per_ip: Some(Rate::per_minute(3)),
            mutations_per_org: Some(Rate::per_minute(2)),
            ..RateSettings::off()
        }
    })
    .await;
    let (app, alice) = fixtures::with_alice(app).await;
    let query = "{ __typename }";
    let post = |token: Option<String>, query: String| {
        let (client, url) = (app.client.clone(), app.url("/graphql"));
        async move {
            let mut request = client.post(url).json(&json!({ "query": query }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("sent");
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (
                response.status().as_u16(),
                retry,
                response.json::<Value>().await.expect("json"),
            )
        }
    };
    // Unauthenticated and bad credentials share the address's budget of 3.
    for _ in 0..2 {
        let (_, _, body) = post(None, query.into()).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let (_, _, body) = post(Some("not-a-token".into()), query.into()).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let (status, retry, body) = post(Some("not-a-token".into()), query.into()).await;
    assert_eq!((status, error_code(&body)), (429, "RATE_LIMITED"), "{body}");
    assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)));
    // A valid caller has its own budget: 2 mutations, then the organization's limit.
    for i in 0..2 {
        let m = format!(
            "mutation {{ createProject(input: {{ name: \"P{i}\", slug: \"p{i}\" }}) {{ id }} }}"
        );
        let (_, _, body) = post(Some(alice.clone()), m).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let m = "mutation { createProject(input: { name: \"P9\", slug: \"p9\" }) { id } }";
    let (status, retry, body) = post(Some(alice.clone()), m.into()).await;
    assert_eq!((status, error_code(&body)), (429, "RATE_LIMITED"), "{body}");
    assert!(retry.is_some());
    // Then the principal's own limit of 5 (3 operations so far).
    let mut codes = vec![];
    for _ in 0..3 {
        let (_, _, body) = post(Some(alice.clone()), query.into()).await;
        codes.push(error_code(&body).to_owned());
    }
    assert_eq!(
        codes,
        ["<no code>", "<no code>", "RATE_LIMITED"],
        "{codes:?}"
    );
    // Over WebSocket too.
    let body = Ws::open(&app, &alice).await.run(query, json!({})).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(
        body["extensions"]["retryAfterSeconds"].as_u64().is_some(),
        "{body}"
    );
}

/// Row D: a message before `connection_init`, sent in 1 MB fragments up to 30 MB, was buffered and
/// parsed (RSS +600 MB a socket). Messages beyond the body limit close the socket, and the first
/// message must be small.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_messages_are_bounded_before_and_after_init() {
    let app = TestApp::spawn_with(|c| c.body_limit = 64 * 1024).await;
    let (app, alice) = fixtures::with_alice(app).await;
    // Over the body limit, before init: the connection closes without an answer.
    let mut ws = Ws::connect(&app).await;
    let huge = format!(
        "{{\"type\":\"connection_init\",\"payload\":{{\"x\":\"{}\"}}}}",
        "a".repeat(200 * 1024)
    );
    let _ = ws.socket.send(Message::text(huge)).await;
    assert!(ws.message().await.is_none(), "closed");
    // Within the body limit but over the init limit (16 KiB): closed too.
    let mut ws = Ws::connect(&app).await;
    let big = format!(
        "{{\"type\":\"connection_init\",\"payload\":{{\"authorization\":\"Bearer {alice}\",\"x\":\"{}\"}}}}",
        "a".repeat(32 * 1024)
    );
    let _ = ws.socket.send(Message::text(big)).await;
    assert!(ws.message().await.is_none(), "closed");
    // After init, the body limit: a 200 KB operation closes the socket.
    let mut ws = Ws::open(&app, &alice).await;
    let id = ws
        .subscribe(
            &format!("{{ __typename }} # {}", "x".repeat(200 * 1024)),
            json!({}),
        )
        .await;
    let answer = ws.message().await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|m| m["id"] != id.as_str() || m["type"] != "next"),
        "{answer:?}"
    );
}

/// WebSocket budgets: connections per principal and subscriptions per connection.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_connections_and_subscriptions_are_capped() {
    let app = TestApp::spawn_with(|c| {
        c.security.sockets.per_principal = 2;
        c.security.sockets.subscriptions = 2;
    })
    .await;
    let (app, alice) = fixtures::with_alice(app).await;
    let mut first = Ws::open(&app, &alice).await;
    let _second = Ws::open(&app, &alice).await;
    let mut third = Ws::connect(&app).await;
    assert!(
        third.init(bearer(&alice)).await.is_none(),
        "the third connection is refused"
    );
    // Three at once: whichever is admitted last is refused (they are admitted concurrently).
    let sub = "subscription { syncEvents { phase } }";
    for _ in 0..3 {
        first.subscribe(sub, json!({})).await;
    }
    let refused = first.message().await.expect("one refusal");
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(error_code(&refused["payload"]), "RATE_LIMITED", "{refused}");
    // Closing a connection gives its place back.
    drop(first);
    wait_until("the place given back", Duration::from_secs(5), async || {
        let mut again = Ws::connect(&app).await;
        again
            .init(bearer(&alice))
            .await
            .is_some_and(|m| m["type"] == "connection_ack")
    })
    .await;
}

/// Random and mutated documents and variables through the pipeline: never a panic, never a
/// response without a code on its errors, never an internal error.
#[tokio::test(flavor = "multi_thread")]
async fn fuzzed_documents_get_coded_errors() {
    let (app, alice) = fixtures::with_alice(TestApp::spawn().await).await;
    let seeds = [
        "{ viewer { organization { projects(first: 2) { nodes { id resources(first: 3) { nodes { id name } } } } } } }",
        "query($id: ID!) { node(id: $id) { id ... on Project { name } } }",
        "mutation { createProject(input: { name: \"x\", slug: \"x\" }) { id } }",
        "{ nodes(ids: [\"a\", \"b\"]) { id } }",
        "subscription { syncEvents { phase } }",
    ];
    let alphabet: Vec<char> = "{}()[]:$!@.,\"\\ #\n0123456789abcxyzQ_-=&|"
        .chars()
        .collect();
    let mut rng = Lcg(0x5eed);
    for round in 0..300 {
        let seed = seeds[round % seeds.len()];
        let mut chars: Vec<char> = seed.chars().collect();
        for _ in 0..(1 + rng.next() % 6) {
            let at = (rng.next() as usize) % (chars.len() + 1);
            match rng.next() % 3 {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, alphabet[(rng.next() as usize) % alphabet.len()]),
                _ if at < chars.len() => {
                    chars[at] = alphabet[(rng.next() as usize) % alphabet.len()]
                }
                _ => {}
            }
        }
        let query: String = chars.into_iter().collect();
        let variables = match rng.next() % 4 {
            0 => json!({ "id": "UHJvamVjdDp4" }),
            1 => json!({ "id": 12 }),
            2 => json!({ "id": null, "extra": [1, {"a": "b"}] }),
            _ => json!({}),
        };
        let (status, body) = app.graphql(Some(&alice), &query, variables).await;
        assert!(status == 200, "{query}: {status} {body}");
        if let Some(errors) = body["errors"].as_array() {
            for error in errors {
                let code = error["extensions"]["code"].as_str().unwrap_or("<none>");
                assert!(
                    stackgate::error::code::ALL.contains(&code) && code != "INTERNAL_SERVER_ERROR",
                    "{query}: {body}"
                );
            }
        }
    }
}

/// A small deterministic pseudo-random sequence (no dependency, same inputs every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}
