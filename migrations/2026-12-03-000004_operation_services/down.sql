drop trigger notify_access on operation_permissions;
drop trigger notify_change on project_operation_services;
drop function stackgate_project_operation_services_notify();
drop trigger notify_change_update on operation_services;
drop trigger notify_change on operation_services;
drop table project_operation_services;
alter table operation_services
    drop constraint operation_services_config_hint_length,
    drop constraint operation_services_provider_length,
    drop constraint operation_services_name_length,
    drop constraint operation_services_kind_check;
alter table operation_services drop column config_hint;
