-- Health monitoring (docs/health.md): probe scheduling on the resource tables, per-org and
-- per-kind intervals, the cross-organization claim of due probes, and the history's retention.
--
-- Every resource table gets the probe scheduler's state. It lives on the resource row so that
-- every replica reads and writes the same state under the row's lock:
--   health_next_check_at     when the next probe is due (-infinity: never probed, due now)
--   health_lease_owner       the replica probing it now, until health_lease_expires_at
--   health_streak_state      the observed state that differs from health_state, if any, and
--   health_streak_count      how many consecutive probes observed it (hysteresis: health_state
--                            changes once that count reaches N)
-- health_state / last_health_check_at (from the resources migration) stay the confirmed state and
-- the time of the latest probe. None of these columns bump updated_at: probing a resource does not
-- change the resource.

do $$
declare
    t text;
begin
    foreach t in array array['servers', 'web_services', 'domains', 'databases'] loop
        execute format(
            'alter table %1$I
                 add column health_next_check_at timestamptz not null default ''-infinity'',
                 add column health_lease_owner text,
                 add column health_lease_expires_at timestamptz,
                 add column health_streak_state text,
                 add column health_streak_count integer not null default 0,
                 add constraint %1$s_health_streak_state_check
                     check (health_streak_state in (''healthy'', ''degraded'', ''unhealthy'', ''unknown'')),
                 add constraint %1$s_health_streak_count_check check (health_streak_count >= 0)', t);
        -- Due probes in order (never-probed first, then the longest overdue): a range scan.
        execute format(
            'create index %1$s_health_due_idx on %1$I (health_next_check_at, id)
                 where status <> ''deleted''', t);
        execute format('drop trigger set_updated_at on %I', t);
        execute format(
            'create trigger set_updated_at before update on %I for each row execute function
                 stackgate_set_updated_at(''health_state'', ''last_health_check_at'',
                     ''health_next_check_at'', ''health_lease_owner'', ''health_lease_expires_at'',
                     ''health_streak_state'', ''health_streak_count'')', t);
    end loop;
end
$$;

-- Probe intervals per organization and kind, overriding the server-wide default
-- (STACKGATE_HEALTH_INTERVAL).
create table health_check_intervals (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references organizations (id) on delete cascade,
    resource_kind    text not null,
    interval_seconds integer not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint health_check_intervals_org_id_id_key unique (org_id, id),
    constraint health_check_intervals_org_id_resource_kind_key unique (org_id, resource_kind),
    constraint health_check_intervals_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint health_check_intervals_interval_seconds_check
        check (interval_seconds between 1 and 604800)
);
create trigger set_updated_at before update on health_check_intervals
    for each row execute function stackgate_set_updated_at();

alter table health_check_intervals enable row level security;
alter table health_check_intervals force row level security;
create policy tenant_isolation on health_check_intervals
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
grant select, insert, update, delete on health_check_intervals to stackgate_app;

-- At most one open alert per resource (the monitor resolves it before opening another).
create unique index alerts_one_open_per_resource on alerts (org_id, resource_id)
    where resolved_at is null;
-- The retention prune walks the history by age.
create index health_checks_checked_at_idx on health_checks (checked_at);

-- Owner maintenance, as in the sync_leases migration: a non-superuser owner is subject to the
-- FORCEd policies, so these let the OWNER ROLE ONLY reach rows of every organization while the
-- transaction-local stackgate.owner_maintenance is 'on' (set only inside the functions below).
do $$
declare
    t text;
begin
    foreach t in array array['servers', 'web_services', 'domains', 'databases'] loop
        execute format(
            'create policy owner_maintenance_select on %I for select to %I
                 using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', t, current_user);
        execute format(
            'create policy owner_maintenance_update on %I for update to %I
                 using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')
                 with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', t, current_user);
    end loop;
    execute format(
        'create policy owner_maintenance_select on health_check_intervals for select to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_select on health_checks for select to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_delete on health_checks for delete to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
end
$$;

-- Claims up to p_limit (at most 1000) due probes of any organization for p_owner, with a lease
-- of p_lease_seconds. Due: not deleted, on a live dock, never probed or past its next check, and
-- not leased (or the lease expired). Never-probed first, then the longest overdue, across the four
-- tables. Returns only what the monitor needs to act in the resource's own organization scope:
-- the id, its organization, its kind, and its interval (the org-and-kind override, else
-- p_default_interval_seconds). Rows another replica is claiming are skipped, not waited for.
create function stackgate_claim_due_health_checks(
    p_owner text, p_lease_seconds integer, p_limit integer, p_default_interval_seconds integer)
    returns table (claimed_resource_id uuid, claimed_org_id uuid, claimed_kind text,
                   claimed_interval_seconds integer)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_limit integer;
begin
    if p_owner is null or length(p_owner) not between 1 and 200
       or p_lease_seconds is null or p_lease_seconds not between 1 and 86400
       or p_limit is null or p_limit < 0
       or p_default_interval_seconds is null
       or p_default_interval_seconds not between 1 and 604800 then
        raise exception 'stackgate_claim_due_health_checks: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    v_limit := least(p_limit, 1000);
    perform set_config('stackgate.owner_maintenance', 'on', true);
    return query
        with due_servers as (
            select t.id, t.health_next_check_at as due_at from servers t
             where t.status <> 'deleted'
               and t.health_next_check_at <= now()
               and (t.health_lease_expires_at is null or t.health_lease_expires_at < now())
               and not exists (select 1 from docks d where d.id = t.dock_id and d.deleted_at is not null)
             order by t.health_next_check_at, t.id
             limit v_limit
             for update of t skip locked
        ), due_web_services as (
            select t.id, t.health_next_check_at as due_at from web_services t
             where t.status <> 'deleted'
               and t.health_next_check_at <= now()
               and (t.health_lease_expires_at is null or t.health_lease_expires_at < now())
               and not exists (select 1 from docks d where d.id = t.dock_id and d.deleted_at is not null)
             order by t.health_next_check_at, t.id
             limit v_limit
             for update of t skip locked
        ), due_domains as (
            select t.id, t.health_next_check_at as due_at from domains t
             where t.status <> 'deleted'
               and t.health_next_check_at <= now()
               and (t.health_lease_expires_at is null or t.health_lease_expires_at < now())
               and not exists (select 1 from docks d where d.id = t.dock_id and d.deleted_at is not null)
             order by t.health_next_check_at, t.id
             limit v_limit
             for update of t skip locked
        ), due_databases as (
            select t.id, t.health_next_check_at as due_at from databases t
             where t.status <> 'deleted'
               and t.health_next_check_at <= now()
               and (t.health_lease_expires_at is null or t.health_lease_expires_at < now())
               and not exists (select 1 from docks d where d.id = t.dock_id and d.deleted_at is not null)
             order by t.health_next_check_at, t.id
             limit v_limit
             for update of t skip locked
        ), picked as (
            select u.kind, u.id from (
                select 'server'::text as kind, s.id, s.due_at from due_servers s
                union all select 'web_service', w.id, w.due_at from due_web_services w
                union all select 'domain', d.id, d.due_at from due_domains d
                union all select 'database', b.id, b.due_at from due_databases b
            ) u
            order by u.due_at, u.id
            limit v_limit
        ), claimed_servers as (
            update servers t
               set health_lease_owner = p_owner,
                   health_lease_expires_at = now() + p_lease_seconds * interval '1 second'
              from picked p where p.kind = 'server' and t.id = p.id
            returning t.id, t.org_id, 'server'::text as kind
        ), claimed_web_services as (
            update web_services t
               set health_lease_owner = p_owner,
                   health_lease_expires_at = now() + p_lease_seconds * interval '1 second'
              from picked p where p.kind = 'web_service' and t.id = p.id
            returning t.id, t.org_id, 'web_service'::text as kind
        ), claimed_domains as (
            update domains t
               set health_lease_owner = p_owner,
                   health_lease_expires_at = now() + p_lease_seconds * interval '1 second'
              from picked p where p.kind = 'domain' and t.id = p.id
            returning t.id, t.org_id, 'domain'::text as kind
        ), claimed_databases as (
            update databases t
               set health_lease_owner = p_owner,
                   health_lease_expires_at = now() + p_lease_seconds * interval '1 second'
              from picked p where p.kind = 'database' and t.id = p.id
            returning t.id, t.org_id, 'database'::text as kind
        ), claimed as (
            select * from claimed_servers
            union all select * from claimed_web_services
            union all select * from claimed_domains
            union all select * from claimed_databases
        )
        select c.id, c.org_id, c.kind, coalesce(i.interval_seconds, p_default_interval_seconds)
          from claimed c
          left join health_check_intervals i on i.org_id = c.org_id and i.resource_kind = c.kind;
    perform set_config('stackgate.owner_maintenance', '', true);
end
$$;

revoke all on function stackgate_claim_due_health_checks(text, integer, integer, integer) from public;
grant execute on function stackgate_claim_due_health_checks(text, integer, integer, integer)
    to stackgate_app;

-- The retention prune. health_checks stays append-only for stackgate_app (SELECT and INSERT
-- only): no bug or injected statement in the server can erase or rewrite a tenant's history, and
-- a per-organization DELETE would need one transaction per organization anyway. This function is
-- the only way rows leave: it deletes at most p_limit (at most 100000) of the oldest checks older
-- than p_retention_seconds, which may not be under an hour, across organizations, and returns how
-- many it deleted. The caller repeats it while it returns p_limit.
create function stackgate_prune_health_checks(p_retention_seconds integer, p_limit integer)
    returns integer
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_deleted integer;
begin
    if p_retention_seconds is null or p_retention_seconds < 3600
       or p_limit is null or p_limit not between 1 and 100000 then
        raise exception 'stackgate_prune_health_checks: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    perform set_config('stackgate.owner_maintenance', 'on', true);
    delete from health_checks h
     where h.id in (select o.id from health_checks o
                     where o.checked_at < now() - p_retention_seconds * interval '1 second'
                     order by o.checked_at
                     limit p_limit);
    get diagnostics v_deleted = row_count;
    perform set_config('stackgate.owner_maintenance', '', true);
    return v_deleted;
end
$$;

revoke all on function stackgate_prune_health_checks(integer, integer) from public;
grant execute on function stackgate_prune_health_checks(integer, integer) to stackgate_app;
