-- Access changes are events: whatever changes who may do what in an organization (memberships,
-- roles, teams, clients and their members, dock grants, API keys, projects' team or client, an
-- organization's slug or deletion, a user's identity or platform-admin flag) publishes an
-- `access` event in the transaction that makes it. Every replica then forgets the viewers it
-- cached and re-checks its open connections' callers, so a removed member or a revoked key is
-- refused at once on every replica, not after a cache period.
--
-- The payload names the organization (or none, for a user-level change: every organization) and
-- nothing else. NOTIFY folds identical payloads within a transaction, so a bulk change publishes
-- one event per organization.
create function stackgate_access_notify() returns trigger
    language plpgsql
as $$
declare
    v_org uuid;
begin
    if tg_table_name = 'organizations' then
        v_org := coalesce(new.id, old.id);
    elsif tg_table_name = 'users' then
        v_org := null;
    elsif tg_op = 'DELETE' then
        v_org := old.org_id;
    else
        v_org := new.org_id;
    end if;
    perform pg_notify('stackgate_events', json_build_object('type', 'access', 'org_id', v_org)::text);
    return null;
end
$$;

create trigger notify_access after insert or update or delete on memberships
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on roles
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on teams
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on team_memberships
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on clients
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on client_memberships
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or update or delete on dock_permissions
    for each row execute function stackgate_access_notify();
-- A key's use stamps `last_used_at` on every authentication: only what changes its standing counts.
create trigger notify_access after insert or delete on api_keys
    for each row execute function stackgate_access_notify();
create trigger notify_access_update after update of revoked_at, expires_at, user_id, org_id on api_keys
    for each row execute function stackgate_access_notify();
create trigger notify_access after insert or delete on projects
    for each row execute function stackgate_access_notify();
create trigger notify_access_update after update of team_id, client_id, deleted_at on projects
    for each row execute function stackgate_access_notify();
create trigger notify_access after delete on organizations
    for each row execute function stackgate_access_notify();
create trigger notify_access_update after update of slug, deleted_at on organizations
    for each row execute function stackgate_access_notify();
create trigger notify_access after delete on users
    for each row execute function stackgate_access_notify();
create trigger notify_access_update after update of external_id, email, is_platform_admin on users
    for each row execute function stackgate_access_notify();
