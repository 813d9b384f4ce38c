drop table sync_runs;
drop table dock_permissions;
drop table docks;
