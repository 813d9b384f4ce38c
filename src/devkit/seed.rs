//! `stackgate seed --scale N`: a deterministic benchmark and development data set.
//!
//! Ten organizations `org-0` … `org-9`. In each: the users `org-K-owner`, `org-K-admin`,
//! `org-K-member` and `org-K-viewer` holding those built-in roles; two teams; two clients, each
//! with one client user (`org-K-client-0`, `org-K-client-1`); four docks (`digitalocean`,
//! `linode`, `vercel`, `gridpane`) with three sync runs each; `10·N` projects; `200·N` resources
//! (a quarter of each kind, spread over the docks, with varied status and health); every project
//! linked to 20 distinct resources of mixed kinds (project `p` gets resources `20p … 20p+19`).
//! The docks' keys are placeholders that no key decrypts, and the accounts they stand for do not
//! exist, so the docks are never due (`backoff_until` is `infinity`, which the scheduler's claim
//! skips): a scheduler over seeded data leaves them alone until a real key is set.
//! Every address can never leave the machine, whatever probes it: servers at `127.K.x.y` and
//! `::1`, web services at `https://app-NNN.localhost`, domains `siteNNN.invalid`, database hosts
//! `db-NNN.internal.invalid`.
//!
//! Every id is derived from a name (`md5('org-3:server:17')::uuid`) and every insert is
//! `on conflict do nothing`, so seeding twice at the same scale changes nothing; a larger scale
//! only adds rows. Each kind of row is written by one set-based statement per organization
//! (`generate_series`), inside a transaction that names the organization for row-level security.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::{DbError, Scope};

/// Number of seeded organizations.
pub const ORGS: u32 = 10;
/// Largest accepted `--scale` (2,000 projects and 40,000 resources per organization).
pub const MAX_SCALE: u32 = 200;
/// Links per project.
pub const LINKS_PER_PROJECT: u32 = 20;

/// The built-in roles, each held by the user `org-K-<role>`.
pub const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

/// The slug of organization `k`.
pub fn org_slug(k: u32) -> String {
    format!("org-{k}")
}

/// Row counts of the seeded organizations after a run, and how many rows the run inserted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub scale: u32,
    pub inserted: u64,
    pub organizations: i64,
    pub users: i64,
    pub memberships: i64,
    pub teams: i64,
    pub clients: i64,
    pub client_memberships: i64,
    pub docks: i64,
    pub sync_runs: i64,
    pub projects: i64,
    pub resources: i64,
    pub links: i64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scale {}: {} organizations, {} users, {} memberships, {} teams, {} clients, {} docks, \
             {} sync runs, {} projects, {} resources, {} project links ({} rows inserted)",
            self.scale,
            self.organizations,
            self.users,
            self.memberships,
            self.teams,
            self.clients,
            self.docks,
            self.sync_runs,
            self.projects,
            self.resources,
            self.links,
            self.inserted
        )
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    organizations: i64,
    #[diesel(sql_type = BigInt)]
    users: i64,
    #[diesel(sql_type = BigInt)]
    memberships: i64,
    #[diesel(sql_type = BigInt)]
    teams: i64,
    #[diesel(sql_type = BigInt)]
    clients: i64,
    #[diesel(sql_type = BigInt)]
    client_memberships: i64,
    #[diesel(sql_type = BigInt)]
    docks: i64,
    #[diesel(sql_type = BigInt)]
    sync_runs: i64,
    #[diesel(sql_type = BigInt)]
    projects: i64,
    #[diesel(sql_type = BigInt)]
    resources: i64,
    #[diesel(sql_type = BigInt)]
    links: i64,
}

