//! Adversarial tests: scope (row K; issue 11 item 6). A guest's view of an object is the same
//! whichever path leads to it — `node`, `nodes`, nested fields, subscription events — and the
//! active organization bounds every read, a multi-org user's view of their other organizations
//! included.
//!
//! The world: `seed --scale 1` (org-0: a client-portal user `org-0-client-1` of Client 1, whose
//! projects `project-001/005/009` are also Team 0's; Team 0 reads the DigitalOcean dock), plus a
//! team guest `org-0-teamer` (Team 0, role `member`), and `multi`, a viewer of org-0 and owner of
//! org-1.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use stackgate::db::schema::{client_memberships, memberships, organizations, roles};
use stackgate::db::{Scope, build_pool};
use uuid::Uuid;

use crate::fixtures;
use crate::harness::TestApp;
use crate::harness::wait::{PATIENCE, wait_for};
use crate::harness::ws::Ws;

/// The people whose view is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// `org-0-client-1`: reaches org-0 only through Client 1 (the client portal).
    Client,
    /// `org-0-teamer`: reaches org-0 only through Team 0 (granted the DigitalOcean dock).
    Teamer,
    /// `org-0-member`: an org member (reads every project, resource and dock).
    Member,
    /// `multi`: a viewer of org-0 acting there, and owner of org-1.
    Multi,
}

impl Who {
    fn subject(self) -> &'static str {
        match self {
            Who::Client => "org-0-client-1",
            Who::Teamer => "org-0-teamer",
            Who::Member => "org-0-member",
            Who::Multi => "multi",
        }
    }
}

/// A seeded app and the global ids of the objects the tests reach for.
struct World {
    app: TestApp,
    ids: HashMap<&'static str, Value>,
}

const OWNER_VIEW: &str = "query($search: String) { viewer { organization {
    teams { id name } clients { id name } members { user { id email } }
    docks { nodes { id name syncRuns(first: 1) { nodes { id } }
                    resources(first: 100) { nodes { id projects { slug } } } } }
    projects(first: 10, search: $search) { nodes { id slug
        resources(first: 20) { nodes { id dock { name } } } } } } } }";

