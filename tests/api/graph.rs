//! The project graph: every read type, pagination edges, the O(depth) statement bound, limits.

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};

const DASHBOARD: &str = include_str!("../../bench/dashboard.graphql");

/// A server over a database seeded at `scale`, and a token for `org-0`'s owner.
async fn seeded(scale: u32) -> (TestApp, String) {
    let app = fixtures::seeded_at(scale).await;
    let token = app.token("org-0-owner", Some("org-0"));
    (app, token)
}

/// The body of a query's answer as sent (its keys in the order written).
async fn body_text(app: &TestApp, token: &str, query: &str) -> String {
    app.client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

/// Runs a query asking for the statement count; returns the body and the count.
pub(crate) async fn traced(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
) -> (Value, Option<u64>) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("x-stackgate-trace", "statements")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("json");
    let statements = body["extensions"]["sqlStatements"].as_u64();
    (body, statements)
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_costs_the_same_statements_at_any_scale() {
    let mut counts = Vec::new();
    for scale in [1, 2] {
        let (app, token) = seeded(scale).await;
        let (body, statements) = traced(&app, &token, DASHBOARD, json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        let projects = &body["data"]["viewer"]["organization"]["projects"];
        assert_eq!(projects["totalCount"], json!(10 * scale));
        let edges = projects["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), 10 * scale as usize);
        for edge in edges {
            let resources = edge["node"]["resources"]["edges"]
                .as_array()
                .expect("resources");
            assert_eq!(resources.len(), 20);
            for r in resources {
                assert!(r["node"]["dock"]["provider"].is_string(), "{r}");
                assert_eq!(
                    r["denormalizedStatus"], r["node"]["status"],
                    "links never drift: {r}"
                );
            }
            let h = &edge["node"]["healthSummary"];
            let sum: i64 = ["healthy", "degraded", "unhealthy", "unknown"]
                .iter()
                .map(|k| h[k].as_i64().unwrap_or(0))
                .sum();
            assert_eq!(sum, 20, "health counts cover every linked resource");
        }
        counts.push(statements.expect("statement count reported"));
    }
    assert_eq!(
        counts[0], counts[1],
        "statements do not grow with rows: {counts:?}"
    );
    assert!(counts[0] <= 12, "at most 12 statements, got {}", counts[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_lists_stay_batched() {
    let (app, token) = seeded(1).await;
    let query = "{ viewer { organization {
        docks { edges { node { name resources(first: 5) { totalCount nodes { name dock { name } projects { slug } } }
                              syncRuns(first: 2) { totalCount nodes { status dock { name } } } } } }
        resources(first: 30, kinds: [SERVER, DATABASE]) { totalCount nodes { __typename projects { name } } } } } }";
    let (body, statements) = traced(&app, &token, query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let docks = body["data"]["viewer"]["organization"]["docks"]["edges"]
        .as_array()
        .expect("docks");
    assert_eq!(docks.len(), 4);
    for dock in docks {
        let runs = &dock["node"]["syncRuns"];
        assert!(runs["totalCount"].as_i64().unwrap_or(0) >= 1, "{runs}");
        let resources = dock["node"]["resources"]["nodes"]
            .as_array()
            .expect("nodes");
        assert_eq!(resources.len(), 5);
        assert!(
            resources
                .iter()
                .all(|r| r["dock"]["name"] == dock["node"]["name"])
        );
    }
    let kinds: Vec<&str> = body["data"]["viewer"]["organization"]["resources"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["__typename"].as_str().unwrap_or(""))
        .collect();
    assert!(
        kinds.iter().all(|k| *k == "Server" || *k == "Database"),
        "{kinds:?}"
    );
    assert!(
        statements.expect("count") <= 16,
        "4 docks nested two levels deep: {statements:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_exposes_its_fields() {
    let (app, token) = seeded(1).await;
    let query = "{ viewer { organization { name slug
        teams { id name } clients { id name } members { role user { email } } roles { name isBuiltin permissions }
        projects(first: 1) { nodes { id name slug description createdAt updatedAt client { name } team { name }
          resources(first: 20) { totalCount edges { cursor linkedAt denormalizedName node {
            id kind name provider providerResourceId status providerStatus region lastSeenAt createdAt updatedAt
            fullApiData health { state checkedAt latencyMs message } dock { id apiKeyHint syncIntervalSeconds syncInProgress lastSyncError }
            ... on Server { primaryIpAddress ipv6 vcpus memoryMb diskGb image }
            ... on WebService { productionUrl environment framework }
            ... on Domain { domainName expiresAt autoRenew }
            ... on Database { engine version host port } } } } } } } } }";
    let (body, _) = traced(&app, &token, query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let org = &body["data"]["viewer"]["organization"];
    assert_eq!(org["teams"].as_array().map(Vec::len), Some(2));
    assert_eq!(org["clients"].as_array().map(Vec::len), Some(2));
    assert_eq!(org["roles"].as_array().map(Vec::len), Some(4));
    assert!(org["members"].as_array().is_some_and(|m| m.len() >= 4));
    let edges = org["projects"]["nodes"][0]["resources"]["edges"]
        .as_array()
        .expect("edges");
    let typenames: std::collections::HashSet<&str> = edges
        .iter()
        .filter_map(|e| e["node"]["kind"].as_str())
        .collect();
    assert_eq!(
        typenames.len(),
        4,
        "a project links all four kinds: {typenames:?}"
    );
    for edge in edges {
        assert_eq!(edge["denormalizedName"], edge["node"]["name"]);
        assert_eq!(
            edge["node"]["dock"]["apiKeyHint"], "0000",
            "owners see the key hint"
        );
    }

    let viewer = app.token("org-0-viewer", Some("org-0"));
    let (body, _) = traced(&app, &viewer, "{ viewer { organization { docks { nodes { apiKeyHint } } resources(first: 3) { nodes { fullApiData } } } } }", json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let org = &body["data"]["viewer"]["organization"];
    assert!(
        org["docks"]["nodes"]
            .as_array()
            .expect("docks")
            .iter()
            .all(|d| d["apiKeyHint"].is_null()),
        "{org}"
    );
    assert!(
        org["resources"]["nodes"]
            .as_array()
            .expect("r")
            .iter()
            .all(|r| r["fullApiData"].is_null()),
        "{org}"
    );
}

/// A project's resource edges, their nodes, health and dock are resolved in place (plain fields
/// without futures): fragments, aliases, `__typename` and repeated fields answer exactly as the
/// same selection through `nodes(ids:)`, which async-graphql resolves itself. (Debug builds also
/// check each plain field against its resolver.)
#[tokio::test(flavor = "multi_thread")]
async fn objects_resolved_in_place_answer_as_resolved_fields_do() {
    let (app, token) = seeded(1).await;
    let selection = "fragment Same on Resource {
          __typename kind
          ... on Resource { id name }
          ...Kinds
          label: name
          provider providerResourceId status providerStatus region tags lastSeenAt createdAt updatedAt
          health { state }
          health { checkedAt __typename }
          dock { name }
          dock { provider lastSyncStatus __typename id lastSyncAt lastSyncError syncIntervalSeconds apiKeyHint syncInProgress }
          availableActions
          healthHistory(first: 1) { totalCount }
          ... on Domain { id }
        }
        fragment Kinds on Resource {
          ... on Server { primaryIpAddress ipv6 vcpus memoryMb diskGb image }
          ... on WebService { productionUrl environment framework }
          ... on Domain { domainName expiresAt autoRenew }
          ... on Database { engine version host port }
        }";
    let in_place = format!(
        "{{ viewer {{ organization {{ projects(first: 2) {{ nodes {{ resources(first: 20) {{
          edges {{ ...Edge c2: cursor cursor node {{ ...Same }} }} nodes {{ ...Same }} }} }} }} }} }} }}
        fragment Edge on ProjectResourceEdge {{ linkedAt denormalizedName denormalizedStatus }}
        {selection}"
    );
    let (body, _) = traced(&app, &token, &in_place, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let mut ids = Vec::new();
    let mut placed = Vec::new();
    for project in body["data"]["viewer"]["organization"]["projects"]["nodes"]
        .as_array()
        .expect("projects")
    {
        let resources = &project["resources"];
        let edges = resources["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), 20);
        for (edge, node) in edges
            .iter()
            .zip(resources["nodes"].as_array().expect("nodes"))
        {
            assert_eq!(&edge["node"], node, "`edges.node` and `nodes` agree");
            assert_eq!(edge["c2"], edge["cursor"]);
            assert!(
                edge["cursor"].is_string() && edge["linkedAt"].is_string(),
                "{edge}"
            );
            assert_eq!(edge["denormalizedName"], node["name"]);
            assert_eq!(edge["denormalizedStatus"], node["status"]);
            assert_eq!(node["label"], node["name"]);
            assert_eq!(node["health"]["__typename"], "Health", "{node}");
            assert!(
                node["health"].get("state").is_some() && node["health"].get("checkedAt").is_some(),
                "repeated fields merge: {node}"
            );
            assert_eq!(node["dock"]["__typename"], "Dock");
            assert!(
                node["dock"]["name"].is_string() && node["dock"]["provider"].is_string(),
                "{node}"
            );
            let only_on = |field: &str, kind: &str| {
                assert_eq!(
                    node.get(field).is_some(),
                    node["__typename"] == kind,
                    "{field}: {node}"
                );
            };
            only_on("primaryIpAddress", "Server");
            only_on("productionUrl", "WebService");
            only_on("domainName", "Domain");
            only_on("engine", "Database");
            ids.push(node["id"].clone());
            placed.push(node.clone());
        }
    }
    let kinds: std::collections::HashSet<&str> = placed
        .iter()
        .filter_map(|n| n["__typename"].as_str())
        .collect();
    assert_eq!(kinds.len(), 4, "every kind is tried: {kinds:?}");

    let resolved = format!("query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ...Same }} }} {selection}");
    let (body, _) = traced(&app, &token, &resolved, json!({ "ids": ids })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), placed.len());
    for (node, placed) in nodes.iter().zip(&placed) {
        assert_eq!(node, placed, "in place and resolved answers agree");
    }
    // The order of fields is the selection's, as async-graphql gives it.
    let raw = body_text(&app, &token, &in_place).await;
    assert!(
        raw.contains(r#""node":{"__typename":""#) && raw.contains(r#"","label":""#),
        "keys in selection order: {}",
        &raw[..raw.len().min(600)]
    );
}

/// Over HTTP, objects resolved in place are answered as their JSON text when no response key
/// repeats in the document. The same document with one repeated key (`__typename` twice at the
/// root) is answered with maps throughout: both bodies must carry the same `viewer`, key order
/// included, and every kind's fields, escapes and nulls.
#[tokio::test(flavor = "multi_thread")]
async fn objects_answered_as_json_text_match_the_maps_they_replace() {
    let (app, token) = seeded(1).await;
    let selection = r#"viewer { organization { name
          projects(first: 3) { totalCount edges { cursor node {
            id name client { name } healthSummary { healthy degraded unhealthy unknown }
            resources(first: 20) { edges { denormalizedStatus linkedAt node {
              __typename id name kind status tags lastSeenAt health { state checkedAt }
              dock { name provider lastSyncStatus lastSyncAt lastSyncError }
              ... on Server { primaryIpAddress region vcpus image }
              ... on WebService { productionUrl framework }
              ... on Domain { domainName expiresAt autoRenew }
              ... on Database { engine version port }
            } } }
          } } } } }"#;
    // Kept in order: serde_json's `Value` would sort the keys.
    let viewer = |text: &str| -> String {
        let parsed: Value = serde_json::from_str(text).expect("JSON");
        assert!(parsed.get("errors").is_none(), "{text}");
        let start = text.find(r#""viewer":"#).expect("viewer");
        text[start..].to_owned()
    };
    let as_text = body_text(&app, &token, &format!("{{ {selection} }}")).await;
    let as_maps = body_text(
        &app,
        &token,
        &format!("{{ __typename __typename {selection} }}"),
    )
    .await;
    assert!(
        as_maps.starts_with(r#"{"data":{"__typename":"Query","viewer":"#),
        "{as_maps:.200}"
    );
    assert_eq!(viewer(&as_text), viewer(&as_maps));
    let kinds = ["Server", "WebService", "Domain", "Database"];
    for kind in kinds {
        assert!(
            as_text.contains(&format!(r#""__typename":"{kind}""#)),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_resolves_every_type_and_hides_other_orgs() {
    let (app, token) = seeded(1).await;
    let ids_query = "{ viewer { organization { id teams { id } clients { id }
        projects(first: 1) { nodes { id resources(first: 20) { nodes { id __typename dock { id syncRuns(first: 1) { nodes { id } } } } } } } } } }";
    let (body, _) = traced(&app, &token, ids_query, json!({})).await;
    let org = &body["data"]["viewer"]["organization"];
    let project = &org["projects"]["nodes"][0];
    let mut ids = vec![
        org["id"].clone(),
        org["teams"][0]["id"].clone(),
        org["clients"][0]["id"].clone(),
        project["id"].clone(),
    ];
    let resources = project["resources"]["nodes"].as_array().expect("resources");
    ids.extend(resources.iter().map(|r| r["id"].clone()));
    ids.push(resources[0]["dock"]["id"].clone());
    ids.push(resources[0]["dock"]["syncRuns"]["nodes"][0]["id"].clone());
    let query = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";
    let (mine, _) = traced(&app, &token, query, json!({ "ids": ids })).await;
    let found = mine["data"]["nodes"].as_array().expect("nodes");
    assert_eq!(found.len(), ids.len());
    for (node, id) in found.iter().zip(&ids) {
        assert_eq!(&node["id"], id, "{mine}");
    }

    let other = app.token("org-1-owner", Some("org-1"));
    let (theirs, _) = traced(&app, &other, query, json!({ "ids": ids })).await;
    assert!(theirs.get("errors").is_none(), "{theirs}");
    assert!(
        theirs["data"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(Value::is_null),
        "org-1 sees nothing of org-0: {theirs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_walks_every_item_once() {
    let (app, token) = seeded(1).await;
    let query = "query($after: String) { viewer { organization { resources(first: 7, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id name } } } } } }";
    let (mut after, mut seen, mut names) = (Value::Null, Vec::new(), Vec::new());
    loop {
        let (body, _) = traced(&app, &token, query, json!({ "after": after })).await;
        let page = &body["data"]["viewer"]["organization"]["resources"];
        assert_eq!(page["totalCount"], 200, "{body}");
        let edges = page["edges"].as_array().expect("edges");
        assert_eq!(
            page["pageInfo"]["endCursor"],
            edges.last().map_or(Value::Null, |e| e["cursor"].clone())
        );
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null());
        seen.extend(edges.iter().map(|e| e["node"]["id"].clone()));
        names.extend(
            edges
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap_or("").to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            assert!(edges.len() <= 7);
            after = page["pageInfo"]["endCursor"].clone();
            break;
        }
        assert_eq!(edges.len(), 7);
        after = page["pageInfo"]["endCursor"].clone();
    }
    // After the last: no edges, and still the total.
    let (body, _) = traced(&app, &token, query, json!({ "after": after })).await;
    let page = &body["data"]["viewer"]["organization"]["resources"];
    assert_eq!(page["totalCount"], 200, "{body}");
    assert_eq!(page["edges"], json!([]), "{body}");
    assert_eq!(page["pageInfo"]["hasNextPage"], false, "{body}");
    let unique: std::collections::HashSet<String> = seen.iter().map(Value::to_string).collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (200, 200),
        "every resource exactly once"
    );
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "ordered by name");
}

/// Several projects' links pages in one statement: each page is its own project's links after
/// the cursor, in `(name, id)` order, at most `first`, with that project's total (all of its
/// links of the kinds asked for, wherever the cursor stands).
#[tokio::test(flavor = "multi_thread")]
async fn project_links_pages_walk_each_project_from_a_cursor() {
    let (app, token) = seeded(1).await;
    let all = "{ viewer { organization { projects(first: 4) { nodes { id
        resources(first: 100) { totalCount edges { cursor denormalizedName node { id kind } } } } } } } }";
    let (body, _) = traced(&app, &token, all, json!({})).await;
    let projects = body["data"]["viewer"]["organization"]["projects"]["nodes"]
        .as_array()
        .expect("projects")
        .clone();
    assert_eq!(projects.len(), 4, "{body}");
    // Every project's links, in (name, id) order as the first pages give them.
    let links: Vec<Vec<(String, String, String, String)>> = projects
        .iter()
        .map(|p| {
            p["resources"]["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (
                        text(&e["denormalizedName"]),
                        text(&e["node"]["id"]),
                        text(&e["node"]["kind"]),
                        text(&e["cursor"]),
                    )
                })
                .collect()
        })
        .collect();
    for project in &links {
        assert_eq!(project.len(), 20, "seeded projects link 20 resources");
        let mut sorted = project.clone();
        sorted.sort();
        assert_eq!(&sorted, project, "links in (name, id) order");
    }
    // Pages after a cursor, for every project at once, with and without a kinds filter: a
    // cursor from the first project's middle, and the cursor of the last link of all (every
    // page empty, each total still its project's). A cursor is the link's (name, link id); the
    // seed's names are unique in an organization, so the name alone orders these links.
    let names: std::collections::HashSet<&str> =
        links.iter().flatten().map(|l| l.0.as_str()).collect();
    assert_eq!(names.len(), links.iter().map(Vec::len).sum::<usize>());
    let middle = (links[0][9].3.clone(), links[0][9].0.clone());
    let last = links
        .iter()
        .flatten()
        .max()
        .map(|l| (l.3.clone(), l.0.clone()))
        .expect("links");
    let paged = "query($after: String, $kinds: [ResourceKind!]) { viewer { organization { projects(first: 4) { nodes {
        resources(first: 4, after: $after, kinds: $kinds) { totalCount pageInfo { hasNextPage } edges { node { id } } } } } } } }";
    let cases = [None, Some(vec!["SERVER", "DOMAIN"])]
        .into_iter()
        .flat_map(|kinds| [(middle.clone(), kinds.clone()), (last.clone(), kinds)]);
    for ((cursor, after_name), kinds) in cases {
        let (body, _) = traced(
            &app,
            &token,
            paged,
            json!({ "after": cursor, "kinds": kinds }),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body}");
        let pages = body["data"]["viewer"]["organization"]["projects"]["nodes"]
            .as_array()
            .expect("projects");
        for (project, page) in links.iter().zip(pages) {
            let page = &page["resources"];
            let of_kind: Vec<_> = project
                .iter()
                .filter(|l| kinds.as_ref().is_none_or(|k| k.contains(&l.2.as_str())))
                .collect();
            let after: Vec<String> = of_kind
                .iter()
                .filter(|l| l.0 > after_name)
                .map(|l| l.1.clone())
                .collect();
            let got: Vec<String> = page["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(page["totalCount"], of_kind.len(), "{kinds:?}: {page}");
            assert_eq!(
                got,
                after.iter().take(4).cloned().collect::<Vec<_>>(),
                "{kinds:?}"
            );
            assert_eq!(
                page["pageInfo"]["hasNextPage"],
                after.len() > 4,
                "{kinds:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_edges_and_bad_arguments() {
    let (app, token) = seeded(1).await;
    let projects = "query($first: Int, $after: String, $search: String) { viewer { organization {
        projects(first: $first, after: $after, search: $search) { totalCount pageInfo { hasNextPage startCursor endCursor } edges { node { slug } } } } } }";
    let page = |body: &Value| body["data"]["viewer"]["organization"]["projects"].clone();

    let (empty, _) = traced(&app, &token, projects, json!({ "search": "no-such-thing" })).await;
    assert_eq!(
        page(&empty),
        json!({ "totalCount": 0, "pageInfo": { "hasNextPage": false, "startCursor": null, "endCursor": null }, "edges": [] })
    );

    let (exact, _) = traced(&app, &token, projects, json!({ "first": 10 })).await;
    assert_eq!(page(&exact)["edges"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        page(&exact)["pageInfo"]["hasNextPage"],
        false,
        "an exact page has no next page"
    );

    let (first, _) = traced(&app, &token, projects, json!({ "first": 6 })).await;
    assert_eq!(page(&first)["pageInfo"]["hasNextPage"], true);
    let (last, _) = traced(
        &app,
        &token,
        projects,
        json!({ "first": 6, "after": page(&first)["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(page(&last)["edges"].as_array().map(Vec::len), Some(4));
    assert_eq!(page(&last)["pageInfo"]["hasNextPage"], false);

    let (search, _) = traced(&app, &token, projects, json!({ "search": "PROJECT-00" })).await;
    assert_eq!(
        page(&search)["totalCount"],
        10,
        "search is case-insensitive on slug and name"
    );
    let (underscore, _) = traced(&app, &token, projects, json!({ "search": "%" })).await;
    assert_eq!(page(&underscore)["totalCount"], 0, "wildcards are literal");

    for variables in [
        json!({ "after": "garbage" }),
        json!({ "first": 501 }),
        json!({ "first": -1 }),
    ] {
        let (body, _) = traced(&app, &token, projects, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
    }
    let (nested, _) = traced(&app, &token, "{ viewer { organization { projects(first: 1) { nodes { resources(after: \"bad\") { totalCount } } } } } }", json!({})).await;
    assert_eq!(error_code(&nested), "BAD_USER_INPUT", "{nested}");
}

#[tokio::test(flavor = "multi_thread")]
async fn query_limits_refuse_before_any_sql() {
    let (app, token) = seeded(1).await;
    let mut inner = "slug".to_owned();
    for _ in 0..6 {
        inner = format!("resources {{ nodes {{ projects {{ {inner} }} }} }}");
    }
    let deep = format!("{{ viewer {{ organization {{ projects {{ nodes {{ {inner} }} }} }} }} }}");
    let heavy = "{ viewer { organization { projects(first: 500) { nodes { resources(first: 500) { nodes { name dock { name } } } } } } } }";
    let aliases = format!(
        "{{ viewer {{ {} }} }}",
        (0..60)
            .map(|i| format!("a{i}: user {{ name }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let tokens = format!("{{ viewer {{ user {{ {} }} }} }}", "name ".repeat(6000));
    for query in [deep, heavy.to_owned(), aliases, tokens] {
        let (body, statements) = traced(&app, &token, &query, json!({})).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(statements.unwrap_or(0), 0, "refused before any SQL ran");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_history_is_newest_first_and_feeds_latest_health() {
    use diesel_async::SimpleAsyncConnection;
    let (app, token) = seeded(1).await;
    app.db
        .owner()
        .await
        .batch_execute(
            "insert into health_checks (org_id, resource_kind, resource_id, checked_at, state, latency_ms, message)
             select s.org_id, 'server', s.id, now() - (n || ' minutes')::interval, 'healthy', 10 + n, 'check ' || n
             from servers s, generate_series(1, 5) n
             where s.org_id = (select id from organizations where slug = 'org-0')",
        )
        .await
        .expect("checks");
    let query = "{ viewer { organization { resources(first: 3, kinds: [SERVER]) { nodes {
        health { state latencyMs message } healthHistory(first: 2) { totalCount pageInfo { hasNextPage } nodes { latencyMs checkedAt } } } } } } }";
    let (body, statements) = traced(&app, &token, query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    for node in body["data"]["viewer"]["organization"]["resources"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        assert_eq!(node["health"]["latencyMs"], 11, "the latest check: {node}");
        assert_eq!(node["health"]["message"], "check 1");
        let history = &node["healthHistory"];
        assert_eq!(
            (
                history["totalCount"].as_i64(),
                history["pageInfo"]["hasNextPage"].as_bool()
            ),
            (Some(5), Some(true))
        );
        let latencies: Vec<i64> = history["nodes"]
            .as_array()
            .expect("n")
            .iter()
            .filter_map(|c| c["latencyMs"].as_i64())
            .collect();
        assert_eq!(latencies, vec![11, 12], "newest first");
    }
    assert!(statements.expect("count") <= 5, "{statements:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn viewer_permissions_follow_the_role() {
    let (app, _) = seeded(1).await;
    let query = "{ viewer { permissions { projects resources docks audit settings } } }";
    let expected = [
        (
            "org-0-owner",
            json!({ "projects": "FULL", "resources": "FULL", "docks": "FULL", "audit": "FULL", "settings": "FULL" }),
        ),
        (
            "org-0-viewer",
            json!({ "projects": "READ", "resources": "READ", "docks": "READ", "audit": "NONE", "settings": "NONE" }),
        ),
    ];
    for (user, permissions) in expected {
        let (_, body) = app
            .graphql(Some(&app.token(user, Some("org-0"))), query, json!({}))
            .await;
        assert_eq!(
            body["data"]["viewer"]["permissions"], permissions,
            "{user}: {body}"
        );
    }
}

/// A dock's sync runs walked one page at a time from the newest, then the page after the
/// oldest: every run once, newest first, and the total kept on every page (also the empty one
/// past the end, for all four docks in one statement).
#[tokio::test(flavor = "multi_thread")]
async fn sync_run_pages_walk_each_dock_past_its_oldest() {
    let (app, token) = seeded(1).await;
    let all = "{ viewer { organization { docks { nodes { id
        syncRuns(first: 50) { totalCount edges { cursor node { id startedAt } } } } } } } }";
    let (body, _) = traced(&app, &token, all, json!({})).await;
    let docks = body["data"]["viewer"]["organization"]["docks"]["nodes"]
        .as_array()
        .expect("docks")
        .clone();
    assert_eq!(docks.len(), 4, "{body}");
    let paged = "query($after: String) { viewer { organization { docks { nodes {
        syncRuns(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor }
          nodes { id } } } } } } }";
    let mut oldest: Option<(String, String)> = None;
    for (d, dock) in docks.iter().enumerate() {
        let runs = dock["syncRuns"]["edges"].as_array().expect("edges");
        assert_eq!(runs.len(), 3, "the seed gives each dock three runs");
        assert_eq!(dock["syncRuns"]["totalCount"], json!(3));
        let started: Vec<&str> = runs
            .iter()
            .map(|r| r["node"]["startedAt"].as_str().expect("startedAt"))
            .collect();
        assert!(
            started.windows(2).all(|w| w[0] > w[1]),
            "newest first: {started:?}"
        );
        let last = runs.last().expect("a run");
        let at = last["node"]["startedAt"].as_str().unwrap_or_default();
        if oldest.as_ref().is_none_or(|o| at < o.0.as_str()) {
            let cursor = last["cursor"].as_str().unwrap_or_default();
            oldest = Some((at.to_owned(), cursor.to_owned()));
        }
        // One page at a time, with this dock's cursors (the other docks page after them too).
        let mut after: Option<String> = None;
        let mut walked = Vec::new();
        for _ in 0..5 {
            let (body, _) = traced(&app, &token, paged, json!({ "after": after })).await;
            assert!(body.get("errors").is_none(), "{body}");
            let page = &body["data"]["viewer"]["organization"]["docks"]["nodes"][d]["syncRuns"];
            assert_eq!(page["totalCount"], json!(3), "total on every page: {page}");
            let nodes = page["nodes"].as_array().expect("nodes");
            walked.extend(nodes.iter().map(|n| n["id"].clone()));
            if nodes.is_empty() {
                assert_eq!(page["pageInfo"]["hasNextPage"], json!(false), "{page}");
                break;
            }
            after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        let expected: Vec<Value> = runs.iter().map(|r| r["node"]["id"].clone()).collect();
        assert_eq!(walked, expected, "every run once, newest first");
    }
    // After the oldest run of all: every dock's page is empty, every total still 3.
    let (_, cursor) = oldest.expect("runs");
    let (body, _) = traced(&app, &token, paged, json!({ "after": cursor })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let pages = body["data"]["viewer"]["organization"]["docks"]["nodes"]
        .as_array()
        .expect("docks");
    assert_eq!(pages.len(), 4);
    for page in pages {
        let runs = &page["syncRuns"];
        assert_eq!(runs["nodes"], json!([]), "{runs}");
        assert_eq!(runs["totalCount"], json!(3), "{runs}");
        assert_eq!(runs["pageInfo"]["hasNextPage"], json!(false), "{runs}");
    }
}
