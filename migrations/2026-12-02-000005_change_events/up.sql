-- Row changes are events: what management mutations change in a project or a dock (its name,
-- slug, description, team, client, interval, deletion) publishes a `change` event naming the
-- table and the row, in the transaction that makes it. Live queries and cached responses that
-- read the row are brought up to date on it (docs/events.md). Sync runs, health transitions and
-- links publish events of their own; the columns they write are left out here so one write does
-- not publish twice.
create function stackgate_change_notify() returns trigger
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

create trigger notify_change after insert or delete on projects
    for each row execute function stackgate_change_notify();
create trigger notify_change_update after update of name, slug, description, team_id, client_id, deleted_at
    on projects for each row execute function stackgate_change_notify();
create trigger notify_change after insert or delete on docks
    for each row execute function stackgate_change_notify();
create trigger notify_change_update after update of name, sync_interval_seconds, deleted_at
    on docks for each row execute function stackgate_change_notify();
