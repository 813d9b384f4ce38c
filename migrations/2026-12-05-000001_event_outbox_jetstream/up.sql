-- The relay's JetStream rounds (docs/events.md, "The NATS JetStream bus"). With NOTIFY, one
-- transaction numbers, publishes and deletes rows. JetStream is outside the database, so a round
-- is split in two: stackgate_relay_claim takes or renews the lease and numbers the next committed
-- rows durably (the number is stored in the row, so a relay that crashed before deleting them
-- leaves them numbered, and whoever reads them next publishes them under the same numbers, which
-- JetStream's de-duplication drops when they were already stored); once JetStream acknowledged
-- them, stackgate_relay_published deletes them.

-- The relay's number of a row, once claimed (null until then: writers' inserts skip the index;
-- not a unique key, which a tenant table's must name org_id: one claiming relay at a time, under
-- the lease row's lock, keeps numbers unique).
alter table event_outbox add column seq bigint;
create index event_outbox_seq on event_outbox (seq) where seq is not null;

-- One claiming round for p_owner: returns one row `(held, last_seq, null…)` when it does not
-- hold the lease or nothing waits, else one row per numbered event, oldest first, at most
-- p_limit: its number, organization, payload with the number added (`{"seq":N,…`), and its
-- creation time in microseconds since the epoch. Rows numbered before (a round that did not get
-- to delete them) come first, unchanged; then committed rows are numbered in the same order and
-- under the same rule as stackgate_relay_events (writing transaction, then id; only
-- transactions older than every running one), identical payloads of one transaction folded.
create function stackgate_relay_claim(p_owner text, p_lease_seconds integer, p_limit integer)
    returns table (held boolean, last_seq bigint, seq bigint, org_id uuid, payload text,
                   created_us bigint)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_relay    event_relay;
    v_snapshot pg_snapshot;
    v_bound    xid8;
    v_lease    interval;
    v_claimed  bigint;
    v_seq      bigint;
begin
    if p_owner is null or length(p_owner) not between 1 and 200
       or p_lease_seconds not between 1 and 3600 or p_limit not between 1 and 10000 then
        raise exception 'stackgate_relay_claim: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    v_lease := p_lease_seconds * interval '1 second';
    select * into v_relay from event_relay;
    if v_relay.lease_owner is distinct from p_owner and v_relay.lease_expires_at > now() then
        return query select false, v_relay.last_seq, null::bigint, null::uuid, null::text,
                            null::bigint;
        return;
    end if;

    v_snapshot := pg_current_snapshot();
    v_bound := pg_snapshot_xmin(v_snapshot);
    if exists (select 1 from event_outbox o where o.xid >= v_bound and o.seq is null) then
        select coalesce(min(x), pg_snapshot_xmax(v_snapshot)) into v_bound
          from pg_snapshot_xip(v_snapshot) x
         where not exists (
                 select 1 from pg_stat_activity a
                  where a.backend_xid = xid(x)
                    and a.datname is distinct from current_database());
    end if;

    if v_relay.lease_owner = p_owner and v_relay.lease_expires_at > now() + v_lease / 2
       and not exists (select 1 from event_outbox o where o.xid < v_bound or o.seq is not null) then
        return query select true, v_relay.last_seq, null::bigint, null::uuid, null::text,
                            null::bigint;
        return;
    end if;

    select * into v_relay from event_relay for update skip locked;
    if not found then
        return query select false, null::bigint, null::bigint, null::uuid, null::text,
                            null::bigint;
        return;
    end if;
    if v_relay.lease_owner is distinct from p_owner and v_relay.lease_expires_at > now() then
        return query select false, v_relay.last_seq, null::bigint, null::uuid, null::text,
                            null::bigint;
        return;
    end if;

    select count(*) into v_claimed from event_outbox o where o.seq is not null;
    v_seq := v_relay.last_seq;
    if v_claimed < p_limit then
        with batch as (
            select o.xid, o.id, o.payload from event_outbox o
             where o.seq is null and o.xid < v_bound
             order by o.xid, o.id
             limit p_limit - v_claimed
        ), ranked as (
            select b.xid, b.id,
                   row_number() over (partition by b.xid, b.payload order by b.id) as copy
              from batch b
        ), folded as (
            delete from event_outbox o using ranked r
             where r.copy > 1 and o.xid = r.xid and o.id = r.id
        ), numbered as (
            select r.xid, r.id, v_relay.last_seq + row_number() over (order by r.xid, r.id) as n
              from ranked r where r.copy = 1
        )
        update event_outbox o set seq = n.n from numbered n where o.xid = n.xid and o.id = n.id;
        get diagnostics v_claimed = row_count;
        v_seq := v_relay.last_seq + v_claimed;
    end if;

    update event_relay
       set lease_owner = p_owner,
           lease_expires_at = now() + v_lease,
           last_seq = v_seq;

    if not exists (select 1 from event_outbox o where o.seq is not null) then
        return query select true, v_seq, null::bigint, null::uuid, null::text, null::bigint;
        return;
    end if;
    return query
        select true, v_seq, o.seq, o.org_id,
               case when o.payload ~ '^\{\s*\}$' then format('{"seq":%s}', o.seq)
                    else format('{"seq":%s,', o.seq) || substr(o.payload, 2) end,
               (extract(epoch from o.created_at) * 1000000)::bigint
          from event_outbox o
         where o.seq is not null
         order by o.seq
         limit p_limit;
end
$$;
revoke all on function stackgate_relay_claim(text, integer, integer) from public;
grant execute on function stackgate_relay_claim(text, integer, integer) to stackgate_app;

-- After JetStream acknowledged every event numbered up to p_last: they are deleted, and the
-- time of publication recorded.
create function stackgate_relay_published(p_owner text, p_last bigint) returns void
    language sql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
    delete from event_outbox where seq <= p_last;
    update event_relay set published_at = now() where lease_owner = p_owner;
$$;
revoke all on function stackgate_relay_published(text, bigint) from public;
grant execute on function stackgate_relay_published(text, bigint) to stackgate_app;
