drop function stackgate_claim_due_docks(text, integer, integer);
drop policy owner_maintenance_update on operation_services;
drop policy owner_maintenance_select on operation_services;
drop policy owner_maintenance_update on docks;
drop policy owner_maintenance_select on docks;
