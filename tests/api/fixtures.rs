//! Small builders for test data, written as the schema owner: each says what it sets up, so that
//! test bodies hold no SQL of their own.

use diesel::sql_types::{BigInt, Integer, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use stackgate::db::models::{membership, organization, project, user};
use uuid::Uuid;

use crate::harness::TestApp;

pub struct Org {
    pub id: Uuid,
}

/// An organization with slug `slug` (built-in roles come with it).
pub async fn org(conn: &mut AsyncPgConnection, slug: &str) -> Org {
    let o = organization::ensure(conn, &format!("Org {slug}"), slug)
        .await
        .expect("org");
    Org { id: o.id }
}

/// A user with external id `external_id`.
pub async fn user(conn: &mut AsyncPgConnection, external_id: &str) -> Uuid {
    user::ensure(
        conn,
        external_id,
        &format!("{external_id}@example.test"),
        external_id,
    )
    .await
    .expect("user")
    .id
}

/// A user who is a member of `org` with built-in role `role`.
pub async fn member(
    conn: &mut AsyncPgConnection,
    org: &Org,
    external_id: &str,
    role: &str,
) -> Uuid {
    let id = user(conn, external_id).await;
    membership::ensure(conn, org.id, id, role)
        .await
        .expect("membership");
    id
}

/// Builds `acme` with its owner `alice` over `app`; returns it with an (unpinned) token of
/// alice's.
pub async fn with_alice(app: TestApp) -> (TestApp, String) {
    let conn = &mut app.db.owner().await;
    let acme = org(conn, "acme").await;
    member(conn, &acme, "alice", "owner").await;
    let token = app.token("alice", None);
    (app, token)
}

/// A project in `org`; its id.
pub async fn project(conn: &mut AsyncPgConnection, org: &Org, slug: &str) -> Uuid {
    project::ensure(conn, org.id, &format!("Project {slug}"), slug, "")
        .await
        .expect("project");
    sql_query("select id from projects where org_id = $1 and slug = $2")
        .bind::<SqlUuid, _>(org.id)
        .bind::<Text, _>(slug)
        .get_result::<Id>(conn)
        .await
        .expect("project id")
        .id
}

// ---------------------------------------------------------------------------------------------
// The seed

/// A server over the seed at `scale` (see `stackgate::seed`): organizations `org-0`, `org-1`…,
/// each with users `org-K-owner`, `-admin`, `-member`, `-viewer`, `-client-0`, `-client-1`,
/// teams `Team 0`…, clients, docks, resources and projects.
pub async fn seeded_at(scale: u32) -> TestApp {
    let app = TestApp::spawn().await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, scale)
        .await
        .expect("seed");
    app
}

/// [`seeded_at`] scale 1.
pub async fn seeded() -> TestApp {
    seeded_at(1).await
}

/// [`seeded`], with `org-0-teamer`: a person who reaches `org-0` only through `Team 0`, as a
/// `member` (projects FULL, resources READ; the team may read the seeded DigitalOcean dock).
pub async fn seeded_with_teamer() -> TestApp {
    let app = seeded().await;
    let conn = &mut app.db.owner().await;
    let teamer = user::ensure(conn, "org-0-teamer", "teamer@example.test", "Teamer")
        .await
        .expect("teamer")
        .id;
    let team = seeded_team(conn, "org-0", "Team 0").await;
    join_team(conn, &team, teamer, "member").await;
    app
}

/// The organization (seeded or built) with slug `slug`.
pub async fn find_org(conn: &mut AsyncPgConnection, slug: &str) -> Org {
    let id = sql_query("select id from organizations where slug = $1")
        .bind::<Text, _>(slug)
        .get_result::<Id>(conn)
        .await
        .expect("an org with this slug")
        .id;
    Org { id }
}

// ---------------------------------------------------------------------------------------------
// Teams and grants

pub struct Team {
    pub org_id: Uuid,
    pub id: Uuid,
}