/// Seeds the data set at `scale` on a connection as the schema owner (migrations applied).
/// Idempotent per scale; returns the counts of the seeded organizations.
pub async fn seed(conn: &mut AsyncPgConnection, scale: u32) -> Result<Summary, DbError> {
    if !(1..=MAX_SCALE).contains(&scale) {
        return Err(DbError::Migration(format!(
            "seed: --scale must be between 1 and {MAX_SCALE}, not {scale}"
        )));
    }
    let scale_i = i32::try_from(scale).unwrap_or(i32::MAX);
    let mut inserted = 0u64;
    inserted += exec(conn, GLOBAL_ORGS).await?;
    inserted += exec(conn, GLOBAL_USERS).await?;
    for k in 0..ORGS {
        let slug = org_slug(k);
        let org_id = diesel::sql_query("select id from organizations where slug = $1")
            .bind::<Text, _>(&slug)
            .get_result::<IdRow>(conn)
            .await?
            .id;
        let scope = Scope {
            org_id: Some(org_id),
            ..Scope::default()
        };
        let org_index = i32::try_from(k).unwrap_or(0);
        inserted += scope
            .transaction_on(conn, async |conn| {
                let mut n = 0u64;
                for sql in per_org_statements() {
                    n += diesel::sql_query(sql)
                        .bind::<diesel::sql_types::Uuid, _>(org_id)
                        .bind::<Text, _>(&slug)
                        .bind::<Integer, _>(scale_i)
                        .bind::<Integer, _>(org_index)
                        .execute(conn)
                        .await? as u64;
                }
                Ok(n)
            })
            .await?;
    }
    if inserted > 0 {
        // Fresh rows have no planner statistics until autovacuum gets to them (a minute or
        // more): meanwhile a dashboard's health counts join every resource table row by row
        // (some 60 ms at scale 5 instead of 2). A server started right after seeding (a bench,
        // a developer's GraphiQL) plans with real numbers from the start.
        exec(conn, ANALYZE).await?;
    }
    let counts: CountsRow = diesel::sql_query(COUNTS).get_result(conn).await?;
    Ok(Summary {
        scale,
        inserted,
        organizations: counts.organizations,
        users: counts.users,
        memberships: counts.memberships,
        teams: counts.teams,
        clients: counts.clients,
        client_memberships: counts.client_memberships,
        docks: counts.docks,
        sync_runs: counts.sync_runs,
        projects: counts.projects,
        resources: counts.resources,
        links: counts.links,
    })
}

/// Every table seeding writes.
const ANALYZE: &str = "analyze organizations, users, memberships, teams, team_memberships, \
    clients, client_memberships, docks, dock_permissions, sync_runs, projects, servers, \
    web_services, domains, databases, project_resources";

async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<u64, DbError> {
    Ok(diesel::sql_query(sql).execute(conn).await? as u64)
}

// Every timestamp is relative to one fixed instant, so the data set is the same on every run.
macro_rules! base_ts {
    () => {
        "timestamptz '2026-11-20 12:00:00+00'"
    };
}

const GLOBAL_ORGS: &str = "\
insert into organizations (id, name, slug)
select md5('org-' || k)::uuid, 'Org ' || k, 'org-' || k
  from generate_series(0, 9) k
on conflict do nothing";

const GLOBAL_USERS: &str = "\
insert into users (id, external_id, email, name)
select md5('user:' || x)::uuid, x, x || '@example.test', initcap(replace(x, '-', ' '))
  from generate_series(0, 9) k
 cross join unnest(array['owner', 'admin', 'member', 'viewer', 'client-0', 'client-1']) r
 cross join lateral (select 'org-' || k || '-' || r as x) s
on conflict do nothing";

/// The per-organization statements. Binds: `$1` org id, `$2` org slug (`org-K`, the prefix of
/// every derived id), `$3` scale, `$4` the organization's index K.
fn per_org_statements() -> Vec<String> {
    let mut statements = vec![
        MEMBERSHIPS.to_owned(),
        TEAMS.to_owned(),
        TEAM_MEMBERSHIPS.to_owned(),
        CLIENTS.to_owned(),
        CLIENT_MEMBERSHIPS.to_owned(),
        DOCKS.to_owned(),
        DOCK_PERMISSIONS.to_owned(),
        SYNC_RUNS.to_owned(),
    ];
    statements.extend(RESOURCE_KINDS.iter().map(resource_statement));
    statements.push(PROJECTS.to_owned());
    statements.push(LINKS.to_owned());
    statements
}

const MEMBERSHIPS: &str = "\
insert into memberships (id, org_id, user_id, role_id)
select md5($2 || ':membership:' || r)::uuid, $1, u.id, ro.id
  from unnest(array['owner', 'admin', 'member', 'viewer']) r
  join users u on u.external_id = $2 || '-' || r
  join roles ro on ro.org_id = $1 and ro.name = r
on conflict do nothing";

const TEAMS: &str = "\
insert into teams (id, org_id, name, slug)
select md5($2 || ':team:' || t)::uuid, $1, 'Team ' || t, 'team-' || t
  from generate_series(0, 1) t