async fn world() -> World {
    // Guests: `org-0-teamer` (through a team), and `multi`, a viewer of org-0 who owns org-1.
    let app = fixtures::seeded_with_teamer().await;
    let mut conn = app.db.owner().await;
    for (org, role) in [("org-0", "viewer"), ("org-1", "owner")] {
        let org = fixtures::find_org(&mut conn, org).await;
        fixtures::member(&mut conn, &org, "multi", role).await;
    }
    let owner = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app.graphql(Some(&owner), OWNER_VIEW, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let org = body["data"]["viewer"]["organization"].clone();
    let mut ids = HashMap::new();
    let named = |list: &Value, key: &str, value: &str| -> Value {
        list.as_array()
            .and_then(|l| l.iter().find(|i| i[key] == value))
            .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
            .clone()
    };
    let project = |slug: &str| named(&org["projects"]["nodes"], "slug", slug);
    let (linode, digital) = (
        named(&org["docks"]["nodes"], "name", "Linode"),
        named(&org["docks"]["nodes"], "name", "DigitalOcean"),
    );
    let linked_on = |dock: &str| {
        project("project-001")["resources"]["nodes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["dock"]["name"] == dock))
            .unwrap_or_else(|| panic!("project-001 has a resource on {dock}"))["id"]
            .clone()
    };
    // A Linode resource linked to a project neither guest reaches (Team 0's and Client 1's are
    // project-001, -005 and -009).
    let guests = ["project-001", "project-005", "project-009"];
    let hidden = linode["resources"]["nodes"]
        .as_array()
        .and_then(|r| {
            r.iter().find(|r| {
                r["projects"][0]["slug"]
                    .as_str()
                    .is_some_and(|s| !guests.contains(&s))
            })
        })
        .expect("a Linode resource outside the guests' projects")
        .clone();
    ids.insert("dock:linode", linode["id"].clone());
    ids.insert("dock:do", digital["id"].clone());
    ids.insert("run:linode", linode["syncRuns"]["nodes"][0]["id"].clone());
    ids.insert("run:do", digital["syncRuns"]["nodes"][0]["id"].clone());
    ids.insert("res:linode", linked_on("Linode"));
    ids.insert("res:do", linked_on("DigitalOcean"));
    ids.insert("res:hidden", hidden["id"].clone());
    ids.insert(
        "res:hidden:project",
        project(hidden["projects"][0]["slug"].as_str().expect("slug"))["id"].clone(),
    );
    ids.insert("project:001", project("project-001")["id"].clone());
    ids.insert("project:002", project("project-002")["id"].clone());
    ids.insert(
        "team:0",
        named(&org["teams"], "name", "Team 0")["id"].clone(),
    );
    ids.insert(
        "team:1",
        named(&org["teams"], "name", "Team 1")["id"].clone(),
    );
    ids.insert(
        "client:1",
        named(&org["clients"], "name", "Client 1")["id"].clone(),
    );
    let owner_user = org["members"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["user"]["email"] == "org-0-owner@example.test")
        })
        .expect("the owner")["user"]["id"]
        .clone();
    ids.insert("user:owner", owner_user);
    for (name, resource) in [("alert:linode", "res:linode"), ("alert:do", "res:do")] {
        let (kind, id) = decode_resource(&ids[resource]);
        let alert: Uuid = diesel::sql_query(format!(
            "insert into alerts (org_id, resource_kind, resource_id, severity, message)
             select org_id, '{kind}', id, 'critical', 'down' from {kind}s where id = '{id}'
             returning id"
        ))
        .get_result::<IdRow>(&mut conn)
        .await
        .expect("alert")
        .id;
        ids.insert(name, json!(encode("Alert", alert)));
    }
    World { app, ids }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

fn encode(type_name: &str, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

/// The table word and uuid of a resource's global id.
fn decode_resource(id: &Value) -> (&'static str, Uuid) {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.as_str().expect("an id"))
        .expect("base64");
    let text = String::from_utf8(bytes).expect("utf-8");
    let (type_name, uuid) = text.split_once(':').expect("Type:uuid");
    let kind = match type_name {
        "Server" => "server",
        "WebService" => "web_service",
        "Domain" => "domain",
        _ => "database",
    };
    (kind, uuid.parse().expect("uuid"))
}

/// Every path to a dock: `$dock` itself, `$res` a resource on it linked to project-001, `$run` one
/// of its sync runs, `$alert` an alert on `$res`.
const DOCK_PATHS: &[(&str, &str)] = &[
    ("node", "query($dock: ID!) { node(id: $dock) { id } }"),
    ("nodes", "query($dock: ID!) { nodes(ids: [$dock]) { id } }"),
    (
        "Organization.docks",
        "{ viewer { organization { docks(first: 50) { nodes { id } } } } }",
    ),
    (
        "Resource.dock",
        "query($res: ID!) { node(id: $res) { ... on Resource {
            dock { id name lastSyncError syncRuns(first: 3) { nodes { id } } } } } }",
    ),
    (
        "Project.resources.dock",
        "query($project: ID!) { node(id: $project) { ... on Project {
            resources(first: 50) { edges { node { dock { id } } } } } } }",
    ),
    (
        "Organization.resources.dock",
        "{ viewer { organization { resources(first: 500) { nodes { dock { id } } } } } }",
    ),
    (
        "SyncRun.dock",
        "query($run: ID!) { node(id: $run) { ... on SyncRun { dock { id } } } }",
    ),
    (
        "Alert.resource.dock",
        "query($alert: ID!) { node(id: $alert) { ... on Alert { resource { dock { id } } } } }",
    ),
];

/// Every path to a team (`$team`; `$project` one of its projects).
const TEAM_PATHS: &[(&str, &str)] = &[
    ("node", "query($team: ID!) { node(id: $team) { id } }"),
    ("nodes", "query($team: ID!) { nodes(ids: [$team]) { id } }"),
    (
        "Organization.teams",
        "{ viewer { organization { teams { id } } } }",
    ),
    (
        "Project.team",
        "query($project: ID!) { node(id: $project) { ... on Project { team { id name } } } }",
    ),
];

