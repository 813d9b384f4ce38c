-- The writers' triggers call pg_notify again; the outbox and the relay's functions go.
create or replace function stackgate_change_notify() returns trigger
    language plpgsql
as $$
declare
    v_row record;
begin
    if tg_op = 'DELETE' then
        v_row := old;
    else
        v_row := new;
    end if;
    perform pg_notify('stackgate_events', json_build_object(
        'type', 'change', 'org_id', v_row.org_id, 'table', tg_table_name, 'id', v_row.id)::text);
    return null;
end
$$;

create or replace function stackgate_project_resources_notify() returns trigger
    language plpgsql
as $$
declare
    v_row    project_resources;
    v_change text;
begin
    if tg_op = 'DELETE' then
        v_row := old;
        v_change := 'UNLINKED';
    elsif tg_op = 'INSERT' then
        v_row := new;
        v_change := 'LINKED';
    elsif old.denormalized_status is distinct from new.denormalized_status then
        v_row := new;
        v_change := 'STATUS_CHANGED';
    else
        v_row := new;
        v_change := 'RENAMED';
    end if;
    perform pg_notify('stackgate_events', json_build_object(
        'type', 'link',
        'org_id', v_row.org_id,
        'project_id', v_row.project_id,
        'resource_id', v_row.resource_id,
        'kind', v_row.resource_kind,
        'change', v_change,
        'status', v_row.denormalized_status,
        'at', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text);
    return null;
end
$$;

create or replace function stackgate_access_notify() returns trigger
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

create or replace function stackgate_project_operation_services_notify() returns trigger
    language plpgsql
as $$
declare
    v_row project_operation_services;
begin
    if tg_op = 'DELETE' then
        v_row := old;
    else
        v_row := new;
    end if;
    perform pg_notify('stackgate_events', json_build_object(
        'type', 'change', 'org_id', v_row.org_id, 'table', 'projects', 'id', v_row.project_id)::text);
    perform pg_notify('stackgate_events', json_build_object(
        'type', 'change', 'org_id', v_row.org_id, 'table', 'operation_services',
        'id', v_row.operation_service_id)::text);
    return null;
end
$$;

drop function stackgate_relay_release(text);
drop function stackgate_relay_events(text, integer, integer);
drop function stackgate_publish(uuid, text);
drop table event_relay;
drop table event_outbox;
