-- Operations services, health history, alerts and the audit trail.

create table operation_services (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references organizations (id) on delete cascade,
    name             text not null,
    kind             text not null,
    provider         text,
    -- key_id || nonce || ciphertext+tag (AES-256-GCM, bound to org, row and column)
    encrypted_config bytea,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint operation_services_org_id_id_key unique (org_id, id),
    constraint operation_services_org_id_name_key unique (org_id, name)
);
create trigger set_updated_at before update on operation_services
    for each row execute function stackgate_set_updated_at();

-- Team access to an operations service.
create table operation_permissions (
    id                   uuid primary key default gen_random_uuid(),
    org_id               uuid not null references organizations (id) on delete cascade,
    operation_service_id uuid not null,
    team_id              uuid not null,
    level                text not null,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint operation_permissions_org_id_id_key unique (org_id, id),
    constraint operation_permissions_operation_service_id_team_id_key
        unique (operation_service_id, team_id),
    constraint operation_permissions_operation_service_fkey foreign key (org_id, operation_service_id)
        references operation_services (org_id, id) on delete cascade,
    constraint operation_permissions_team_fkey foreign key (org_id, team_id)
        references teams (org_id, id) on delete cascade,
    constraint operation_permissions_level_check check (level in ('read', 'full'))
);
create index operation_permissions_org_id_operation_service_id_idx
    on operation_permissions (org_id, operation_service_id);
create index operation_permissions_org_id_team_id_idx on operation_permissions (org_id, team_id);
create trigger set_updated_at before update on operation_permissions
    for each row execute function stackgate_set_updated_at();

-- Append-only history of health transitions (no updated_at). resource_id is the resource's id in
-- the table of resource_kind; the history outlives the resource, so it is not a foreign key.
create table health_checks (
    id            uuid primary key default gen_random_uuid(),
    org_id        uuid not null references organizations (id) on delete cascade,
    resource_kind text not null,
    resource_id   uuid not null,
    checked_at    timestamptz not null default now(),
    state         text not null,
    latency_ms    integer,
    message       text,
    created_at    timestamptz not null default now(),
    constraint health_checks_org_id_id_key unique (org_id, id),
    constraint health_checks_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint health_checks_state_check
        check (state in ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
-- A resource's history, newest first.
create index health_checks_resource_id_checked_at_idx on health_checks (resource_id, checked_at desc);

create table alerts (
    id            uuid primary key default gen_random_uuid(),
    org_id        uuid not null references organizations (id) on delete cascade,
    resource_kind text not null,
    resource_id   uuid not null,
    severity      text not null,
    opened_at     timestamptz not null default now(),
    resolved_at   timestamptz,
    message       text not null,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint alerts_org_id_id_key unique (org_id, id),
    constraint alerts_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint alerts_severity_check check (severity in ('info', 'warning', 'critical'))
);
-- An organization's alerts, newest first.
create index alerts_org_id_opened_at_idx on alerts (org_id, opened_at desc);
-- Open alerts, by resource.
create index alerts_open_idx on alerts (org_id, resource_id) where resolved_at is null;
create trigger set_updated_at before update on alerts
    for each row execute function stackgate_set_updated_at();

-- Append-only audit trail (no updated_at): the application role may only SELECT and INSERT
-- (grants in the row-level-security migration). user_id / api_key_id become null when the user or
-- key is deleted; the entry stays. api_key_id is a plain key: a platform admin's key may act in
-- another organization.
create table audit_logs (
    id          uuid primary key default gen_random_uuid(),
    org_id      uuid not null references organizations (id) on delete cascade,
    user_id     uuid references users (id) on delete set null,
    api_key_id  uuid references api_keys (id) on delete set null,
    action      text not null,
    target_type text,
    target_id   uuid,
    result      text not null,
    message     text,
    metadata    jsonb not null default '{}',
    ip_address  inet,
    user_agent  text,
    created_at  timestamptz not null default now(),
    constraint audit_logs_org_id_id_key unique (org_id, id),
    constraint audit_logs_result_check check (result in ('success', 'denied', 'error'))
);
-- An organization's trail, newest first.
create index audit_logs_org_id_created_at_idx on audit_logs (org_id, created_at desc);
create index audit_logs_user_id_idx on audit_logs (user_id) where user_id is not null;
create index audit_logs_api_key_id_idx on audit_logs (api_key_id) where api_key_id is not null;
