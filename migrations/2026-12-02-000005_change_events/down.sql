drop trigger notify_change on projects;
drop trigger notify_change_update on projects;
drop trigger notify_change on docks;
drop trigger notify_change_update on docks;
drop function stackgate_change_notify();