on conflict do nothing";

// org-K-member is in team-0 as a member, org-K-viewer in team-1 as a viewer.
const TEAM_MEMBERSHIPS: &str = "\
insert into team_memberships (id, org_id, team_id, user_id, role_id)
select md5($2 || ':team_membership:' || t || ':' || r)::uuid, $1,
       md5($2 || ':team:' || t)::uuid, u.id, ro.id
  from (values (0, 'member'), (1, 'viewer')) tr(t, r)
  join users u on u.external_id = $2 || '-' || tr.r
  join roles ro on ro.org_id = $1 and ro.name = tr.r
on conflict do nothing";

const CLIENTS: &str = "\
insert into clients (id, org_id, name)
select md5($2 || ':client:' || c)::uuid, $1, 'Client ' || c
  from generate_series(0, 1) c
on conflict do nothing";

const CLIENT_MEMBERSHIPS: &str = "\
insert into client_memberships (id, org_id, client_id, user_id, role_id)
select md5($2 || ':client_membership:' || c)::uuid, $1, md5($2 || ':client:' || c)::uuid, u.id, ro.id
  from generate_series(0, 1) c
  join users u on u.external_id = $2 || '-client-' || c
  join roles ro on ro.org_id = $1 and ro.name = 'viewer'
on conflict do nothing";

const DOCKS: &str = concat!(
    "\
insert into docks (id, org_id, name, provider, encrypted_api_key, api_key_hint, last_sync_at,
                   last_sync_status, last_sync_error, sync_interval_seconds, backoff_until)
select md5($2 || ':dock:' || d.provider)::uuid, $1, d.name, d.provider, '\\x00'::bytea, '0000',
       ",
    base_ts!(),
    " - d.ago, d.status, d.error, d.every, 'infinity'::timestamptz
  from (values
        ('DigitalOcean', 'digitalocean', 'success', interval '5 minutes', null, 900),
        ('Linode', 'linode', 'error', interval '2 hours', 'provider answered 429 Too Many Requests', 3600),
        ('Vercel', 'vercel', 'syncing', interval '1 hour', null, 3600),
        ('GridPane', 'gridpane', 'success', interval '1 day', null, 86400)
       ) d(name, provider, status, ago, error, every)
on conflict do nothing"
);

// team-0 reads the DigitalOcean dock; client 0 reads the Vercel dock.
const DOCK_PERMISSIONS: &str = "\
insert into dock_permissions (id, org_id, dock_id, team_id, client_id, level)
values (md5($2 || ':dock_permission:0')::uuid, $1, md5($2 || ':dock:digitalocean')::uuid,
        md5($2 || ':team:0')::uuid, null, 'read'),
       (md5($2 || ':dock_permission:1')::uuid, $1, md5($2 || ':dock:vercel')::uuid,
        null, md5($2 || ':client:0')::uuid, 'read')
on conflict do nothing";

// Three runs per dock, newest (j = 0) first; the newest matches the dock's last_sync_status.
const SYNC_RUNS: &str = concat!(
    "\
insert into sync_runs (id, org_id, dock_id, trigger, status, started_at, finished_at,
                       created, updated, deleted, unchanged, pages, requests, error)
select md5($2 || ':sync_run:' || d.provider || ':' || j)::uuid, $1,
       md5($2 || ':dock:' || d.provider)::uuid,
       case when j = 1 then 'manual' else 'schedule' end,
       s.status, s.started, case when s.status = 'syncing' then null
                                 else s.started + (20 + 7 * j) * interval '1 second' end,
       case when j = 2 then 50 * $3 else 0 end,
       case when s.status = 'success' and j < 2 then 3 + j else 0 end,
       case when j = 0 and s.status = 'success' then 1 else 0 end,
       case when j = 2 or s.status <> 'success' then 0 else 50 * $3 - 4 end,
       case when s.status = 'syncing' then 1 else 1 + $3 end,
       case when s.status = 'syncing' then 1 else 2 + $3 end,
       case when s.status = 'error' then 'provider answered 429 Too Many Requests' end
  from (values ('digitalocean', 'success', interval '5 minutes', interval '15 minutes'),
               ('linode', 'error', interval '2 hours', interval '1 hour'),
               ('vercel', 'syncing', interval '1 hour', interval '1 hour'),
               ('gridpane', 'success', interval '1 day', interval '1 day')
       ) d(provider, last_status, ago, every)
 cross join generate_series(0, 2) j
 cross join lateral (select case when j = 0 then d.last_status else 'success' end as status,
                            ",
    base_ts!(),
    " - d.ago - j * d.every as started) s
on conflict do nothing"
);

