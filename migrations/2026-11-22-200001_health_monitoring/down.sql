drop function stackgate_prune_health_checks(integer, integer);
drop function stackgate_claim_due_health_checks(text, integer, integer, integer);
drop policy owner_maintenance_delete on health_checks;
drop policy owner_maintenance_select on health_checks;
drop index health_checks_checked_at_idx;
drop index alerts_one_open_per_resource;
drop table health_check_intervals;

do $$
declare
    t text;
begin
    foreach t in array array['servers', 'web_services', 'domains', 'databases'] loop
        execute format('drop policy owner_maintenance_update on %I', t);
        execute format('drop policy owner_maintenance_select on %I', t);
        execute format('drop trigger set_updated_at on %I', t);
        execute format(
            'create trigger set_updated_at before update on %I
                 for each row execute function stackgate_set_updated_at()', t);
        execute format(
            'alter table %I
                 drop column health_next_check_at,
                 drop column health_lease_owner,
                 drop column health_lease_expires_at,
                 drop column health_streak_state,
                 drop column health_streak_count', t);
    end loop;
end
$$;
