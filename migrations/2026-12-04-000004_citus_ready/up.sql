-- Unique keys that name org_id (docs/scale-out.md, "What the schema takes now").
--
-- A table distributed by org_id (Citus) can only enforce a unique key that contains org_id. Six
-- keys of tenant tables are unique on a column that already belongs to one organization: the
-- team, client, dock, operation service or project is tied to the row's org_id by a composite
-- foreign key ((org_id, x_id) references x (org_id, id)), so x_id determines org_id and
--   unique (x_id, y)  holds exactly when  unique (org_id, x_id, y)  holds.
-- Rebuilding them with org_id first accepts and refuses the same rows, keeps their names, and no
-- statement names them or infers them (no `on conflict (x_id, y)`). The keys an `on conflict`
-- names, and the ones that are unique across organizations, are left for the Citus migration.

alter table team_memberships
    drop constraint team_memberships_team_id_user_id_key,
    add constraint team_memberships_team_id_user_id_key unique (org_id, team_id, user_id);

alter table client_memberships
    drop constraint client_memberships_client_id_user_id_key,
    add constraint client_memberships_client_id_user_id_key unique (org_id, client_id, user_id);

alter table dock_permissions
    drop constraint dock_permissions_dock_id_team_id_key,
    add constraint dock_permissions_dock_id_team_id_key unique (org_id, dock_id, team_id),
    drop constraint dock_permissions_dock_id_client_id_key,
    add constraint dock_permissions_dock_id_client_id_key unique (org_id, dock_id, client_id);

alter table operation_permissions
    drop constraint operation_permissions_operation_service_id_team_id_key,
    add constraint operation_permissions_operation_service_id_team_id_key
        unique (org_id, operation_service_id, team_id);

alter table project_operation_services
    drop constraint project_operation_services_project_id_service_id_key,
    add constraint project_operation_services_project_id_service_id_key
        unique (org_id, project_id, operation_service_id);