/// One resource table: its name, the kind's index (0..4), the name prefix, and its own columns
/// with their values (`n` is the index within the kind, `h` an md5 hex digest of its key).
struct ResourceKind {
    table: &'static str,
    kind: &'static str,
    index: u32,
    columns: &'static str,
    values: &'static str,
    name: &'static str,
}

const RESOURCE_KINDS: [ResourceKind; 4] = [
    ResourceKind {
        table: "servers",
        kind: "server",
        index: 0,
        columns: "primary_ip_address, ipv6, vcpus, memory_mb, disk_gb, image",
        values: "'127.' || $4 || '.' || (n / 250) || '.' || (n % 250 + 1),
                 '::1',
                 (array[1, 2, 4, 8])[1 + b(h, 4) % 4],
                 2048 * (array[1, 2, 4, 8])[1 + b(h, 4) % 4],
                 25 * (array[1, 2, 4, 8])[1 + b(h, 4) % 4],
                 (array['ubuntu-24-04-x64', 'debian-12-x64', 'rockylinux-9-x64'])[1 + b(h, 5) % 3]",
        name: "'server-' || pad",
    },
    ResourceKind {
        table: "web_services",
        kind: "web_service",
        index: 1,
        columns: "production_url, environment, framework",
        values: "'https://app-' || pad || '.localhost',
                 (array['production', 'production', 'preview'])[1 + b(h, 4) % 3],
                 (array['nextjs', 'wordpress', 'laravel', 'astro'])[1 + b(h, 5) % 4]",
        name: "'app-' || pad",
    },
    ResourceKind {
        table: "domains",
        kind: "domain",
        index: 2,
        columns: "domain_name, expires_at, auto_renew",
        values: concat!(
            "'site' || pad || '.invalid', ",
            base_ts!(),
            " + (30 + b(h, 4) * 3) * interval '1 day', b(h, 5) % 4 <> 0"
        ),
        name: "'site' || pad || '.invalid'",
    },
    ResourceKind {
        table: "databases",
        kind: "database",
        index: 3,
        columns: "engine, version, host, port",
        values: "(array['postgresql', 'mysql', 'redis'])[1 + b(h, 4) % 3],
                 (array['16', '8.0', '7.2'])[1 + b(h, 4) % 3],
                 'db-' || pad || '.internal.invalid',
                 (array[5432, 3306, 6379])[1 + b(h, 4) % 3]",
        name: "'db-' || pad",
    },
];

/// Resources of one kind: `50·N` rows, row `n` on dock `(n + kind) % 4`.
fn resource_statement(kind: &ResourceKind) -> String {
    let ResourceKind {
        table,
        kind: kind_name,
        index,
        columns,
        values,
        name,
    } = kind;
    // b(h, i): the i-th byte of the row's digest, 0..255.
    let values = values.replace("b(h, ", "get_byte(decode(h, 'hex'), ");
    let base = base_ts!();
    format!(
        "insert into {table} (id, org_id, dock_id, provider, provider_resource_id, name, status,
                    provider_status, region, full_api_data, health_state, last_health_check_at,
                    last_seen_at, {columns})
select md5(key)::uuid, $1, md5($2 || ':dock:' || provider)::uuid, provider,
       '{kind_name}-' || pad, nm, status,
       case status when 'active' then 'running' when 'provisioning' then 'new'
                   when 'stopped' then 'off' else 'errored' end,
       region,
       jsonb_build_object('id', '{kind_name}-' || pad, 'name', nm, 'region', region,
                          'status', status),
       health,
       case when health = 'unknown' then null
            else {base} - get_byte(decode(h, 'hex'), 2) * interval '7 seconds' end,
       {base},
       {values}
  from generate_series(0, 50 * $3 - 1) n
 cross join lateral (select $2 || ':{kind_name}:' || n as key,
                            md5($2 || ':{kind_name}:' || n) as h,
                            lpad(n::text, greatest(3, length(n::text)), '0') as pad,
                            (array['digitalocean', 'linode', 'vercel', 'gridpane'])[1 + (n + {index}) % 4]
                                as provider) g
 cross join lateral (select {name} as nm,
                            (array['active', 'active', 'active', 'provisioning', 'stopped', 'error'])
                                [1 + get_byte(decode(h, 'hex'), 0) % 6] as status,
                            (array['healthy', 'healthy', 'degraded', 'unhealthy', 'unknown'])
                                [1 + get_byte(decode(h, 'hex'), 1) % 5] as health,
                            (array['nyc3', 'ams3', 'fra1', 'sfo3', 'lon1', 'sgp1'])
                                [1 + get_byte(decode(h, 'hex'), 3) % 6] as region) v
on conflict do nothing"
    )
}

