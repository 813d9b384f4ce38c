alter table team_memberships
    drop constraint team_memberships_team_id_user_id_key,
    add constraint team_memberships_team_id_user_id_key unique (team_id, user_id);

alter table client_memberships
    drop constraint client_memberships_client_id_user_id_key,
    add constraint client_memberships_client_id_user_id_key unique (client_id, user_id);

alter table dock_permissions
    drop constraint dock_permissions_dock_id_team_id_key,
    add constraint dock_permissions_dock_id_team_id_key unique (dock_id, team_id),
    drop constraint dock_permissions_dock_id_client_id_key,
    add constraint dock_permissions_dock_id_client_id_key unique (dock_id, client_id);

alter table operation_permissions
    drop constraint operation_permissions_operation_service_id_team_id_key,
    add constraint operation_permissions_operation_service_id_team_id_key
        unique (operation_service_id, team_id);

alter table project_operation_services
    drop constraint project_operation_services_project_id_service_id_key,
    add constraint project_operation_services_project_id_service_id_key
        unique (project_id, operation_service_id);
