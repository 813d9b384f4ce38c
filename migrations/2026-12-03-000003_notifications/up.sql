-- Alert notifications (docs/health.md, "Notifications"): channels per organization, a delivery
-- row per alert transition and channel, and who acknowledged or resolved an alert.
--
-- A delivery row is written by a trigger on `alerts`, in the transaction that opens or resolves
-- the alert, so no transition is lost between the commit and a worker noticing it. The unique key
-- (channel, alert, event) makes a transition one delivery per channel, however often it is
-- retried and however many replicas run the worker; workers claim due rows with
-- `FOR UPDATE SKIP LOCKED` and a lease (stackgate_claim_due_notifications).

create table notification_channels (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references organizations (id) on delete cascade,
    name             text not null,
    kind             text not null,
    -- A webhook's URL (not a secret; a Slack URL is one, so it lives in encrypted_secret).
    url              text,
    -- An e-mail channel's recipient.
    email_to         text,
    -- A webhook's signing secret or a Slack incoming-webhook URL, encrypted (src/crypto.rs).
    encrypted_secret bytea,
    secret_hint      text,
    -- Routing: alerts at least this severe, of this project's resources, of this kind.
    min_severity     text not null default 'warning',
    project_id       uuid,
    resource_kind    text,
    enabled          boolean not null default true,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint notification_channels_org_id_id_key unique (org_id, id),
    constraint notification_channels_org_id_name_key unique (org_id, name),
    constraint notification_channels_project_fkey foreign key (org_id, project_id)
        references projects (org_id, id) on delete cascade,
    constraint notification_channels_kind_check check (kind in ('webhook', 'slack', 'email')),
    constraint notification_channels_target_check check (
        (kind = 'webhook' and url is not null and encrypted_secret is not null)
        or (kind = 'slack' and encrypted_secret is not null)
        or (kind = 'email' and email_to is not null)),
    constraint notification_channels_min_severity_check
        check (min_severity in ('info', 'warning', 'critical')),
    constraint notification_channels_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint notification_channels_name_check check (length(name) between 1 and 100),
    constraint notification_channels_url_check check (length(url) <= 500),
    constraint notification_channels_email_to_check check (length(email_to) <= 254)
);
create trigger set_updated_at before update on notification_channels
    for each row execute function stackgate_set_updated_at();
-- The channels an alert is routed through: the organization's enabled ones.
create index notification_channels_org_id_enabled_idx on notification_channels (org_id)
    where enabled;

create table notification_deliveries (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references organizations (id) on delete cascade,
    channel_id       uuid not null,
    -- null for the message of testNotificationChannel.
    alert_id         uuid,
    event            text not null,
    status           text not null default 'pending',
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint notification_deliveries_org_id_id_key unique (org_id, id),
    -- One delivery per channel and alert transition (test messages have no alert: never equal).
    constraint notification_deliveries_channel_alert_event_key unique (channel_id, alert_id, event),
    constraint notification_deliveries_channel_fkey foreign key (org_id, channel_id)
        references notification_channels (org_id, id) on delete cascade,
    constraint notification_deliveries_alert_fkey foreign key (org_id, alert_id)
        references alerts (org_id, id) on delete cascade,
    constraint notification_deliveries_event_check check (event in ('opened', 'resolved', 'test')),
    constraint notification_deliveries_status_check
        check (status in ('pending', 'delivered', 'failed')),
    constraint notification_deliveries_attempts_check check (attempts >= 0),
    constraint notification_deliveries_last_error_check check (length(last_error) <= 500)
);
create trigger set_updated_at before update on notification_deliveries
    for each row execute function stackgate_set_updated_at();
-- A channel's delivery log, newest first.
create index notification_deliveries_org_id_channel_idx
    on notification_deliveries (org_id, channel_id, created_at desc, id desc);