/// Every path to a client (`$client`; `$project` one of its projects).
const CLIENT_PATHS: &[(&str, &str)] = &[
    ("node", "query($client: ID!) { node(id: $client) { id } }"),
    (
        "nodes",
        "query($client: ID!) { nodes(ids: [$client]) { id } }",
    ),
    (
        "Organization.clients",
        "{ viewer { organization { clients { id } } } }",
    ),
    (
        "Project.client",
        "query($project: ID!) { node(id: $project) { ... on Project { client { id name } } } }",
    ),
];

/// Every path to a user (`$user`).
const USER_PATHS: &[(&str, &str)] = &[
    ("node", "query($user: ID!) { node(id: $user) { id } }"),
    ("nodes", "query($user: ID!) { nodes(ids: [$user]) { id } }"),
    (
        "Organization.members",
        "{ viewer { organization { members { user { id } } } } }",
    ),
];

/// Paths to the caller's own user (`$user`).
const SELF_PATHS: &[(&str, &str)] = &[
    ("node", "query($user: ID!) { node(id: $user) { id } }"),
    ("nodes", "query($user: ID!) { nodes(ids: [$user]) { id } }"),
    ("Viewer.user", "{ viewer { user { id } } }"),
];

/// Paths to a resource linked to project-001 (`$res`, `$project`).
const LINKED_RESOURCE_PATHS: &[(&str, &str)] = &[
    ("node", "query($res: ID!) { node(id: $res) { id } }"),
    ("nodes", "query($res: ID!) { nodes(ids: [$res]) { id } }"),
    (
        "Organization.resources",
        "{ viewer { organization { resources(first: 500) { nodes { id } } } } }",
    ),
    (
        "Project.resources",
        "query($project: ID!) { node(id: $project) { ... on Project {
            resources(first: 50) { nodes { id } } } } }",
    ),
];

/// Paths to a Linode resource of a project no guest reaches (`$res`, `$project`, `$dock`).
const HIDDEN_RESOURCE_PATHS: &[(&str, &str)] = &[
    ("node", "query($res: ID!) { node(id: $res) { id } }"),
    ("nodes", "query($res: ID!) { nodes(ids: [$res]) { id } }"),
    (
        "Organization.resources",
        "{ viewer { organization { resources(first: 500) { nodes { id } } } } }",
    ),
    (
        "Project.resources",
        "query($project: ID!) { node(id: $project) { ... on Project {
            resources(first: 50) { nodes { id } } } } }",
    ),
    (
        "Dock.resources",
        "query($dock: ID!) { node(id: $dock) { ... on Dock {
            resources(first: 100) { nodes { id } } } } }",
    ),
];

/// One row of the table: who looks, for what (its paths and the variables they use), and
/// whether it exists for them.
struct Row {
    who: Who,
    target: &'static str,
    paths: &'static [(&'static str, &'static str)],
    expect: bool,
}

fn rows() -> Vec<Row> {
    use Who::*;
    let mut rows = Vec::new();
    let mut add = |target, paths, seen: &[(Who, bool)]| {
        for (who, expect) in seen {
            rows.push(Row {
                who: *who,
                target,
                paths,
                expect: *expect,
            });
        }
    };
    let everyone = |client, teamer| {
        [
            (Client, client),
            (Teamer, teamer),
            (Member, true),
            (Multi, true),
        ]
    };
    add("dock:linode", DOCK_PATHS, &everyone(false, false));
    add("dock:do", DOCK_PATHS, &everyone(false, true));
    add("team:0", TEAM_PATHS, &everyone(false, true));
    add("team:1", TEAM_PATHS, &everyone(false, false));
    add("client:1", CLIENT_PATHS, &everyone(true, false));
    add("user:owner", USER_PATHS, &everyone(false, false));
    add("self", SELF_PATHS, &everyone(true, true));
    add("res:linode", LINKED_RESOURCE_PATHS, &everyone(true, true));
    add("res:hidden", HIDDEN_RESOURCE_PATHS, &everyone(false, false));
    rows
}

