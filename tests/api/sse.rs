//! GraphQL over Server-Sent Events (graphql-sse, distinct connections mode): results as
//! `event: next`, the end as `event: complete`; the caller authenticated before anything runs,
//! counted against its connection budget, and cut off when it loses access.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::{self, AcmeSite as Acme, acme_site as acme};
use crate::harness::wait::{PATIENCE, wait_until};
use crate::harness::{TestApp, error_code};

/// One open event stream.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// POSTs `query` asking for `text/event-stream`; the raw response.
    async fn post(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Self {
        let mut request = app
            .client
            .post(app.url("/graphql"))
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("sent");
        Self {
            response,
            buffer: String::new(),
        }
    }

    fn status(&self) -> u16 {
        self.response.status().as_u16()
    }

    /// The next event's name and data (comment lines skipped); `None` when the stream ends.
    async fn event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.response.chunk())
                .await
                .expect("an event within 15 s")
                .expect("the stream reads")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `next` event's result.
    async fn next(&mut self) -> Value {
        let (name, data) = self.event().await.expect("an event");
        assert_eq!(name, "next", "{data}");
        serde_json::from_str(&data).expect("JSON data")
    }

    /// Asserts the stream completes now.
    async fn completes(&mut self) {
        let (name, data) = self.event().await.expect("the complete event");
        assert_eq!(name, "complete", "{data}");
        assert!(self.event().await.is_none(), "nothing after complete");
    }
}

const LINKS: &str = "subscription($id: ID!) { projectResourcesChanged(projectId: $id) {
    change resourceId } }";

/// A query streams its one result and completes; a subscription streams a committed change.
#[tokio::test(flavor = "multi_thread")]
async fn queries_and_subscriptions_stream_as_server_sent_events() {
    let app = TestApp::spawn().await;
    let Acme {
        org,
        project,
        server,
        ..
    } = acme(&app).await;
    let alice = app.token("alice", None);

    let mut query = Stream::post(
        &app,
        Some(&alice),
        "{ viewer { organization { slug } } }",
        json!({}),
    )
    .await;
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.response.headers()["content-type"],
        "text/event-stream"
    );
    let result = query.next().await;
    assert_eq!(result["data"]["viewer"]["organization"]["slug"], "acme");
    query.completes().await;

    let id = TestApp::global_id("Project", project);
    let mut links = Stream::post(&app, Some(&alice), LINKS, json!({ "id": id })).await;
    assert_eq!(links.status(), 200);
    app.wait_subscribed(1).await;
    fixtures::link(&mut app.db.owner().await, &org, project, "server", server).await;
    let event = links.next().await;
    assert_eq!(
        event["data"]["projectResourcesChanged"]["change"], "LINKED",
        "{event}"
    );
    assert_eq!(
        event["data"]["projectResourcesChanged"]["resourceId"],
        TestApp::global_id("Server", server)
    );
}

/// Without valid credentials nothing runs: 401 and a JSON error, not a stream.
#[tokio::test]
async fn an_unauthenticated_stream_is_refused_before_it_starts() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    for token in [None, Some("not-a-token")] {
        let refused = Stream::post(&app, token, "{ __typename }", json!({})).await;
        assert_eq!(refused.status(), 401);
        let body: Value = refused.response.json().await.expect("JSON");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
}

/// A member removed while subscribed gets `FORBIDDEN` and the stream completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_caller_loses_access() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let (alice, bob) = (app.token("alice", None), app.token("bob", None));
    let id = TestApp::global_id("Project", acme.project);
    let mut links = Stream::post(&app, Some(&bob), LINKS, json!({ "id": id })).await;
    assert_eq!(links.status(), 200);
    app.wait_subscribed(1).await;
    let (_, removed) = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { removeMember(userId: $id) }",
            json!({ "id": TestApp::global_id("User", acme.bob) }),
        )
        .await;
    assert_eq!(removed["data"]["removeMember"], true, "{removed}");
    let result = links.next().await;
    assert_eq!(error_code(&result), "FORBIDDEN", "{result}");
    links.completes().await;
}

/// Event streams count against the caller's connection budget, like WebSockets.
#[tokio::test(flavor = "multi_thread")]
async fn streams_count_against_the_connection_budget() {
    let app = TestApp::spawn_with(|config| config.security.sockets.per_principal = 1).await;
    let acme = acme(&app).await;
    let alice = app.token("alice", None);
    let id = TestApp::global_id("Project", acme.project);
    let first = Stream::post(&app, Some(&alice), LINKS, json!({ "id": id })).await;
    assert_eq!(first.status(), 200);
    let second = Stream::post(&app, Some(&alice), LINKS, json!({ "id": id })).await;
    assert_eq!(second.status(), 429);
    drop(first);
    // The place is given back when the first stream goes.
    let released = async || {
        Stream::post(&app, Some(&alice), "{ __typename }", json!({}))
            .await
            .status()
            == 200
    };
    wait_until("the first stream's place released", PATIENCE, released).await;
}

/// A live query over an event stream: its result, then a new one when the project is renamed.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_query_streams_its_changes() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let alice = app.token("alice", None);
    let live = "query @live { viewer { organization { projects { nodes { name } } } } }";
    let mut stream = Stream::post(&app, Some(&alice), live, json!({})).await;
    let first = stream.next().await;
    let names = &first["data"]["viewer"]["organization"]["projects"]["nodes"];
    assert_eq!(names[0]["name"], "Project site", "{first}");
    app.wait_subscribed(1).await;
    let (_, renamed) = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Live\" }) { id } }",
            json!({ "id": TestApp::global_id("Project", acme.project) }),
        )
        .await;
    assert!(renamed.get("errors").is_none(), "{renamed}");
    let next = stream.next().await;
    let names = &next["data"]["viewer"]["organization"]["projects"]["nodes"];
    assert_eq!(names[0]["name"], "Live", "{next}");
}
