-- Resources: the universal provider pattern. One table per kind, any provider in each; the
-- common columns are identical in all four tables, the kind's own columns follow them.
-- Sync upserts by (dock_id, provider_resource_id).

create table servers (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    dock_id               uuid not null,
    provider              text not null,
    provider_resource_id  text not null,
    name                  text not null,
    status                text not null default 'unknown',
    provider_status       text,        -- the provider's own word for the status
    region                text,
    full_api_data         jsonb,       -- the provider's object, secrets stripped
    health_state          text not null default 'unknown',
    last_health_check_at  timestamptz,
    last_seen_at          timestamptz,
    primary_ip_address    text,
    ipv6                  text,
    vcpus                 integer,
    memory_mb             integer,
    disk_gb               integer,
    image                 text,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint servers_org_id_id_key unique (org_id, id),
    constraint servers_dock_id_provider_resource_id_key unique (dock_id, provider_resource_id),
    constraint servers_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint servers_status_check
        check (status in ('active', 'provisioning', 'stopped', 'error', 'deleted', 'unknown')),
    constraint servers_health_state_check
        check (health_state in ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
-- A dock's resources (and the index behind the (org_id, dock_id) foreign key).
create index servers_org_id_dock_id_name_idx on servers (org_id, dock_id, name, id);
-- Listing an organization's resources in a stable order.
create index servers_org_id_name_id_idx on servers (org_id, name, id);
create trigger set_updated_at before update on servers
    for each row execute function stackgate_set_updated_at();

create table web_services (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    dock_id               uuid not null,
    provider              text not null,
    provider_resource_id  text not null,
    name                  text not null,
    status                text not null default 'unknown',
    provider_status       text,        -- the provider's own word for the status
    region                text,
    full_api_data         jsonb,       -- the provider's object, secrets stripped
    health_state          text not null default 'unknown',
    last_health_check_at  timestamptz,
    last_seen_at          timestamptz,
    production_url        text,
    environment           text,
    framework             text,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint web_services_org_id_id_key unique (org_id, id),
    constraint web_services_dock_id_provider_resource_id_key unique (dock_id, provider_resource_id),
    constraint web_services_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint web_services_status_check
        check (status in ('active', 'provisioning', 'stopped', 'error', 'deleted', 'unknown')),
    constraint web_services_health_state_check
        check (health_state in ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
-- A dock's resources (and the index behind the (org_id, dock_id) foreign key).
create index web_services_org_id_dock_id_name_idx on web_services (org_id, dock_id, name, id);
-- Listing an organization's resources in a stable order.
create index web_services_org_id_name_id_idx on web_services (org_id, name, id);
create trigger set_updated_at before update on web_services
    for each row execute function stackgate_set_updated_at();

create table domains (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    dock_id               uuid not null,
    provider              text not null,
    provider_resource_id  text not null,
    name                  text not null,
    status                text not null default 'unknown',
    provider_status       text,        -- the provider's own word for the status
    region                text,
    full_api_data         jsonb,       -- the provider's object, secrets stripped
    health_state          text not null default 'unknown',
    last_health_check_at  timestamptz,
    last_seen_at          timestamptz,
    domain_name           text not null,
    expires_at            timestamptz,
    auto_renew            boolean,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint domains_org_id_id_key unique (org_id, id),
    constraint domains_dock_id_provider_resource_id_key unique (dock_id, provider_resource_id),
    constraint domains_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint domains_status_check
        check (status in ('active', 'provisioning', 'stopped', 'error', 'deleted', 'unknown')),
    constraint domains_health_state_check
        check (health_state in ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
-- A dock's resources (and the index behind the (org_id, dock_id) foreign key).
create index domains_org_id_dock_id_name_idx on domains (org_id, dock_id, name, id);
-- Listing an organization's resources in a stable order.
create index domains_org_id_name_id_idx on domains (org_id, name, id);
create trigger set_updated_at before update on domains
    for each row execute function stackgate_set_updated_at();

create table databases (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references organizations (id) on delete cascade,
    dock_id               uuid not null,
    provider              text not null,
    provider_resource_id  text not null,
    name                  text not null,
    status                text not null default 'unknown',
    provider_status       text,        -- the provider's own word for the status
    region                text,
    full_api_data         jsonb,       -- the provider's object, secrets stripped
    health_state          text not null default 'unknown',
    last_health_check_at  timestamptz,
    last_seen_at          timestamptz,
    engine                text,
    version               text,
    host                  text,
    port                  integer,     -- connection details only: never a password
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint databases_org_id_id_key unique (org_id, id),
    constraint databases_dock_id_provider_resource_id_key unique (dock_id, provider_resource_id),
    constraint databases_dock_fkey foreign key (org_id, dock_id)
        references docks (org_id, id) on delete cascade,
    constraint databases_status_check
        check (status in ('active', 'provisioning', 'stopped', 'error', 'deleted', 'unknown')),
    constraint databases_health_state_check
        check (health_state in ('healthy', 'degraded', 'unhealthy', 'unknown'))
);
-- A dock's resources (and the index behind the (org_id, dock_id) foreign key).
create index databases_org_id_dock_id_name_idx on databases (org_id, dock_id, name, id);
-- Listing an organization's resources in a stable order.
create index databases_org_id_name_id_idx on databases (org_id, name, id);
create trigger set_updated_at before update on databases
    for each row execute function stackgate_set_updated_at();