// Project p: client 0 when p % 4 = 0; client 1 and team-0 when p % 4 = 1; team-1 when p % 4 = 2.
const PROJECTS: &str = concat!(
    "\
insert into projects (id, org_id, client_id, team_id, name, slug, description, created_by,
                      created_at)
select md5($2 || ':project:' || p)::uuid, $1,
       case p % 4 when 0 then md5($2 || ':client:0')::uuid
                  when 1 then md5($2 || ':client:1')::uuid end,
       case p % 4 when 1 then md5($2 || ':team:0')::uuid
                  when 2 then md5($2 || ':team:1')::uuid end,
       'Project ' || pad, 'project-' || pad,
       'Seeded project ' || p || ' of ' || $2,
       md5('user:' || $2 || '-owner')::uuid,
       ",
    base_ts!(),
    " - (10 * $3 - p) * interval '1 hour'
  from generate_series(0, 10 * $3 - 1) p
 cross join lateral (select lpad(p::text, greatest(3, length(p::text)), '0') as pad) g
on conflict do nothing"
);

// Project p links resources 20p … 20p+19 of the org; resource i is of kind i % 4 (servers,
// web services, domains, databases) and is row i / 4 of its kind: five of each kind per project.
// denormalized_name/status are placeholders that the fill trigger overwrites.
const LINKS: &str = concat!(
    "\
insert into project_resources (id, org_id, project_id, resource_kind, server_id, web_service_id,
                               domain_id, database_id, denormalized_name, denormalized_status,
                               linked_by, linked_at)
select md5($2 || ':link:' || p || ':' || j)::uuid, $1, md5($2 || ':project:' || p)::uuid,
       kind,
       case when kind = 'server' then rid end,
       case when kind = 'web_service' then rid end,
       case when kind = 'domain' then rid end,
       case when kind = 'database' then rid end,
       '', 'unknown',
       md5('user:' || $2 || '-owner')::uuid,
       ",
    base_ts!(),
    " - (10 * $3 - p) * interval '1 hour' + j * interval '1 minute'
  from generate_series(0, 10 * $3 - 1) p
 cross join generate_series(0, 19) j
 cross join lateral (select (array['server', 'web_service', 'domain', 'database'])[1 + (20 * p + j) % 4]
                                as kind,
                            (20 * p + j) / 4 as n) r
 cross join lateral (select md5($2 || ':' || kind || ':' || n)::uuid as rid) x
on conflict do nothing"
);

const COUNTS: &str = "\
with o as (select id from organizations where slug ~ '^org-[0-9]$')
select (select count(*) from o) as organizations,
       (select count(*) from users where external_id ~ '^org-[0-9]-') as users,
       (select count(*) from memberships where org_id in (select id from o)) as memberships,
       (select count(*) from teams where org_id in (select id from o)) as teams,
       (select count(*) from clients where org_id in (select id from o)) as clients,
       (select count(*) from client_memberships where org_id in (select id from o))
           as client_memberships,
       (select count(*) from docks where org_id in (select id from o)) as docks,
       (select count(*) from sync_runs where org_id in (select id from o)) as sync_runs,
       (select count(*) from projects where org_id in (select id from o)) as projects,
       (select (select count(*) from servers where org_id in (select id from o))
             + (select count(*) from web_services where org_id in (select id from o))
             + (select count(*) from domains where org_id in (select id from o))
             + (select count(*) from databases where org_id in (select id from o))) as resources,
       (select count(*) from project_resources where org_id in (select id from o)) as links";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_only_the_four_parameters() {
        for sql in per_org_statements() {
            assert!(!sql.contains("$5"), "{sql}");
            assert!(!sql.contains("b(h, "), "{sql}");
        }
    }
}
