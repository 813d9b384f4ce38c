-- projectResourcesChanged (docs/events.md): every change to a project's links publishes an event in
-- the transaction that makes it, so it is delivered only if that transaction commits.
--
-- LINKED on insert, UNLINKED on delete (including cascades), and on an update of the
-- denormalized columns STATUS_CHANGED (the resource's status moved) or RENAMED (only its name).
-- Those updates come from the resource triggers of the projects migration, so a sync that renames
-- or re-statuses a linked resource publishes without any application code. The payload carries
-- ids and states only (far below NOTIFY's 8000 bytes); subscribers load what they show with their
-- own permissions.
create function stackgate_project_resources_notify() returns trigger
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

create trigger notify_link_changes
    after insert or delete on project_resources
    for each row execute function stackgate_project_resources_notify();
create trigger notify_link_updates
    after update of denormalized_name, denormalized_status on project_resources
    for each row
    when (old.denormalized_name is distinct from new.denormalized_name
          or old.denormalized_status is distinct from new.denormalized_status)
    execute function stackgate_project_resources_notify();