impl World {
    /// The variables of `target`'s paths, for `who`.
    fn variables(&self, target: &str, own: &Value) -> Value {
        let id = |name: &str| self.ids[name].clone();
        match target {
            "dock:linode" | "dock:do" => {
                let dock = target.trim_start_matches("dock:");
                json!({ "dock": id(target), "res": id(&format!("res:{dock}")),
                        "run": id(&format!("run:{dock}")), "alert": id(&format!("alert:{dock}")),
                        "project": id("project:001") })
            }
            "team:0" => json!({ "team": id(target), "project": id("project:001") }),
            "team:1" => json!({ "team": id(target), "project": id("project:002") }),
            "client:1" => json!({ "client": id(target), "project": id("project:001") }),
            "user:owner" => json!({ "user": id(target) }),
            "self" => json!({ "user": own }),
            "res:linode" => json!({ "res": id(target), "project": id("project:001") }),
            _ => json!({ "res": id(target), "project": id("res:hidden:project"),
                         "dock": id("dock:linode") }),
        }
    }

    fn token(&self, who: Who) -> String {
        self.app.token(who.subject(), Some("org-0"))
    }
}

/// True when `id` appears anywhere in `value`.
fn mentions(value: &Value, id: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| mentions(v, id)),
        Value::Object(fields) => fields.values().any(|v| mentions(v, id)),
        other => other == id,
    }
}