/// A new team `name` in `org`.
pub async fn team(conn: &mut AsyncPgConnection, org: &Org, name: &str) -> Team {
    let id = sql_query("insert into teams (org_id, name) values ($1, $2) returning id")
        .bind::<SqlUuid, _>(org.id)
        .bind::<Text, _>(name)
        .get_result::<Id>(conn)
        .await
        .expect("team")
        .id;
    Team { org_id: org.id, id }
}

/// The team `name` of the organization with slug `org` (the seed's).
pub async fn seeded_team(conn: &mut AsyncPgConnection, org: &str, name: &str) -> Team {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        org_id: Uuid,
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let row: Row = sql_query(
        "select t.org_id, t.id from teams t join organizations o on o.id = t.org_id \
         where o.slug = $1 and t.name = $2",
    )
    .bind::<Text, _>(org)
    .bind::<Text, _>(name)
    .get_result(conn)
    .await
    .expect("seeded team");
    Team {
        org_id: row.org_id,
        id: row.id,
    }
}

/// Puts `user` in `team` with the team's organization's built-in role `role`.
pub async fn join_team(conn: &mut AsyncPgConnection, team: &Team, user: Uuid, role: &str) {
    sql_query(
        "insert into team_memberships (org_id, team_id, user_id, role_id) \
         select $1, $2, $3, id from roles where org_id = $1 and name = $4",
    )
    .bind::<SqlUuid, _>(team.org_id)
    .bind::<SqlUuid, _>(team.id)
    .bind::<SqlUuid, _>(user)
    .bind::<Text, _>(role)
    .execute(conn)
    .await
    .expect("team membership");
}

/// Takes the user `external_id` out of every team (committed: an access change).
pub async fn leave_teams(conn: &mut AsyncPgConnection, external_id: &str) {
    sql_query(
        "delete from team_memberships where user_id = \
           (select id from users where external_id = $1)",
    )
    .bind::<Text, _>(external_id)
    .execute(conn)
    .await
    .expect("left the teams");
}

/// Lets `team` reach `dock` at `level` (`read` or `full`).
pub async fn grant_dock(conn: &mut AsyncPgConnection, team: &Team, dock: Uuid, level: &str) {
    sql_query(
        "insert into dock_permissions (org_id, dock_id, team_id, level) values ($1, $2, $3, $4)",
    )
    .bind::<SqlUuid, _>(team.org_id)
    .bind::<SqlUuid, _>(dock)
    .bind::<SqlUuid, _>(team.id)
    .bind::<Text, _>(level)
    .execute(conn)
    .await
    .expect("dock grant");
}

/// Sets the level of every dock grant of `team`.
pub async fn set_grant_levels(conn: &mut AsyncPgConnection, team: &Team, level: &str) {
    sql_query("update dock_permissions set level = $2 where team_id = $1")
        .bind::<SqlUuid, _>(team.id)
        .bind::<Text, _>(level)
        .execute(conn)
        .await
        .expect("grant levels");
}

// ---------------------------------------------------------------------------------------------
// Docks, resources and links

/// A DigitalOcean dock of `org` with a unique name and a dummy key (never synced).
pub async fn dock(conn: &mut AsyncPgConnection, org: &Org) -> Uuid {
    sql_query(
        "insert into docks (org_id, name, provider, encrypted_api_key) \
         values ($1, 'do-' || gen_random_uuid(), 'digitalocean', '\\x00') returning id",
    )
    .bind::<SqlUuid, _>(org.id)
    .get_result::<Id>(conn)
    .await
    .expect("dock")
    .id
}

/// The (first) dock of `org` for `provider` (`linode`, `gridpane`…), as the seed made it.
pub async fn dock_of(conn: &mut AsyncPgConnection, org: &Org, provider: &str) -> Uuid {
    sql_query("select id from docks where org_id = $1 and provider = $2 order by name limit 1")
        .bind::<SqlUuid, _>(org.id)
        .bind::<Text, _>(provider)
        .get_result::<Id>(conn)
        .await
        .expect("a dock of this provider")
        .id
}

