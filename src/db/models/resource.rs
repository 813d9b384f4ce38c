//! `servers`, `web_services`, `domains`, `databases`: the universal resource tables.
//!
//! Each table shares the [`Common`] columns and adds its own kind columns. Reads come in two
//! shapes, both batched: rows by id (one statement per kind asked for) and pages of ids under
//! many parents at once ([`page_ids`], one statement for every parent and kind).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::{databases, domains, servers, web_services};

/// The kinds of resource, as stored in `project_resources.resource_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Server,
    WebService,
    Domain,
    Database,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Server, Kind::WebService, Kind::Domain, Kind::Database];

    /// The stored word (`server`, `web_service`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::WebService => "web_service",
            Kind::Domain => "domain",
            Kind::Database => "database",
        }
    }

    pub fn parse(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

/// Columns every resource table has (`full_api_data` is loaded only on demand).
#[derive(Queryable, Clone, Debug)]
pub struct Common {
    pub id: Uuid,
    pub org_id: Uuid,
    pub dock_id: Uuid,
    pub provider: String,
    pub provider_resource_id: String,
    pub name: String,
    pub status: String,
    pub provider_status: Option<String>,
    pub region: Option<String>,
    pub health_state: String,
    pub last_health_check_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! common_columns {
    ($t:ident) => {
        (
            $t::id,
            $t::org_id,
            $t::dock_id,
            $t::provider,
            $t::provider_resource_id,
            $t::name,
            $t::status,
            $t::provider_status,
            $t::region,
            $t::health_state,
            $t::last_health_check_at,
            $t::last_seen_at,
            $t::created_at,
            $t::updated_at,
        )
    };
}

#[derive(Queryable, Clone, Debug)]
pub struct ServerColumns {
    pub primary_ip_address: Option<String>,
    pub ipv6: Option<String>,
    pub vcpus: Option<i32>,
    pub memory_mb: Option<i32>,
    pub disk_gb: Option<i32>,
    pub image: Option<String>,
}

#[derive(Queryable, Clone, Debug)]
pub struct WebServiceColumns {
    pub production_url: Option<String>,
    pub environment: Option<String>,
    pub framework: Option<String>,
}

#[derive(Queryable, Clone, Debug)]
pub struct DomainColumns {
    pub domain_name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub auto_renew: Option<bool>,
}

#[derive(Queryable, Clone, Debug)]
pub struct DatabaseColumns {
    pub engine: Option<String>,
    pub version: Option<String>,
    pub host: Option<String>,
    pub port: Option<i32>,
}

/// A resource's kind-specific columns.
#[derive(Clone, Debug)]
pub enum Extra {
    Server(ServerColumns),
    WebService(WebServiceColumns),
    Domain(DomainColumns),
    Database(DatabaseColumns),
}

/// One resource row of any kind.
#[derive(Clone, Debug)]
pub struct Resource {
    pub common: Common,
    pub extra: Extra,
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self.extra {
            Extra::Server(_) => Kind::Server,
            Extra::WebService(_) => Kind::WebService,
            Extra::Domain(_) => Kind::Domain,
            Extra::Database(_) => Kind::Database,
        }
    }
}

/// Loads the resources of one kind with the given ids (invisible ones are simply absent).
pub async fn by_ids(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    ids: &[Uuid],
) -> Result<Vec<Resource>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wrap = |common, extra| Resource { common, extra };
    Ok(match kind {
        Kind::Server => servers::table
            .filter(servers::id.eq_any(ids))
            .select((
                common_columns!(servers),
                (
                    servers::primary_ip_address,
                    servers::ipv6,
                    servers::vcpus,
                    servers::memory_mb,
                    servers::disk_gb,
                    servers::image,
                ),
            ))
            .load::<(Common, ServerColumns)>(conn)
            .await?
            .into_iter()
            .map(|(c, e)| wrap(c, Extra::Server(e)))
            .collect(),
        Kind::WebService => web_services::table
            .filter(web_services::id.eq_any(ids))
            .select((
                common_columns!(web_services),
                (
                    web_services::production_url,
                    web_services::environment,
                    web_services::framework,
                ),
            ))
            .load::<(Common, WebServiceColumns)>(conn)
            .await?
            .into_iter()
            .map(|(c, e)| wrap(c, Extra::WebService(e)))
            .collect(),
        Kind::Domain => domains::table
            .filter(domains::id.eq_any(ids))
            .select((
                common_columns!(domains),
                (
                    domains::domain_name,
                    domains::expires_at,
                    domains::auto_renew,
                ),
            ))
            .load::<(Common, DomainColumns)>(conn)
            .await?
            .into_iter()
            .map(|(c, e)| wrap(c, Extra::Domain(e)))
            .collect(),
        Kind::Database => databases::table
            .filter(databases::id.eq_any(ids))
            .select((
                common_columns!(databases),
                (
                    databases::engine,
                    databases::version,
                    databases::host,
                    databases::port,
                ),
            ))
            .load::<(Common, DatabaseColumns)>(conn)
            .await?
            .into_iter()
            .map(|(c, e)| wrap(c, Extra::Database(e)))
            .collect(),
    })
}

