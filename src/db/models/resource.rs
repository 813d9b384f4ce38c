//! `servers`, `web_services`, `domains`, `databases`: the universal resource tables.
//!
//! Each table shares the [`Common`] columns and adds its own kind columns. Reads come in two
//! shapes, both batched: rows by id (one statement per kind asked for) and pages of ids under
//! many parents at once ([`page_ids`], one statement for every parent and kind).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Uuid as SqlUuid};
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

    /// The table holding resources of this kind.
    pub const fn table(self) -> &'static str {
        match self {
            Kind::Server => "servers",
            Kind::WebService => "web_services",
            Kind::Domain => "domains",
            Kind::Database => "databases",
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
    /// Set by users (`setResourceTags`), never by sync.
    pub tags: Vec<String>,
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
            $t::tags,
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
    /// What the rows must match beyond their kind.
    pub matching: Match,
    /// Keyset position: rows strictly after `(name, kind, id)`.
    pub after: Option<(String, String, Uuid)>,
    /// Rows per parent, plus one to learn whether a next page exists.
    pub limit: i64,
    /// For restricted viewers: only resources on these docks or with these ids.
    pub visible: Option<(Vec<Uuid>, Vec<Uuid>)>,
}

/// What a listed resource must match besides its kind: every field that is set (a list matches
/// any of its values, except `tags`, all of which must be present).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub status: Option<Vec<String>>,
    pub health: Option<Vec<String>>,
    pub providers: Option<Vec<String>>,
    pub docks: Option<Vec<Uuid>>,
    pub tags: Option<Vec<String>>,
    /// A case-insensitive substring of the name.
    pub search: Option<String>,
}

type Boxed<'f> = diesel::query_builder::BoxedSqlQuery<'f, Pg, diesel::query_builder::SqlQuery>;

/// The resource tables, in [`Kind::ALL`]'s order.
const TABLES: [&str; 4] = [
    Kind::Server.table(),
    Kind::WebService.table(),
    Kind::Domain.table(),
    Kind::Database.table(),
];

impl Match {
    pub fn is_empty(&self) -> bool {
        self == &Match::default()
    }

    /// True when health states decide what matches (health events then change the list).
    pub fn reads_health(&self) -> bool {
        self.health.is_some()
    }

    /// ` and <condition>` over the columns of `alias` for every field that is set, with
    /// parameters numbered from `first`; unset fields add nothing, so an unfiltered list keeps
    /// its plain statement. Returns the text and the next free parameter number.
    fn conditions(&self, alias: &str, first: usize) -> (String, usize) {
        let checks = [
            (self.status.is_some(), "status = any($)"),
            (self.health.is_some(), "health_state = any($)"),
            (self.providers.is_some(), "provider = any($)"),
            (self.docks.is_some(), "dock_id = any($)"),
            (self.tags.is_some(), "tags @> $::text[]"),
            (self.search.is_some(), "name ilike $"),
        ];
        let mut next = first;
        let mut text = String::new();
        for (_, check) in checks.iter().filter(|(set, _)| *set) {
            text += &format!(" and {alias}.{}", check.replace('$', &format!("${next}")));
            next += 1;
        }
        (text, next)
    }

    /// Binds the values of [`Match::conditions`] (and of [`Match::ids_condition`]), in order.
    pub(crate) fn bind<'f>(&'f self, mut query: Boxed<'f>) -> Boxed<'f> {
        if let Some(status) = &self.status {
            query = query.bind::<Array<Text>, _>(status);
        }
        if let Some(health) = &self.health {
            query = query.bind::<Array<Text>, _>(health);
        }
        if let Some(providers) = &self.providers {
            query = query.bind::<Array<Text>, _>(providers);
        }
        if let Some(docks) = &self.docks {
            query = query.bind::<Array<SqlUuid>, _>(docks);
        }
        if let Some(tags) = &self.tags {
            query = query.bind::<Array<Text>, _>(tags);
        }
        if let Some(search) = &self.search {
            query = query.bind::<Text, _>(like_pattern(search));
        }
        query
    }

    /// ` and <column> in (<ids of every kind that match>)`, parameters from `first`: for lists
    /// that hold resource ids rather than resource rows (a project's links).
    pub(crate) fn ids_condition(&self, column: &str, first: usize) -> String {
        let (conditions, _) = self.conditions("r", first);
        let union = TABLES
            .iter()
            .map(|table| format!("select r.id from {table} r where true{conditions}"))
            .collect::<Vec<_>>()
            .join(" union all ");
        format!(" and {column} in ({union})")
    }
}

/// `%text%` with `text`'s own `%`, `_` and `\\` escaped, for `ilike`.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
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
    /// False for the one row [`page_ids`] gives a parent none of whose resources is on the page
    /// (a cursor past its last): it only carries the parent's total.
    #[diesel(sql_type = Bool)]
    pub in_page: bool,
}

super::keyset::page_row!(PageRow, parent);

/// Resources ordered by `(name, kind, id)` under each of `parents`, filtered, at most
/// `filter.limit` per parent, with each parent's total whatever the cursor (see
/// [`PageRow::in_page`]): one statement.
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
    let union = TABLES
        .iter()
        .zip(Kind::ALL)
        .map(|(table, kind)| {
            format!(
                "select '{kind}'::text as kind, id, name, {column} as parent, dock_id, status, \
                 health_state, provider, tags from {table} where {column} = any($1)",
                kind = kind.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" union all ");
    let (conditions, _) = filter.matching.conditions("r", 9);
    let sql = super::keyset::pages_sql(
        "r.parent, r.kind, r.id, r.name",
        &format!(
            "from ({union}) r \
             where ($2::text[] is null or r.kind = any($2)) \
               and ($7::uuid[] is null or r.dock_id = any($7) or r.id = any($8)){conditions}"
        ),
        "parent",
        "name, kind, id",
        "$3::text is null or (name, kind, id) > ($3, $4, $5)",
        "$6",
    );
    let (after_name, after_kind, after_id) = match &filter.after {
        Some((n, k, i)) => (Some(n.as_str()), Some(k.as_str()), Some(*i)),
        None => (None, None, None),
    };
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Array<SqlUuid>, _>(parents)
        .bind::<Nullable<Array<Text>>, _>(filter.kinds.as_deref())
        .bind::<Nullable<Text>, _>(after_name)
        .bind::<Nullable<Text>, _>(after_kind)
        .bind::<Nullable<SqlUuid>, _>(after_id)
        .bind::<BigInt, _>(filter.limit)
        .bind::<Nullable<Array<SqlUuid>>, _>(filter.visible.as_ref().map(|v| &v.0))
        .bind::<Array<SqlUuid>, _>(filter.visible.as_ref().map_or(&[][..], |v| &v.1[..]));
    Ok(filter.matching.bind(query).load(conn).await?)
}

/// Does a live resource of `kind` with `id` exist for the scope? (link validation)
pub async fn exists(conn: &mut AsyncPgConnection, kind: Kind, id: Uuid) -> Result<bool, DbError> {
    Ok(!by_ids(conn, kind, &[id]).await?.is_empty())
}

/// Replaces the tags of the resource of `kind` with `id`; false when no such resource exists for
/// the scope. Sync never calls this, and never writes the column.
pub async fn set_tags(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    id: Uuid,
    tags: &[String],
) -> Result<bool, DbError> {
    let table = TABLES[Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()];
    let updated = diesel::sql_query(format!("update {table} set tags = $1 where id = $2"))
        .bind::<Array<Text>, _>(tags)
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(updated == 1)
}