-- Due deliveries, across organizations (the worker's claim).
create index notification_deliveries_due_idx on notification_deliveries (next_attempt_at, id)
    where status = 'pending';
create index notification_deliveries_alert_idx on notification_deliveries (org_id, alert_id);

-- Tenant isolation, as for every tenant table.
alter table notification_channels enable row level security;
alter table notification_channels force row level security;
create policy tenant_isolation on notification_channels
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
grant select, insert, update, delete on notification_channels to stackgate_app;

alter table notification_deliveries enable row level security;
alter table notification_deliveries force row level security;
create policy tenant_isolation on notification_deliveries
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
grant select, insert, update, delete on notification_deliveries to stackgate_app;

-- Who acknowledged or resolved an alert by hand, when, and what they noted. An alert the monitor
-- resolved has resolved_at and no resolved_by.
alter table alerts
    add column acknowledged_at      timestamptz,
    add column acknowledged_by      uuid references users (id) on delete set null,
    add column acknowledgement_note text,
    add column resolved_by          uuid references users (id) on delete set null,
    add column resolution_note      text,
    add constraint alerts_acknowledgement_note_check check (length(acknowledgement_note) <= 1000),
    add constraint alerts_resolution_note_check check (length(resolution_note) <= 1000);
-- Indexes behind the foreign keys, so deleting a user or a project never scans these tables.
create index alerts_acknowledged_by_idx on alerts (acknowledged_by);
create index alerts_resolved_by_idx on alerts (resolved_by);
create index notification_channels_org_id_project_id_idx on notification_channels (org_id, project_id);

-- A delivery per matching channel when an alert opens or resolves. Routing: the alert is at
-- least the channel's severity, of its resource kind if it names one, and of a resource linked
-- to its project if it names one. Runs in the writer's organization scope: row-level security
-- keeps it to that organization's channels and links.
create function stackgate_enqueue_alert_notifications() returns trigger
    language plpgsql
as $$
declare
    v_event text;
begin
    if tg_op = 'INSERT' then
        v_event := 'opened';
    elsif old.resolved_at is null and new.resolved_at is not null then
        v_event := 'resolved';
    else
        return null;
    end if;
    insert into notification_deliveries (org_id, channel_id, alert_id, event)
    select c.org_id, c.id, new.id, v_event
      from notification_channels c
     where c.org_id = new.org_id
       and c.enabled
       and array_position(array['info', 'warning', 'critical'], new.severity)
           >= array_position(array['info', 'warning', 'critical'], c.min_severity)
       and (c.resource_kind is null or c.resource_kind = new.resource_kind)
       and (c.project_id is null or exists (
             select 1 from project_resources pr
              where pr.org_id = new.org_id and pr.project_id = c.project_id
                and pr.resource_id = new.resource_id))
    on conflict (channel_id, alert_id, event) do nothing;
    return null;
end
$$;

create trigger enqueue_notifications after insert on alerts
    for each row execute function stackgate_enqueue_alert_notifications();
create trigger enqueue_notifications_update after update of resolved_at on alerts
    for each row execute function stackgate_enqueue_alert_notifications();

-- Change events (as in the change_events migration): channel edits, delivery progress and
-- acknowledgements bring live queries and cached answers up to date.
create trigger notify_change after insert or update or delete on notification_channels
    for each row execute function stackgate_change_notify();
create trigger notify_change after insert or delete on notification_deliveries
    for each row execute function stackgate_change_notify();
create trigger notify_change_update after update of status, attempts on notification_deliveries
    for each row execute function stackgate_change_notify();
create trigger notify_change_acknowledged
    after update of acknowledged_at, acknowledgement_note, resolved_by, resolution_note on alerts
    for each row execute function stackgate_change_notify();

-- Owner maintenance (as in the health_monitoring migration): the claim below reads and leases
-- due deliveries of every organization, and `stackgate rotate-keys` re-encrypts every channel's
-- secret, only while stackgate.owner_maintenance is 'on'.
do $$
begin
    execute format(
        'create policy owner_maintenance_select on notification_channels for select to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_update on notification_channels for update to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')
             with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')',
        current_user);
    execute format(
        'create policy owner_maintenance_select on notification_deliveries for select to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', current_user);
    execute format(
        'create policy owner_maintenance_update on notification_deliveries for update to %I
             using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')
             with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')',
        current_user);
end
$$;

-- Claims up to p_limit (at most 1000) due deliveries of any organization for p_owner, with a
-- lease of p_lease_seconds: pending, due, and not leased (or the lease expired), oldest due
-- first. Rows another replica is claiming are skipped, not waited for. Returns each claimed id
-- and its organization; the worker reads and records them in that organization's scope.
create function stackgate_claim_due_notifications(
    p_owner text, p_lease_seconds integer, p_limit integer)
    returns table (claimed_delivery_id uuid, claimed_org_id uuid)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
begin
    if p_owner is null or length(p_owner) not between 1 and 200
       or p_lease_seconds is null or p_lease_seconds not between 1 and 86400
       or p_limit is null or p_limit < 0 then
        raise exception 'stackgate_claim_due_notifications: invalid arguments'
            using errcode = 'invalid_parameter_value';
    end if;
    perform set_config('stackgate.owner_maintenance', 'on', true);
    return query
        with picked as (
            select d.id from notification_deliveries d
             where d.status = 'pending'
               and d.next_attempt_at <= now()
               and (d.lease_expires_at is null or d.lease_expires_at < now())
             order by d.next_attempt_at, d.id
             limit least(p_limit, 1000)
             for update of d skip locked
        )
        update notification_deliveries t
           set lease_owner = p_owner,
               lease_expires_at = now() + p_lease_seconds * interval '1 second'
          from picked p where t.id = p.id
        returning t.id, t.org_id;
    perform set_config('stackgate.owner_maintenance', '', true);
end
$$;

revoke all on function stackgate_claim_due_notifications(text, integer, integer) from public;
grant execute on function stackgate_claim_due_notifications(text, integer, integer)
    to stackgate_app;
