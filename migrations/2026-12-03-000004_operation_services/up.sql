-- Operation services served (backup buckets, CDN, DNS, monitoring): what the API accepts is
-- checked here too, a hint of the configuration is kept beside its ciphertext, services link to
-- projects as resources do, and every change publishes an event.

-- The hint: the configuration's key names (sorted, comma-separated), never a value. Written with
-- the ciphertext, so the configuration need not be decrypted to show it.
alter table operation_services add column config_hint text;
alter table operation_services
    add constraint operation_services_kind_check
        check (kind in ('backup_bucket', 'cdn', 'dns', 'monitoring', 'other')),
    add constraint operation_services_name_length check (length(name) between 1 and 200),
    add constraint operation_services_provider_length check (length(provider) between 1 and 100),
    add constraint operation_services_config_hint_length check (length(config_hint) <= 4000);

-- Project <-> operation service links, one per pair; both ends of the same organization (composite
-- keys), and deleting either end deletes the link.
create table project_operation_services (
    id                   uuid primary key default gen_random_uuid(),
    org_id               uuid not null references organizations (id) on delete cascade,
    project_id           uuid not null,
    operation_service_id uuid not null,
    linked_by            uuid references users (id) on delete set null,
    linked_at            timestamptz not null default now(),
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint project_operation_services_org_id_id_key unique (org_id, id),
    constraint project_operation_services_project_id_service_id_key
        unique (project_id, operation_service_id),
    constraint project_operation_services_project_fkey foreign key (org_id, project_id)
        references projects (org_id, id) on delete cascade,
    constraint project_operation_services_service_fkey foreign key (org_id, operation_service_id)
        references operation_services (org_id, id) on delete cascade
);
create index project_operation_services_org_id_project_id_idx
    on project_operation_services (org_id, project_id);
create index project_operation_services_org_id_service_id_idx
    on project_operation_services (org_id, operation_service_id);
create index project_operation_services_linked_by_idx
    on project_operation_services (linked_by) where linked_by is not null;
create trigger set_updated_at before update on project_operation_services
    for each row execute function stackgate_set_updated_at();

alter table project_operation_services enable row level security;
alter table project_operation_services force row level security;
create policy tenant_isolation on project_operation_services
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
-- Links are made and removed, never changed.
grant select, insert, delete on project_operation_services to stackgate_app;

-- Events. A service's row: a `change` of `operation_services` (its id).
create trigger notify_change after insert or delete on operation_services
    for each row execute function stackgate_change_notify();
create trigger notify_change_update after update of name, kind, provider, encrypted_config, config_hint
    on operation_services for each row execute function stackgate_change_notify();

-- A link changes what both ends list: a `change` of the project and one of the service.
create function stackgate_project_operation_services_notify() returns trigger
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
create trigger notify_change after insert or delete on project_operation_services
    for each row execute function stackgate_project_operation_services_notify();

-- A team's grant decides who sees a service: an access change, like a dock grant.
create trigger notify_access after insert or update or delete on operation_permissions
    for each row execute function stackgate_access_notify();
