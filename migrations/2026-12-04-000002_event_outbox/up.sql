-- The event outbox (docs/events.md): writers append events to `event_outbox` in the transaction
-- that writes what they report, instead of calling pg_notify themselves. pg_notify takes a
-- database-wide lock at commit, so notifying commits ran one at a time; an insert takes none.
-- One relay per cluster (whoever holds the lease in `event_relay`) publishes committed rows, in
-- order, with NOTIFY on the channel replicas LISTEN to, numbered so receivers notice a gap, and
-- deletes them in the same transaction: a row is published once, and only if its writer
-- committed.
--
-- Security. Writers (stackgate_app, and the owner's own commands) append through
-- stackgate_publish only; the relay reads through stackgate_relay_events only. Both are
-- SECURITY DEFINER functions owned by the schema owner, with a pinned search_path.
-- stackgate_app has no privilege on either table: it cannot read any organization's events, not
-- even its own. The tables still force row-level security like every tenant table, with the
-- tenant policy for anyone ever granted access, and a policy for the owner role alone (the
-- functions run as it; a superuser owner bypasses RLS anyway).

create table event_outbox (
    id         bigint generated always as identity,
    -- null: a user-level access event, which concerns every organization.
    org_id     uuid,
    payload    text not null,
    -- The writing transaction: the relay publishes a row only once every transaction that
    -- started writing before it has ended (see stackgate_relay_events).
    xid        xid8 not null default pg_current_xact_id(),
    created_at timestamptz not null default now(),
    -- The relay's order, and its only index (writers pay for one).
    constraint event_outbox_pkey primary key (xid, id),
    -- A JSON object that fits a NOTIFY payload (8,000 bytes) with the relay's number added.
    constraint event_outbox_payload_check
        check (octet_length(payload) between 2 and 7900 and left(payload, 1) = '{')
);

alter table event_outbox enable row level security;
alter table event_outbox force row level security;
create policy tenant_isolation on event_outbox
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);

-- The relay's lease and how far it got: one row. `last_seq` numbers published events across the
-- cluster (receivers see a jump as a gap); it survives a change of holder.
create table event_relay (
    id               boolean primary key default true,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_seq         bigint not null default 0,
    published_at     timestamptz,
    constraint event_relay_one_row check (id),
    constraint event_relay_lease_owner_length check (length(lease_owner) <= 200)
);
insert into event_relay default values;
alter table event_relay enable row level security;
alter table event_relay force row level security;

do $$
begin
    execute format('create policy owner_relay on event_outbox to %I using (true) with check (true)',
                   current_user);
    execute format('create policy owner_relay on event_relay to %I using (true) with check (true)',
                   current_user);
end
$$;

-- The one way to publish: every writer (src/events/publish.rs) and every trigger calls it, in
-- the writer's transaction.
create function stackgate_publish(p_org uuid, p_payload text) returns void
    language sql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
    insert into event_outbox (org_id, payload) values (p_org, p_payload);
$$;
revoke all on function stackgate_publish(uuid, text) from public;
grant execute on function stackgate_publish(uuid, text) to stackgate_app;