/// Row K: for a client-portal user, a team guest, a member and a multi-org user, each object is
/// visible on every path to it or on none — `node`, `nodes`, `Organization` lists, and the nested
/// `Resource.dock`, `Project.team`, `Project.client`, `SyncRun.dock`, `Alert.resource`,
/// `Dock.resources` — over HTTP and WebSocket alike. Before, guests read docks through
/// `Resource.dock` of their linked resources, other teams through `Project.team`, and members
/// through `node(User)`.
#[tokio::test(flavor = "multi_thread")]
async fn each_object_is_visible_on_every_path_or_on_none() {
    let world = world().await;
    let mut failures = Vec::new();
    for who in [Who::Client, Who::Teamer, Who::Member, Who::Multi] {
        let token = world.token(who);
        let (_, me) = world
            .app
            .graphql(Some(&token), "{ viewer { user { id } } }", json!({}))
            .await;
        let own = me["data"]["viewer"]["user"]["id"].clone();
        assert!(own.is_string(), "{who:?}: {me}");
        let mut ws = Ws::open(&world.app, &token).await;
        for row in rows().iter().filter(|r| r.who == who) {
            let variables = world.variables(row.target, &own);
            let target = match row.target {
                "self" => own.clone(),
                name => world.ids[name].clone(),
            };
            for (path, query) in row.paths {
                let (_, http) = world
                    .app
                    .graphql(Some(&token), query, variables.clone())
                    .await;
                let socket = ws.query(query, variables.clone()).await;
                for (transport, body) in [("HTTP", &http), ("WebSocket", &socket)] {
                    let seen = mentions(&body["data"], &target);
                    if body.get("errors").is_some() || seen != row.expect {
                        failures.push(format!(
                            "{who:?} {} via {path} over {transport}: expected {}, got {body}",
                            row.target,
                            if row.expect { "visible" } else { "null/absent" },
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Row K: in a `resourceHealth` event, a guest sees the resource it may see, and its dock only
/// when it may see the dock: `null` for the client-portal user and for a team guest on a dock
/// not granted to its team; the granted dock and every dock for the owner.
#[tokio::test(flavor = "multi_thread")]
async fn health_events_show_a_dock_only_to_those_who_see_it() {
    let world = world().await;
    let app = &world.app;
    let query = "subscription { resourceHealth { current resource { id dock { name } } } }";
    let ws = app.url("/graphql/ws");
    let open = |who: &'static str| {
        let token = app.token(who, Some("org-0"));
        let ws = ws.clone();
        async move { Ws::subscribed(&ws, &token, query, json!({})).await }
    };
    let mut client = open("org-0-client-1").await;
    let mut teamer = open("org-0-teamer").await;
    let mut owner = open("org-0-owner").await;
    app.wait_subscribed(3).await;

    let conn = &mut app.db.owner().await;
    for resource in ["res:linode", "res:do"] {
        notify_health(conn, &world.ids[resource]).await;
    }
    let dock = |event: &Value| event["resource"]["dock"].clone();
    for (name, sub, want) in [
        ("client", &mut client, [Value::Null, Value::Null]),
        (
            "teamer",
            &mut teamer,
            [Value::Null, json!({ "name": "DigitalOcean" })],
        ),
        (
            "owner",
            &mut owner,
            [
                json!({ "name": "Linode" }),
                json!({ "name": "DigitalOcean" }),
            ],
        ),
    ] {
        for (resource, expected) in ["res:linode", "res:do"].iter().zip(want) {
            let event = sub.event("resourceHealth").await;
            assert_eq!(
                event["resource"]["id"], world.ids[*resource],
                "{name}: {event}"
            );
            assert_eq!(dock(&event), expected, "{name}: {event}");
        }
    }
}

/// Publishes a confirmed health transition of `resource`, as the monitor does on commit.
async fn notify_health(conn: &mut AsyncPgConnection, resource: &Value) {
    use diesel::sql_types::Text;
    let (kind, id) = decode_resource(resource);
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        org_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        dock_id: Uuid,
    }
    let row: Row = diesel::sql_query(format!(
        "select org_id, dock_id from {kind}s where id = '{id}'"
    ))
    .get_result(conn)
    .await
    .expect("resource");
    let event = stackgate::events::HealthEvent::new(
        (row.org_id, row.dock_id, id),
        kind,
        ("healthy", "unhealthy"),
        chrono::Utc::now(),
    );
    diesel::sql_query("select stackgate_publish($1, $2)")
        .bind::<diesel::sql_types::Uuid, _>(row.org_id)
        .bind::<Text, _>(event.to_payload())
        .execute(conn)
        .await
        .expect("notify");
}

const ORGANIZATIONS: &str = "{ viewer { organization { id } organizations { id slug name
    roles { name } members { role } teams { id } clients { id }
    projects { totalCount } docks { totalCount } resources { totalCount }
    alerts { totalCount } } } }";

/// Row K: a user who belongs to org-0 and org-1, acting in org-0, reads nothing of org-1 but its
/// id, name and slug — through `viewer.organizations` and `node(<org-1>)`. Before, org-1's roles
/// showed (two row-level security policies on `roles` checked the user, not the active org).
#[tokio::test(flavor = "multi_thread")]
async fn another_organization_shows_only_its_name_from_the_active_one() {
    let world = world().await;
    let token = world.app.token("multi", Some("org-0"));
    let (_, body) = world
        .app
        .graphql(Some(&token), ORGANIZATIONS, json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let viewer = &body["data"]["viewer"];
    let orgs = viewer["organizations"].as_array().expect("organizations");
    let other = orgs
        .iter()
        .find(|o| o["slug"] == "org-1")
        .expect("org-1 listed");
    let active = orgs
        .iter()
        .find(|o| o["slug"] == "org-0")
        .expect("org-0 listed");
    assert_eq!(active["id"], viewer["organization"]["id"]);
    assert!(
        !active["roles"].as_array().expect("roles").is_empty(),
        "{active}"
    );
    let nothing = json!({ "totalCount": 0 });
    assert_eq!(
        other,
        &json!({ "id": other["id"], "slug": "org-1", "name": "Org 1",
                 "roles": [], "members": [], "teams": [], "clients": [],
                 "projects": nothing, "docks": nothing, "resources": nothing,
                 "alerts": nothing }),
    );

    let query = "query($id: ID!) { node(id: $id) { id ... on Organization { slug
        roles { name } teams { id } projects { totalCount } docks { totalCount }
        auditLogs { totalCount } } } }";
    let (_, body) = world
        .app
        .graphql(Some(&token), query, json!({ "id": other["id"] }))
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "id": other["id"], "slug": "org-1", "roles": [], "teams": [],
                "projects": nothing, "docks": nothing, "auditLogs": nothing }),
        "{body}"
    );
    // From org-1 itself, the same user (its owner) sees everything.
    let (_, body) = world
        .app
        .graphql(
            Some(&world.app.token("multi", Some("org-1"))),
            query,
            json!({ "id": other["id"] }),
        )
        .await;
    assert_eq!(
        body["data"]["node"]["roles"].as_array().map(Vec::len),
        Some(4),
        "{body}"
    );
}

