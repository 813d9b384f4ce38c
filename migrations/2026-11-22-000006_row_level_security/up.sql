-- Tenant isolation in the database (DESIGN section 4).
--
-- The server runs its queries as stackgate_app (SET ROLE on each pooled connection), a role that
-- owns nothing and cannot bypass row-level security. Each transaction first names its
-- organization:  select set_config('stackgate.org_id', $1, true)
-- and every tenant table shows and accepts only that organization's rows; unset or empty, nothing.
-- FORCE makes the policies apply to a (non-superuser) table owner too.
--
-- Before an organization is chosen, identity resolution uses these settings, each for the
-- current transaction only:
--   stackgate.external_id     the token's subject: finds the user
--   stackgate.user_id         that user: their memberships, organizations and roles
--   stackgate.admin_org_slug  a platform admin's target organization, by slug
--   stackgate.api_key_prefix  the prefix of an API key being verified: finds the key
-- Policies compare plain uuid/text settings; no per-row function calls on tenant tables.

-- Every tenant table: one policy on org_id for every command.
alter table roles enable row level security;
alter table roles force row level security;
create policy tenant_isolation on roles
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table memberships enable row level security;
alter table memberships force row level security;
create policy tenant_isolation on memberships
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table teams enable row level security;
alter table teams force row level security;
create policy tenant_isolation on teams
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table team_memberships enable row level security;
alter table team_memberships force row level security;
create policy tenant_isolation on team_memberships
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table clients enable row level security;
alter table clients force row level security;
create policy tenant_isolation on clients
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table client_memberships enable row level security;
alter table client_memberships force row level security;
create policy tenant_isolation on client_memberships
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy tenant_isolation on api_keys
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table docks enable row level security;
alter table docks force row level security;
create policy tenant_isolation on docks
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table dock_permissions enable row level security;
alter table dock_permissions force row level security;
create policy tenant_isolation on dock_permissions
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table sync_runs enable row level security;
alter table sync_runs force row level security;
create policy tenant_isolation on sync_runs
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table servers enable row level security;
alter table servers force row level security;
create policy tenant_isolation on servers
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table web_services enable row level security;
alter table web_services force row level security;
create policy tenant_isolation on web_services
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table domains enable row level security;
alter table domains force row level security;
create policy tenant_isolation on domains
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table databases enable row level security;
alter table databases force row level security;
create policy tenant_isolation on databases
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table projects enable row level security;
alter table projects force row level security;
create policy tenant_isolation on projects
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table project_resources enable row level security;
alter table project_resources force row level security;
create policy tenant_isolation on project_resources
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table operation_services enable row level security;
alter table operation_services force row level security;
create policy tenant_isolation on operation_services
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table operation_permissions enable row level security;
alter table operation_permissions force row level security;
create policy tenant_isolation on operation_permissions
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table health_checks enable row level security;
alter table health_checks force row level security;
create policy tenant_isolation on health_checks
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table alerts enable row level security;
alter table alerts force row level security;
create policy tenant_isolation on alerts
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

alter table audit_logs enable row level security;
alter table audit_logs force row level security;
create policy tenant_isolation on audit_logs
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

-- Identity resolution: extra SELECT policies (permissive, OR'ed with tenant_isolation).

-- A user's own memberships in every organization.
create policy memberships_own on memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

-- The role of each of the user's memberships.
create policy roles_of_own_memberships on roles for select
    using (id in (select m.role_id from memberships m where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));

-- An API key by its prefix, to verify a presented key before its organization is known.
create policy api_keys_by_prefix on api_keys for select
    using (prefix = nullif(current_setting('stackgate.api_key_prefix', true), ''));

-- organizations: the current one, the user's, or a platform admin's target; the app may update
-- only the current one and may neither create nor delete any.
alter table organizations enable row level security;
alter table organizations force row level security;
create policy organizations_visible on organizations for select
    using (id = nullif(current_setting('stackgate.org_id', true), '')::uuid
           or id in (select m.org_id from memberships m where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or slug = nullif(current_setting('stackgate.admin_org_slug', true), ''));
create policy organizations_update_current on organizations for update
    using (id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

-- users: the one being authenticated, the current user, and the people of the current
-- organization (members, and members of its teams and clients); a user may update only their own
-- row; the app creates and deletes none.
alter table users enable row level security;
alter table users force row level security;
create policy users_visible on users for select
    using (external_id = nullif(current_setting('stackgate.external_id', true), '')
           or id = nullif(current_setting('stackgate.user_id', true), '')::uuid
           or exists (select 1 from memberships m
                      where m.user_id = users.id and m.org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
           or exists (select 1 from team_memberships tm
                      where tm.user_id = users.id and tm.org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
           or exists (select 1 from client_memberships cm
                      where cm.user_id = users.id and cm.org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid));
create policy users_update_own on users for update
    using (id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
    with check (id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

-- Privileges of the application role.
grant select, insert, update, delete on
    roles, memberships, teams, team_memberships,
    clients, client_memberships, api_keys, docks,
    dock_permissions, sync_runs, servers, web_services,
    domains, databases, projects, project_resources,
    operation_services, operation_permissions, alerts
    to stackgate_app;
-- Append-only histories: no UPDATE or DELETE for the application.
grant select, insert on health_checks, audit_logs to stackgate_app;
-- Global rows: read, and update the few columns the application may change (never
-- users.is_platform_admin or external_id); no INSERT or DELETE.
grant select on organizations, users to stackgate_app;
grant update (name, slug, deleted_at) on organizations to stackgate_app;
grant update (name, email) on users to stackgate_app;
grant usage on all sequences in schema public to stackgate_app;
-- Readiness (/readyz) compares the applied migrations with the binary's, as the application.
grant select on __diesel_schema_migrations to stackgate_app;
