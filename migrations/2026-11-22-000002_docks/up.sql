-- Docks: connections to provider accounts, who may use them, and the history of their syncs.

create table docks (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    name                  text not null,
    provider              text not null,
    -- key_id || nonce || ciphertext+tag (AES-256-GCM, bound to org, row and column)
    encrypted_api_key     bytea not null,
    api_key_hint          text,          -- last 4 characters of the key
    endpoint              text,          -- optional base-URL override for the provider API
    last_sync_at          timestamptz,
    last_sync_status      text not null default 'pending',
    last_sync_error       text,
    sync_interval_seconds integer not null default 3600,
    backoff_until         timestamptz,
    rate_limit_remaining  integer,
    rate_limit_reset_at   timestamptz,
    lease_owner           text,
    lease_expires_at      timestamptz,
    deleted_at            timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint docks_org_id_id_key unique (org_id, id),
    constraint docks_last_sync_status_check
        check (last_sync_status in ('pending', 'syncing', 'success', 'error')),
    constraint docks_sync_interval_seconds_check check (sync_interval_seconds > 0)
);
-- Name unique per org among live docks (a deleted dock's name can be reused).
create unique index docks_org_id_name_key on docks (org_id, name) where deleted_at is null;
-- The scheduler: live docks by last sync, never-synced first.
create index docks_due_idx on docks (last_sync_at nulls first) where deleted_at is null;
create trigger set_updated_at before update on docks
    for each row execute function stackgate_set_updated_at();

-- Access to a dock for a team or (exclusive) a client.
create table dock_permissions (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    dock_id    uuid not null,
    team_id    uuid,
    client_id  uuid,
    level      text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint dock_permissions_org_id_id_key unique (org_id, id),
    constraint dock_permissions_dock_id_team_id_key unique (dock_id, team_id),
    constraint dock_permissions_dock_id_client_id_key unique (dock_id, client_id),
    constraint dock_permissions_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint dock_permissions_team_fkey foreign key (org_id, team_id)
        references teams (org_id, id) on delete cascade,
    constraint dock_permissions_client_fkey foreign key (org_id, client_id)
        references clients (org_id, id) on delete cascade,
    constraint dock_permissions_one_grantee check (num_nonnulls(team_id, client_id) = 1),
    constraint dock_permissions_level_check check (level in ('read', 'full'))
);
create index dock_permissions_org_id_dock_id_idx on dock_permissions (org_id, dock_id);
create index dock_permissions_org_id_team_id_idx on dock_permissions (org_id, team_id)
    where team_id is not null;
create index dock_permissions_org_id_client_id_idx on dock_permissions (org_id, client_id)
    where client_id is not null;
create trigger set_updated_at before update on dock_permissions
    for each row execute function stackgate_set_updated_at();

create table sync_runs (
    id          uuid primary key default gen_random_uuid(),
    org_id      uuid not null references organizations (id) on delete cascade,
    dock_id     uuid not null,
    trigger     text not null,
    status      text not null default 'pending',
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    created     integer not null default 0,
    updated     integer not null default 0,
    deleted     integer not null default 0,
    unchanged   integer not null default 0,
    pages       integer not null default 0,
    requests    integer not null default 0,
    error       text,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint sync_runs_org_id_id_key unique (org_id, id),
    constraint sync_runs_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint sync_runs_trigger_check check (trigger in ('schedule', 'manual')),
    constraint sync_runs_status_check check (status in ('pending', 'syncing', 'success', 'error'))
);
create index sync_runs_org_id_dock_id_idx on sync_runs (org_id, dock_id);
-- A dock's runs, newest first.
create index sync_runs_dock_id_started_at_idx on sync_runs (dock_id, started_at desc);
create trigger set_updated_at before update on sync_runs
    for each row execute function stackgate_set_updated_at();
