-- Claiming due docks across organizations (docs/sync.md), and owner maintenance.
--
-- The server runs as stackgate_app under forced row-level security: a transaction sees only the
-- docks of the organization named in stackgate.org_id. The scheduler's question, "which docks of
-- any organization are due?", cannot be asked that way, and we do not want to give stackgate_app
-- a way around its policies (a policy keyed on a setting it could set itself would be one: any
-- bug or injection could set it too).
--
-- So the one cross-organization statement lives in a SECURITY DEFINER function owned by the
-- schema owner: it claims up to p_limit due docks for p_owner with a lease of p_lease_seconds and
-- returns only (id, org_id) of the claimed docks. stackgate_app may execute it and nothing else
-- new; everything after the claim (the run, renewing and releasing the lease) happens in the
-- dock's own organization scope. search_path is pinned so the function cannot be steered to
-- other objects. Arguments are bounded (at most 100 docks, a lease of at most one day).
--
-- A superuser owner bypasses row-level security. A non-superuser owner is itself subject to the
-- FORCEd policies, so the policies below let the OWNER ROLE ONLY (they are created "to" the role
-- running this migration) see and update docks and operation_services while the
-- transaction-local setting stackgate.owner_maintenance is 'on'. Only the function (and
-- `stackgate rotate-keys`, connected as the owner) sets it; stackgate_app setting it gains
-- nothing, because these policies do not apply to stackgate_app.

do $$
begin
    execute format(
        'create policy owner_maintenance_select on docks for select to %I '
        'using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_update on docks for update to %I '
        'using (current_setting(''stackgate.owner_maintenance'', true) = ''on'') '
        'with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_select on operation_services for select to %I '
        'using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_update on operation_services for update to %I '
        'using (current_setting(''stackgate.owner_maintenance'', true) = ''on'') '
        'with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
end
$$;

-- Due: live, not leased (or the lease expired), not backing off, and never synced or synced
-- longer than its interval ago. Never-synced docks first, then the longest-waiting.
create function stackgate_claim_due_docks(p_owner text, p_lease_seconds integer, p_limit integer)
    returns table (claimed_dock_id uuid, claimed_org_id uuid)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
begin
    if p_owner is null or length(p_owner) not between 1 and 200
       or p_lease_seconds not between 1 and 86400 or p_limit < 0 then
        raise exception 'stackgate_claim_due_docks: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    perform set_config('stackgate.owner_maintenance', 'on', true);
    return query
        update docks d
           set lease_owner = p_owner,
               lease_expires_at = now() + p_lease_seconds * interval '1 second'
         where d.id in (
                 select c.id from docks c
                  where c.deleted_at is null
                    and (c.lease_expires_at is null or c.lease_expires_at < now())
                    and (c.backoff_until is null or c.backoff_until < now())
                    and (c.last_sync_at is null
                         or c.last_sync_at + c.sync_interval_seconds * interval '1 second' < now())
                  order by c.last_sync_at nulls first, c.id
                  limit least(p_limit, 100)
                  for update skip locked)
        returning d.id, d.org_id;
    perform set_config('stackgate.owner_maintenance', '', true);
end
$$;

revoke all on function stackgate_claim_due_docks(text, integer, integer) from public;
grant execute on function stackgate_claim_due_docks(text, integer, integer) to stackgate_app;