/// Row K, in the database: with org-0 active, the application role reads no row of org-1 — not
/// its roles, not the user's own memberships there, not the organization — though the user
/// belongs to both; before an organization is chosen, identity resolution still finds them all.
#[tokio::test(flavor = "multi_thread")]
async fn row_level_security_bounds_identity_rows_by_the_active_organization() {
    let world = world().await;
    let conn = &mut world.app.db.owner().await;
    let org_id = |slug: &'static str| {
        organizations::table
            .filter(organizations::slug.eq(slug))
            .select(organizations::id)
    };
    let org0: Uuid = org_id("org-0").first(conn).await.expect("org-0");
    let multi: Uuid = diesel::sql_query("select id from users where external_id = 'multi'")
        .get_result::<IdRow>(conn)
        .await
        .expect("multi")
        .id;
    let client: Uuid =
        diesel::sql_query("select id from users where external_id = 'org-1-client-0'")
            .get_result::<IdRow>(conn)
            .await
            .expect("client")
            .id;
    let pool = build_pool(&world.app.db.url(), 1).expect("pool");
    let seen = |scope: Scope| {
        let pool = pool.clone();
        async move {
            scope
                .transaction(&pool, async |conn| {
                    let roles: Vec<Uuid> = roles::table.select(roles::org_id).load(conn).await?;
                    let members: Vec<Uuid> = memberships::table
                        .select(memberships::org_id)
                        .load(conn)
                        .await?;
                    let orgs: Vec<Uuid> = organizations::table
                        .select(organizations::id)
                        .load(conn)
                        .await?;
                    let clients: Vec<Uuid> = client_memberships::table
                        .select(client_memberships::org_id)
                        .load(conn)
                        .await?;
                    Ok((roles, members, orgs, clients))
                })
                .await
                .expect("reads")
        }
    };
    let (roles, members, orgs, _) = seen(Scope::org(org0, multi)).await;
    assert!(
        roles.iter().all(|o| *o == org0),
        "roles of another org: {roles:?}"
    );
    assert_eq!(roles.len(), 4);
    assert!(members.iter().all(|o| *o == org0), "{members:?}");
    assert_eq!(orgs, vec![org0]);
    // A client-portal user of org-1 with org-0 active: nothing of org-1 either.
    let (roles, _, orgs, clients) = seen(Scope::org(org0, client)).await;
    assert!(roles.iter().all(|o| *o == org0), "{roles:?}");
    assert_eq!(orgs, vec![org0]);
    assert!(clients.iter().all(|o| *o == org0), "{clients:?}");
    // Identity resolution (no organization yet) still sees the user's own rows everywhere.
    let (roles, members, orgs, _) = seen(Scope {
        user_id: Some(multi),
        ..Scope::default()
    })
    .await;
    assert_eq!((roles.len(), members.len(), orgs.len()), (2, 2, 2));
}

const KEYS: &str = "{ viewer { organization {
    docks { nodes { name apiKeyHint resources(first: 3) { nodes { fullApiData } } } } } } }";