/// A resource by what the health monitor probes on it.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A web service at this production URL.
    Web(&'a str),
    /// A server at this IP address.
    Server(&'a str),
    /// A database at this host.
    Database(&'a str),
    /// A domain of this name.
    Domain(&'a str),
}

impl Target<'_> {
    /// The resource's table.
    pub fn table(self) -> &'static str {
        match self {
            Target::Web(_) => "web_services",
            Target::Server(_) => "servers",
            Target::Database(_) => "databases",
            Target::Domain(_) => "domains",
        }
    }

    fn column_and_address(self) -> (&'static str, String) {
        let (column, address) = match self {
            Target::Web(url) => ("production_url", url),
            Target::Server(ip) => ("primary_ip_address", ip),
            Target::Database(host) => ("host", host),
            Target::Domain(name) => ("domain_name", name),
        };
        (column, address.to_owned())
    }
}

/// An active resource on `dock` of `org`, named uniquely, probed at `target`.
pub async fn resource(
    conn: &mut AsyncPgConnection,
    org: &Org,
    dock: Uuid,
    target: Target<'_>,
) -> Uuid {
    let (table, (column, address)) = (target.table(), target.column_and_address());
    let name = format!("{table}-{}", Uuid::new_v4().simple());
    sql_query(format!(
        "insert into {table} (org_id, dock_id, provider, provider_resource_id, name, status, {column}) \
         values ($1, $2, 'vercel', $3, $3, 'active', $4) returning id"
    ))
    .bind::<SqlUuid, _>(org.id)
    .bind::<SqlUuid, _>(dock)
    .bind::<Text, _>(&name)
    .bind::<Text, _>(&address)
    .get_result::<Id>(conn)
    .await
    .expect("resource")
    .id
}

/// Links the resource `id` of `kind` (`server`, `web_service`…) to `project` of `org`.
pub async fn link(conn: &mut AsyncPgConnection, org: &Org, project: Uuid, kind: &str, id: Uuid) {
    sql_query(format!(
        "insert into project_resources (org_id, project_id, resource_kind, {kind}_id) \
         values ($1, $2, $3, $4)"
    ))
    .bind::<SqlUuid, _>(org.id)
    .bind::<SqlUuid, _>(project)
    .bind::<Text, _>(kind)
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await
    .expect("link");
}

/// Sets the provider status (`active`, `stopped`, `deleted`…) of the resource `id` in `table`,
/// as a sync would.
pub async fn set_status(conn: &mut AsyncPgConnection, table: &str, id: Uuid, status: &str) {
    sql_query(format!("update {table} set status = $2 where id = $1"))
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(status)
        .execute(conn)
        .await
        .expect("status");
}

/// Records a confirmed health transition of server `id` as the health monitor does: its health
/// state and a `health` event, in one transaction.
pub async fn health_transition(
    conn: &mut AsyncPgConnection,
    (org, dock, id): (Uuid, Uuid, Uuid),
    (previous, current): (&str, &str),
) {
    use stackgate::events::{Event, HealthEvent};
    let event = Event::from(HealthEvent::new(
        (org, dock, id),
        "server",
        (previous, current),
        chrono::Utc::now(),
    ));
    conn.batch_execute(&format!(
        "begin; update servers set health_state = '{current}' where id = '{id}';
         select stackgate_publish('{org}', '{}'); commit;",
        event.to_payload()
    ))
    .await
    .expect("health transition");
}

/// Changes server `id`'s name and status as a sync of its dock applies it: the row and the
/// dock's `sync` event (`APPLIED`), in one transaction.
pub async fn synced_change(
    conn: &mut AsyncPgConnection,
    (org, dock, id): (Uuid, Uuid, Uuid),
    name: &str,
    status: &str,
) {
    use stackgate::events::{Event, Phase, SyncEvent};
    let event = Event::from(SyncEvent::new(org, dock, None, Phase::Applied));
    conn.batch_execute(&format!(
        "begin; update servers set name = '{name}', status = '{status}' where id = '{id}';
         select stackgate_publish('{org}', '{}'); commit;",
        event.to_payload()
    ))
    .await
    .expect("synced change");
}

/// Sets the port of the database `id`.
pub async fn set_database_port(conn: &mut AsyncPgConnection, id: Uuid, port: u16) {
    sql_query("update databases set port = $2 where id = $1")
        .bind::<SqlUuid, _>(id)
        .bind::<Integer, _>(i32::from(port))
        .execute(conn)
        .await
        .expect("port");
}

/// Makes the domain `id` expire `days` from now (in the past when negative).
pub async fn set_domain_expiry(conn: &mut AsyncPgConnection, id: Uuid, days: i32) {
    sql_query("update domains set expires_at = now() + make_interval(days => $2) where id = $1")
        .bind::<SqlUuid, _>(id)
        .bind::<Integer, _>(days)
        .execute(conn)
        .await
        .expect("expiry");
}

// ---------------------------------------------------------------------------------------------
// Health

/// Makes every resource due for a probe now (instead of waiting out the interval).
pub async fn make_due(conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "update servers set health_next_check_at = '-infinity'; \
         update web_services set health_next_check_at = '-infinity'; \
         update domains set health_next_check_at = '-infinity'; \
         update databases set health_next_check_at = '-infinity';",
    )
    .await
    .expect("make due");
}