/// `full_api_data` of the given resources of one kind, by id.
pub async fn api_data(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Option<serde_json::Value>)>, DbError> {
    Ok(match kind {
        Kind::Server => {
            servers::table
                .filter(servers::id.eq_any(ids))
                .select((servers::id, servers::full_api_data))
                .load(conn)
                .await?
        }
        Kind::WebService => {
            web_services::table
                .filter(web_services::id.eq_any(ids))
                .select((web_services::id, web_services::full_api_data))
                .load(conn)
                .await?
        }
        Kind::Domain => {
            domains::table
                .filter(domains::id.eq_any(ids))
                .select((domains::id, domains::full_api_data))
                .load(conn)
                .await?
        }
        Kind::Database => {
            databases::table
                .filter(databases::id.eq_any(ids))
                .select((databases::id, databases::full_api_data))
                .load(conn)
                .await?
        }
    })
}

/// Which parent a page of resources hangs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parent {
    Org,
    Dock,
}

/// Filters and window of a resource page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub kinds: Option<Vec<String>>,
    pub status: Option<Vec<String>>,
    pub health: Option<Vec<String>>,
    /// Keyset position: rows strictly after `(name, kind, id)`.
    pub after: Option<(String, String, Uuid)>,
    /// Rows per parent, plus one to learn whether a next page exists.
    pub limit: i64,
    /// For restricted viewers: only resources on these docks or with these ids.
    pub visible: Option<(Vec<Uuid>, Vec<Uuid>)>,
}

/// One row of a resource page: which resource, under which parent, and the parent's total.
#[derive(QueryableByName, Clone, Debug)]
pub struct PageRow {
    #[diesel(sql_type = SqlUuid)]
    pub parent: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// Resources ordered by `(name, kind, id)` under each of `parents`, filtered, at most
/// `filter.limit` per parent, with each parent's total before the cursor: one statement.
pub async fn page_ids(
    conn: &mut AsyncPgConnection,
    parent: Parent,
    parents: &[Uuid],
    filter: &Filter,
) -> Result<Vec<PageRow>, DbError> {
    let column = match parent {
        Parent::Org => "org_id",
        Parent::Dock => "dock_id",
    };
    let union = ["servers", "web_services", "domains", "databases"]
        .iter()
        .zip(Kind::ALL)
        .map(|(table, kind)| {
            format!(
                "select '{kind}'::text as kind, id, name, {column} as parent, dock_id, status, health_state \
                 from {table} where {column} = any($1)",
                kind = kind.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" union all ");
    let sql = format!(
        "select parent, kind, id, name, total from ( \
           select c.*, row_number() over (partition by parent order by name, kind, id) as rn from ( \
             select r.*, count(*) over (partition by parent) as total from ({union}) r \
             where ($2::text[] is null or r.kind = any($2)) \
               and ($3::text[] is null or r.status = any($3)) \
               and ($4::text[] is null or r.health_state = any($4)) \
               and ($9::uuid[] is null or r.dock_id = any($9) or r.id = any($10)) \
           ) c where $5::text is null or (c.name, c.kind, c.id) > ($5, $6, $7) \
         ) t where rn <= $8 order by parent, rn"
    );
    let (after_name, after_kind, after_id) = match &filter.after {
        Some((n, k, i)) => (Some(n.as_str()), Some(k.as_str()), Some(*i)),
        None => (None, None, None),
    };
    Ok(diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(parents)
        .bind::<Nullable<Array<Text>>, _>(filter.kinds.as_deref())
        .bind::<Nullable<Array<Text>>, _>(filter.status.as_deref())
        .bind::<Nullable<Array<Text>>, _>(filter.health.as_deref())
        .bind::<Nullable<Text>, _>(after_name)
        .bind::<Nullable<Text>, _>(after_kind)
        .bind::<Nullable<SqlUuid>, _>(after_id)
        .bind::<BigInt, _>(filter.limit)
        .bind::<Nullable<Array<SqlUuid>>, _>(filter.visible.as_ref().map(|v| &v.0))
        .bind::<Array<SqlUuid>, _>(filter.visible.as_ref().map_or(&[][..], |v| &v.1[..]))
        .load(conn)
        .await?)
}

/// Does a live resource of `kind` with `id` exist for the scope? (link validation)
pub async fn exists(conn: &mut AsyncPgConnection, kind: Kind, id: Uuid) -> Result<bool, DbError> {
    Ok(!by_ids(conn, kind, &[id]).await?.is_empty())
}
