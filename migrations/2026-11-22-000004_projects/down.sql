drop trigger sync_project_links on databases;
drop trigger sync_project_links on domains;
drop trigger sync_project_links on web_services;
drop trigger sync_project_links on servers;
drop function stackgate_resource_sync_links();
drop table project_resources;
drop function stackgate_project_resources_fill();
drop table projects;
