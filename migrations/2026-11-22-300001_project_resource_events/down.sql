drop trigger notify_link_updates on project_resources;
drop trigger notify_link_changes on project_resources;
drop function stackgate_project_resources_notify();