/// Overrides `org`'s probe interval for resources of `kind`.
pub async fn set_health_interval(
    conn: &mut AsyncPgConnection,
    org: &Org,
    kind: &str,
    seconds: i32,
) {
    sql_query(
        "insert into health_check_intervals (org_id, resource_kind, interval_seconds) \
         values ($1, $2, $3)",
    )
    .bind::<SqlUuid, _>(org.id)
    .bind::<Text, _>(kind)
    .bind::<Integer, _>(seconds)
    .execute(conn)
    .await
    .expect("interval");
}

/// `hours` healthy checks of the server `resource` of `org`, one an hour back from now.
pub async fn health_history(conn: &mut AsyncPgConnection, org: &Org, resource: Uuid, hours: i32) {
    sql_query(
        "insert into health_checks (org_id, resource_kind, resource_id, checked_at, state) \
         select $1, 'server', $2, now() - (n || ' hours')::interval, 'healthy' \
         from generate_series(0, $3 - 1) n",
    )
    .bind::<SqlUuid, _>(org.id)
    .bind::<SqlUuid, _>(resource)
    .bind::<Integer, _>(hours)
    .execute(conn)
    .await
    .expect("history");
}

/// An open alert on the server `server`, in its organization.
pub async fn alert(conn: &mut AsyncPgConnection, server: Uuid, severity: &str, message: &str) {
    sql_query(
        "insert into alerts (org_id, resource_kind, resource_id, severity, message) \
         select org_id, 'server', id, $2, $3 from servers where id = $1",
    )
    .bind::<SqlUuid, _>(server)
    .bind::<Text, _>(severity)
    .bind::<Text, _>(message)
    .execute(conn)
    .await
    .expect("alert");
}

/// A finished provider action run (a reboot that succeeded) on the server `server`, in its
/// organization.
pub async fn action_run(conn: &mut AsyncPgConnection, server: Uuid) {
    sql_query(
        "insert into action_runs (org_id, resource_kind, resource_id, dock_id, action, status, \
           summary, finished_at) \
         select org_id, 'server', id, dock_id, 'reboot', 'succeeded', 'seeded', now() \
         from servers where id = $1",
    )
    .bind::<SqlUuid, _>(server)
    .execute(conn)
    .await
    .expect("action run");
}

