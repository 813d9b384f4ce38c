'use strict';
// PostGraphile 4.14 over stackgate's database: the peer of the dashboard benchmark
// (bench/dashboard.rs starts it; bench/dashboard.postgraphile.graphql is the query it serves).
//
// Like stackgate it runs every request as the role `stackgate_app` inside a transaction that sets
// `stackgate.org_id`, so row-level security applies exactly as it does to stackgate. The schema
// is introspected as the connection's role (the schema owner); nothing is added to the database.
//
// Environment: DATABASE_URL (required), ORG_ID (required: the organization every request acts
// in), PORT (default 5678; the server listens on 127.0.0.1 only), WORKERS (default 1: one Node
// process; 2 or more: a cluster of that many processes sharing the port), POOL_SIZE (default 16
// connections per process).

const cluster = require('cluster');
const http = require('http');
const { Pool } = require('pg');
const {
  postgraphile,
  makeExtendSchemaPlugin,
  makeJSONPgSmartTagsPlugin,
  gql,
  embed,
} = require('postgraphile');

const env = process.env;
const DATABASE_URL = env.DATABASE_URL;
const ORG_ID = env.ORG_ID;
const PORT = Number(env.PORT || 5678);
const WORKERS = Math.max(1, Number(env.WORKERS || 1));
const POOL_SIZE = Math.max(1, Number(env.POOL_SIZE || 16));

if (!DATABASE_URL || !ORG_ID) {
  console.error('postgraphile peer: set DATABASE_URL and ORG_ID');
  process.exit(2);
}

// Natural field names for the relations the dashboard follows (the foreign keys are composite
// with org_id, so the default names would be e.g. `serverByOrgIdAndServerId`).
const SmartTags = makeJSONPgSmartTagsPlugin({
  version: 1,
  config: {
    constraint: {
      projects_org_id_fkey: { tags: { fieldName: 'organization', foreignFieldName: 'projects' } },
      projects_client_fkey: { tags: { fieldName: 'client', foreignFieldName: 'projects' } },
      projects_team_fkey: { tags: { fieldName: 'team', foreignFieldName: 'projects' } },
      project_resources_project_fkey: {
        tags: { fieldName: 'project', foreignFieldName: 'resources' },
      },
      project_resources_server_fkey: { tags: { fieldName: 'server' } },
      project_resources_web_service_fkey: { tags: { fieldName: 'webService' } },
      project_resources_domain_fkey: { tags: { fieldName: 'domain' } },
      project_resources_database_fkey: { tags: { fieldName: 'database' } },
      servers_dock_fkey: { tags: { fieldName: 'dock', foreignFieldName: 'servers' } },
      web_services_dock_fkey: { tags: { fieldName: 'dock', foreignFieldName: 'webServices' } },
      domains_dock_fkey: { tags: { fieldName: 'dock', foreignFieldName: 'domains' } },
      databases_dock_fkey: { tags: { fieldName: 'dock', foreignFieldName: 'databases' } },
    },
  },
});

// Project.healthSummary: counts per health state over the project's linked resources, computed
// inside PostGraphile's one statement (an inlined subquery, no extra round trip).
const HealthSummary = makeExtendSchemaPlugin((build) => {
  const sql = build.pgSql;
  return {
    typeDefs: gql`
      extend type Project {
        healthSummary: JSON
          @pgQuery(
            fragment: ${embed(
              (queryBuilder) => sql.fragment`(
                select json_build_object(
                         'healthy', count(*) filter (where h.state = 'healthy'),
                         'degraded', count(*) filter (where h.state = 'degraded'),
                         'unhealthy', count(*) filter (where h.state = 'unhealthy'),
                         'unknown', count(*) filter (where h.state = 'unknown'))
                  from public.project_resources pr
                  left join public.servers s on s.org_id = pr.org_id and s.id = pr.server_id
                  left join public.web_services w
                         on w.org_id = pr.org_id and w.id = pr.web_service_id
                  left join public.domains d on d.org_id = pr.org_id and d.id = pr.domain_id
                  left join public.databases b on b.org_id = pr.org_id and b.id = pr.database_id
                  cross join lateral (select coalesce(s.health_state, w.health_state,
                                                      d.health_state, b.health_state) as state) h
                 where pr.org_id = ${queryBuilder.getTableAlias()}.org_id
                   and pr.project_id = ${queryBuilder.getTableAlias()}.id)`,
            )}
          )
      }
    `,
  };
});

function serve() {
  const pool = new Pool({ connectionString: DATABASE_URL, max: POOL_SIZE });
  pool.on('error', (e) => console.error('postgraphile peer: idle client error', e.message));
  const middleware = postgraphile(pool, 'public', {
    appendPlugins: [SmartTags, HealthSummary],
    pgSettings: { role: 'stackgate_app', 'stackgate.org_id': ORG_ID },
    dynamicJson: true,
    setofFunctionsContainNulls: false,
    legacyRelations: 'omit',
    disableDefaultMutations: true,
    disableQueryLog: true,
    graphiql: false,
    enableCors: false,
    watchPg: false,
    retryOnInitFail: false,
    showErrorStack: false,
    extendedErrors: ['errcode'],
  });
  const server = http.createServer(middleware);
  server.keepAliveTimeout = 65000;
  server.listen(PORT, '127.0.0.1', () => {
    console.error(`postgraphile peer: pid ${process.pid} listening on 127.0.0.1:${PORT}`);
  });
  const stop = () => server.close(() => pool.end().then(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A cluster worker whose primary went away exits too.
  process.on('disconnect', () => process.exit(0));
}

if (WORKERS > 1 && cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`postgraphile peer: worker ${worker.process.pid} died (${signal || code})`);
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
      process.exit(1);
    }
  });
  const stopAll = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
} else {
  serve();
}