-- One relay round: take or renew the lease for p_owner, publish up to p_limit committed rows in
-- order, delete them and record the last number, all in the caller's transaction (one statement:
-- NOTIFY delivers at its commit, together with the delete). Returns whether p_owner holds the
-- lease, how many events it published and the last number.
--
-- Order without skipping late commits: an identity value is taken before commit, so a row with a
-- smaller id can become visible after a larger one. Rows are therefore published in the order of
-- their writing transaction's id (xid8), then id, and only those of transactions older than every
-- transaction still running (the snapshot's xmin): those have all ended, so the set of such rows
-- is final and every later row sorts after it. A transaction still running in another database
-- of the cluster holds xmin back too but cannot have written here; when committed rows wait, the
-- bound skips the running transactions pg_stat_activity places in another database (as a
-- superuser owner sees them; otherwise every running transaction counts).
--
-- Identical payloads of one transaction are published once (NOTIFY folded them the same way).
-- An idle holder's round writes nothing: it renews the lease only past half its length.
create function stackgate_relay_events(p_owner text, p_lease_seconds integer, p_limit integer)
    returns table (held boolean, published integer, last_seq bigint)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_relay    event_relay;
    v_snapshot pg_snapshot;
    v_bound    xid8;
    v_lease    interval;
    v_payloads text[];
    v_payload  text;
    v_seq      bigint;
begin
    if p_owner is null or length(p_owner) not between 1 and 200
       or p_lease_seconds not between 1 and 3600 or p_limit not between 1 and 10000 then
        raise exception 'stackgate_relay_events: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    v_lease := p_lease_seconds * interval '1 second';
    select * into v_relay from event_relay;
    if v_relay.lease_owner is distinct from p_owner and v_relay.lease_expires_at > now() then
        return query select false, 0, v_relay.last_seq;
        return;
    end if;

    v_snapshot := pg_current_snapshot();
    v_bound := pg_snapshot_xmin(v_snapshot);
    if exists (select 1 from event_outbox o where o.xid >= v_bound) then
        select coalesce(min(x), pg_snapshot_xmax(v_snapshot)) into v_bound
          from pg_snapshot_xip(v_snapshot) x
         where not exists (
                 select 1 from pg_stat_activity a
                  where a.backend_xid = xid(x)
                    and a.datname is distinct from current_database());
    end if;

    if v_relay.lease_owner = p_owner and v_relay.lease_expires_at > now() + v_lease / 2
       and not exists (select 1 from event_outbox o where o.xid < v_bound) then
        return query select true, 0, v_relay.last_seq;
        return;
    end if;

    -- Another relay in the middle of a round holds the row: not ours this time.
    select * into v_relay from event_relay for update skip locked;
    if not found then
        return query select false, 0, null::bigint;
        return;
    end if;
    if v_relay.lease_owner is distinct from p_owner and v_relay.lease_expires_at > now() then
        return query select false, 0, v_relay.last_seq;
        return;
    end if;

    with batch as (
        select o.xid, o.id, o.payload from event_outbox o
         where o.xid < v_bound
         order by o.xid, o.id
         limit p_limit
    ), gone as (
        delete from event_outbox o using batch b where o.xid = b.xid and o.id = b.id
    ), folded as (
        select b.xid, b.payload, min(b.id) as first_id from batch b group by b.xid, b.payload
    )
    select coalesce(array_agg(f.payload order by f.xid, f.first_id), '{}') into v_payloads
      from folded f;

    v_seq := v_relay.last_seq;
    foreach v_payload in array v_payloads loop
        v_seq := v_seq + 1;
        perform pg_notify('stackgate_events',
            case when v_payload ~ '^\{\s*\}$' then format('{"seq":%s}', v_seq)
                 else format('{"seq":%s,', v_seq) || substr(v_payload, 2) end);
    end loop;

    update event_relay
       set lease_owner = p_owner,
           lease_expires_at = now() + v_lease,
           last_seq = v_seq,
           published_at = case when v_seq > v_relay.last_seq then now() else published_at end;
    return query select true, cardinality(v_payloads), v_seq;
end
$$;
revoke all on function stackgate_relay_events(text, integer, integer) from public;
grant execute on function stackgate_relay_events(text, integer, integer) to stackgate_app;

-- A relay stopping gives up its lease, so another takes over at its next round.
create function stackgate_relay_release(p_owner text) returns void
    language sql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
    update event_relay set lease_owner = null, lease_expires_at = null where lease_owner = p_owner;
$$;
revoke all on function stackgate_relay_release(text) from public;
grant execute on function stackgate_relay_release(text) to stackgate_app;

-- Every trigger that called pg_notify now appends to the outbox.
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
    perform stackgate_publish(v_row.org_id, json_build_object(
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
    perform stackgate_publish(v_row.org_id, json_build_object(
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
    perform stackgate_publish(v_org, json_build_object('type', 'access', 'org_id', v_org)::text);
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
    perform stackgate_publish(v_row.org_id, json_build_object(
        'type', 'change', 'org_id', v_row.org_id, 'table', 'projects', 'id', v_row.project_id)::text);
    perform stackgate_publish(v_row.org_id, json_build_object(
        'type', 'change', 'org_id', v_row.org_id, 'table', 'operation_services',
        'id', v_row.operation_service_id)::text);
    return null;
end
$$;