/// Row K, the team grant levels: a team granted a dock at `full`, whose role has docks FULL,
/// sees that dock's key hint; with resources FULL, its resources' `fullApiData`. A `read` grant,
/// or a team role short of FULL, shows neither. Before, only an org-wide FULL unlocked them.
#[tokio::test(flavor = "multi_thread")]
async fn team_grants_at_full_unlock_key_hints_and_provider_data_of_their_docks() {
    let world = world().await;
    let conn = &mut world.app.db.owner().await;
    // `ops`: admin in a team granted Linode FULL and GridPane READ; team 0's grant raised to FULL.
    let org_0 = fixtures::find_org(conn, "org-0").await;
    let ops = fixtures::team(conn, &org_0, "Ops").await;
    let user = fixtures::user(conn, "ops").await;
    fixtures::join_team(conn, &ops, user, "admin").await;
    for (provider, level) in [("linode", "full"), ("gridpane", "read")] {
        let dock = fixtures::dock_of(conn, &org_0, provider).await;
        fixtures::grant_dock(conn, &ops, dock, level).await;
    }
    let team_0 = fixtures::seeded_team(conn, "org-0", "Team 0").await;
    fixtures::set_grant_levels(conn, &team_0, "full").await;
    let app = &world.app;
    let view = |who: &'static str| {
        let token = app.token(who, Some("org-0"));
        async move {
            let (_, body) = app.graphql(Some(&token), KEYS, json!({})).await;
            assert!(body.get("errors").is_none(), "{who}: {body}");
            body["data"]["viewer"]["organization"]["docks"]["nodes"]
                .as_array()
                .expect("docks")
                .iter()
                .map(|d| {
                    let data = d["resources"]["nodes"]
                        .as_array()
                        .expect("resources")
                        .iter()
                        .all(|r| r["fullApiData"].is_object());
                    (
                        d["name"].as_str().unwrap_or("").to_owned(),
                        d["apiKeyHint"].clone(),
                        data,
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let hint = json!("0000");
    assert_eq!(
        view("ops").await,
        vec![
            ("GridPane".to_owned(), Value::Null, false),
            ("Linode".to_owned(), hint.clone(), true),
        ],
        "admin role over a full grant (Linode) and a read grant (GridPane)"
    );
    assert_eq!(
        view("org-0-teamer").await,
        vec![("DigitalOcean".to_owned(), Value::Null, false)],
        "a full grant to a team whose role (member) reads docks and resources only"
    );
    let owner = view("org-0-owner").await;
    assert!(
        owner.iter().all(|(_, h, data)| *h == hint && *data),
        "{owner:?}"
    );
}

/// Row K, over time: a subscription's events meet the caller's current grants. Once Team 0
/// loses the DigitalOcean dock, the team guest's next `resourceHealth` events still show the
/// resource it reaches through its project, and no longer that dock. Before, an event's nested
/// objects were loaded with the grants the subscription started with.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_grant_hides_the_dock_from_the_next_events() {
    let world = world().await;
    let app = &world.app;
    let token = app.token("org-0-teamer", Some("org-0"));
    let query = "subscription { resourceHealth { resource { id dock { name } } } }";
    let mut teamer = Ws::subscribed(&app.ws_url(), &token, query, json!({})).await;
    app.wait_subscribed(1).await;
    let conn = &mut app.db.owner().await;
    let resource = &world.ids["res:do"];
    notify_health(conn, resource).await;
    let event = teamer.event("resourceHealth").await;
    assert_eq!(event["resource"]["dock"], json!({ "name": "DigitalOcean" }));

    conn.batch_execute(
        "delete from dock_permissions where team_id =
           (select t.id from teams t join organizations o on o.id = t.org_id
             where o.slug = 'org-0' and t.name = 'Team 0')",
    )
    .await
    .expect("revoke");
    // The connection re-checks its caller on the access event the revocation publishes.
    let what = "the revoked dock hidden from the team's events";
    wait_for(what, PATIENCE, async || {
        notify_health(conn, resource).await;
        let event = teamer.event("resourceHealth").await;
        assert_eq!(&event["resource"]["id"], resource, "{event}");
        if event["resource"]["dock"].is_null() {
            Ok(())
        } else {
            Err(event.to_string())
        }
    })
    .await;
}
