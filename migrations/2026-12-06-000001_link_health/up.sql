-- A link carries its resource's health state, as it carries its name and status
-- (docs/architecture.md, "Projects"; docs/health.md).
--
-- A project's health summary counts its links by health state. Read from the four resource
-- tables it was a four-way join per dashboard (≈3 ms of PostgreSQL per request, planning
-- included); kept on the link it is one scan of project_resources. The copy is exact at every
-- commit: the fill trigger writes it on insert (and whenever a caller writes it), and a resource's
-- health change rewrites its links in the same statement, under the same locks as a rename.

alter table project_resources
    add column denormalized_health text not null default 'unknown',
    add constraint project_resources_denormalized_health_check
        check (denormalized_health in ('healthy', 'degraded', 'unhealthy', 'unknown'));

-- A health change alone is not a change of the link: updated_at stays.
drop trigger set_updated_at on project_resources;
create trigger set_updated_at before update on project_resources
    for each row execute function stackgate_set_updated_at('resource_id', 'denormalized_health');

-- Fill: as before, plus the health state. Whatever the caller wrote is replaced by the resource's.
create or replace function stackgate_project_resources_fill() returns trigger
    language plpgsql
as $$
declare
    v_id     uuid;
    v_name   text;
    v_status text;
    v_health text;
begin
    v_id := case new.resource_kind
        when 'server' then new.server_id
        when 'web_service' then new.web_service_id
        when 'domain' then new.domain_id
        when 'database' then new.database_id
    end;
    if v_id is null
       or num_nonnulls(new.server_id, new.web_service_id, new.domain_id, new.database_id) <> 1 then
        raise exception 'project_resources: exactly one resource id must be set, matching resource_kind %',
                coalesce(quote_literal(new.resource_kind), 'NULL')
            using errcode = 'check_violation',
                  constraint = 'project_resources_kind_matches',
                  table = 'project_resources';
    end if;

    case new.resource_kind
        when 'server' then
            select name, status, health_state into v_name, v_status, v_health
              from servers where org_id = new.org_id and id = v_id for share;
        when 'web_service' then
            select name, status, health_state into v_name, v_status, v_health
              from web_services where org_id = new.org_id and id = v_id for share;
        when 'domain' then
            select name, status, health_state into v_name, v_status, v_health
              from domains where org_id = new.org_id and id = v_id for share;
        when 'database' then
            select name, status, health_state into v_name, v_status, v_health
              from databases where org_id = new.org_id and id = v_id for share;
    end case;
    if not found then
        raise exception 'project_resources: % % does not exist in organization %',
                new.resource_kind, v_id, new.org_id
            using errcode = 'foreign_key_violation',
                  constraint = 'project_resources_' || new.resource_kind || '_fkey',
                  table = 'project_resources';
    end if;

    new.denormalized_name := v_name;
    new.denormalized_status := v_status;
    new.denormalized_health := v_health;
    return new;
end
$$;
drop trigger fill_denormalized on project_resources;
create trigger fill_denormalized
    before insert or update of org_id, resource_kind, server_id, web_service_id, domain_id,
                               database_id, denormalized_name, denormalized_status,
                               denormalized_health
    on project_resources
    for each row execute function stackgate_project_resources_fill();

-- A resource's health change rewrites its links in the same statement (the link events of a
-- rename or status change are not sent for it: the health event says it).
create function stackgate_resource_sync_link_health() returns trigger
    language plpgsql
as $$
begin
    case tg_table_name
        when 'servers' then
            update project_resources set denormalized_health = new.health_state
             where org_id = new.org_id and server_id = new.id
               and denormalized_health is distinct from new.health_state;
        when 'web_services' then
            update project_resources set denormalized_health = new.health_state
             where org_id = new.org_id and web_service_id = new.id
               and denormalized_health is distinct from new.health_state;
        when 'domains' then
            update project_resources set denormalized_health = new.health_state
             where org_id = new.org_id and domain_id = new.id
               and denormalized_health is distinct from new.health_state;
        when 'databases' then
            update project_resources set denormalized_health = new.health_state
             where org_id = new.org_id and database_id = new.id
               and denormalized_health is distinct from new.health_state;
    end case;
    return null;
end
$$;
create trigger sync_link_health after update of health_state on servers
    for each row when (old.health_state is distinct from new.health_state)
    execute function stackgate_resource_sync_link_health();
create trigger sync_link_health after update of health_state on web_services
    for each row when (old.health_state is distinct from new.health_state)
    execute function stackgate_resource_sync_link_health();
create trigger sync_link_health after update of health_state on domains
    for each row when (old.health_state is distinct from new.health_state)
    execute function stackgate_resource_sync_link_health();
create trigger sync_link_health after update of health_state on databases
    for each row when (old.health_state is distinct from new.health_state)
    execute function stackgate_resource_sync_link_health();

-- Existing links. A non-superuser owner is itself subject to the forced policies: for this
-- transaction only, a policy of the owner role lets it rewrite every organization's links, and
-- the owner-maintenance policies of the resource tables let the fill trigger read them.
do $$
begin
    execute format(
        'create policy link_health_backfill on project_resources for all to %I '
        'using (true) with check (true)', current_user);
end
$$;
select set_config('stackgate.owner_maintenance', 'on', true);
update project_resources set denormalized_health = 'unknown';
select set_config('stackgate.owner_maintenance', '', true);
drop policy link_health_backfill on project_resources;
