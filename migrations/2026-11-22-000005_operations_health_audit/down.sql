drop table audit_logs;
drop table alerts;
drop table health_checks;
drop table operation_permissions;
drop table operation_services;