// ---------------------------------------------------------------------------------------------
// Inspection

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The one `id` a query selects.
pub async fn id_of(conn: &mut AsyncPgConnection, sql: &str) -> Uuid {
    sql_query(sql).get_result::<Id>(conn).await.expect(sql).id
}

/// The number (`n`, an int8) a query about the row `id` (`$1`) selects.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str, id: Uuid) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .get_result::<N>(conn)
        .await
        .expect(sql)
        .n
}

/// What [`acme_site`] builds.
pub struct AcmeSite {
    pub org: Org,
    pub bob: Uuid,
    pub project: Uuid,
    pub dock: Uuid,
    /// A server to link to the project.
    pub server: Uuid,
    /// A server no project shows.
    pub hidden: Uuid,
}

/// `acme` (owner `alice`, member `bob`) with project `site` and two unlinked servers; and
/// `globex` (owner `gina`) with a project `portal` of its own.
pub async fn acme_site(app: &TestApp) -> AcmeSite {
    let conn = &mut app.db.owner().await;
    let org = org(conn, "acme").await;
    member(conn, &org, "alice", "owner").await;
    let bob = member(conn, &org, "bob", "member").await;
    let project = project(conn, &org, "site").await;
    let dock = dock(conn, &org).await;
    let server = resource(conn, &org, dock, Target::Server("127.0.0.1")).await;
    let hidden = resource(conn, &org, dock, Target::Server("127.0.0.2")).await;
    let globex = self::org(conn, "globex").await;
    member(conn, &globex, "gina", "owner").await;
    self::project(conn, &globex, "portal").await;
    AcmeSite {
        org,
        bob,
        project,
        dock,
        server,
        hidden,
    }
}

/// The payload of a `change` event of table `table` (no real table: only tests publish it) and
/// row `id`, in organization `org`.
pub fn change_payload(org: Uuid, table: &str, id: Uuid) -> String {
    serde_json::json!({ "type": "change", "org_id": org, "table": table, "id": id }).to_string()
}

/// Appends `payload` to the outbox in the connection's current transaction, as writers do.
pub async fn publish(conn: &mut AsyncPgConnection, org: Uuid, payload: &str) {
    sql_query("select stackgate_publish($1, $2)")
        .bind::<SqlUuid, _>(org)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await
        .expect("publish");
}

/// Rows waiting in the outbox.
pub async fn outbox_rows(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    sql_query("select count(*) as n from event_outbox")
        .get_result::<Count>(conn)
        .await
        .expect("outbox rows")
        .n
}

/// Moves the relay's last sequence number `by` ahead, as if it had published events no replica
/// received.
pub async fn skip_relay_sequence(conn: &mut AsyncPgConnection, by: i64) {
    sql_query("update event_relay set last_seq = last_seq + $1")
        .bind::<BigInt, _>(by)
        .execute(conn)
        .await
        .expect("skip sequence");
}

/// The id of the dock named `name` among those `token`'s viewer sees in their organization.
pub async fn dock_named(app: &TestApp, token: &str, name: &str) -> serde_json::Value {
    let (_, body) = app
        .graphql(
            Some(token),
            "{ viewer { organization { docks { nodes { id name } } } } }",
            serde_json::json!({}),
        )
        .await;
    body["data"]["viewer"]["organization"]["docks"]["nodes"]
        .as_array()
        .expect("docks")
        .iter()
        .find(|d| d["name"] == name)
        .expect("dock")["id"]
        .clone()
}

/// Asks for a sync of dock `id` with `syncDock`, as `token`'s viewer; panics when refused.
pub async fn sync_dock(app: &TestApp, token: &str, id: &serde_json::Value) {
    let (_, body) = app
        .graphql(
            Some(token),
            "mutation($id: ID!) { syncDock(id: $id) { id } }",
            serde_json::json!({ "id": id }),
        )
        .await;
    assert!(body["data"]["syncDock"]["id"].is_string(), "{body}");
}
