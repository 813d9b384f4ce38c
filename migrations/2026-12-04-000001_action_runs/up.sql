-- Provider actions (docs/actions.md): one row per `performResourceAction` request, kept as the
-- history of what was asked of a provider, by whom, and what it answered.
--
-- A resource lives in one of four tables, and runs outlive resources a later sync removes, so
-- the resource is named by kind and id without a foreign key (as alerts name theirs); the dock
-- is a real reference. The idempotency key is unique per organization: a retried request with
-- the same key finds the first run instead of acting twice. At most one run per resource is
-- `running` at a time (a partial unique index), so two people clicking "reboot" at once reboot
-- it once; a run whose replica died while it ran is closed as failed by the next request.

create table action_runs (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    resource_kind         text not null,
    resource_id           uuid not null,
    dock_id               uuid not null,
    action                text not null,
    status                text not null default 'running',
    requested_by          uuid references users (id) on delete set null,
    api_key_id            uuid,
    idempotency_key       text,
    summary               text,
    started_at            timestamptz not null default now(),
    finished_at           timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint action_runs_org_id_id_key unique (org_id, id),
    constraint action_runs_org_id_idempotency_key_key unique (org_id, idempotency_key),
    constraint action_runs_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint action_runs_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint action_runs_action_check
        check (action in ('reboot', 'power_off', 'power_on', 'redeploy', 'purge_cache')),
    constraint action_runs_status_check check (status in ('running', 'succeeded', 'failed')),
    constraint action_runs_finished_check check ((status = 'running') = (finished_at is null)),
    constraint action_runs_idempotency_key_check check (length(idempotency_key) between 1 and 100),
    constraint action_runs_summary_check check (length(summary) <= 500)
);
create trigger set_updated_at before update on action_runs
    for each row execute function stackgate_set_updated_at();
-- A resource's runs, newest first.
create index action_runs_org_id_resource_idx
    on action_runs (org_id, resource_id, started_at desc, id desc);
-- One running action per resource.
create unique index action_runs_one_running_idx on action_runs (org_id, resource_id)
    where status = 'running';
create index action_runs_org_id_dock_id_idx on action_runs (org_id, dock_id);
create index action_runs_requested_by_idx on action_runs (requested_by);

alter table action_runs enable row level security;
alter table action_runs force row level security;
create policy tenant_isolation on action_runs
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
grant select, insert, update on action_runs to stackgate_app;
