revoke all on __diesel_schema_migrations from stackgate_app;
revoke usage on all sequences in schema public from stackgate_app;
revoke all on organizations, users from stackgate_app;
revoke all on
    roles, memberships, teams, team_memberships,
    clients, client_memberships, api_keys, docks,
    dock_permissions, sync_runs, servers, web_services,
    domains, databases, projects, project_resources,
    operation_services, operation_permissions, health_checks, alerts,
    audit_logs
    from stackgate_app;

drop policy users_update_own on users;
drop policy users_visible on users;
alter table users no force row level security;
alter table users disable row level security;

drop policy organizations_update_current on organizations;
drop policy organizations_visible on organizations;
alter table organizations no force row level security;
alter table organizations disable row level security;

drop policy api_keys_by_prefix on api_keys;
drop policy roles_of_own_memberships on roles;
drop policy memberships_own on memberships;

drop policy tenant_isolation on audit_logs;
alter table audit_logs no force row level security;
alter table audit_logs disable row level security;
drop policy tenant_isolation on alerts;
alter table alerts no force row level security;
alter table alerts disable row level security;
drop policy tenant_isolation on health_checks;
alter table health_checks no force row level security;
alter table health_checks disable row level security;
drop policy tenant_isolation on operation_permissions;
alter table operation_permissions no force row level security;
alter table operation_permissions disable row level security;
drop policy tenant_isolation on operation_services;
alter table operation_services no force row level security;
alter table operation_services disable row level security;
drop policy tenant_isolation on project_resources;
alter table project_resources no force row level security;
alter table project_resources disable row level security;
drop policy tenant_isolation on projects;
alter table projects no force row level security;
alter table projects disable row level security;
drop policy tenant_isolation on databases;
alter table databases no force row level security;
alter table databases disable row level security;
drop policy tenant_isolation on domains;
alter table domains no force row level security;
alter table domains disable row level security;
drop policy tenant_isolation on web_services;
alter table web_services no force row level security;
alter table web_services disable row level security;
drop policy tenant_isolation on servers;
alter table servers no force row level security;
alter table servers disable row level security;
drop policy tenant_isolation on sync_runs;
alter table sync_runs no force row level security;
alter table sync_runs disable row level security;
drop policy tenant_isolation on dock_permissions;
alter table dock_permissions no force row level security;
alter table dock_permissions disable row level security;
drop policy tenant_isolation on docks;
alter table docks no force row level security;
alter table docks disable row level security;
drop policy tenant_isolation on api_keys;
alter table api_keys no force row level security;
alter table api_keys disable row level security;
drop policy tenant_isolation on client_memberships;
alter table client_memberships no force row level security;
alter table client_memberships disable row level security;
drop policy tenant_isolation on clients;
alter table clients no force row level security;
alter table clients disable row level security;
drop policy tenant_isolation on team_memberships;
alter table team_memberships no force row level security;
alter table team_memberships disable row level security;
drop policy tenant_isolation on teams;
alter table teams no force row level security;
alter table teams disable row level security;
drop policy tenant_isolation on memberships;
alter table memberships no force row level security;
alter table memberships disable row level security;
drop policy tenant_isolation on roles;
alter table roles no force row level security;
alter table roles disable row level security;
