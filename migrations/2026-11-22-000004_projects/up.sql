-- Projects and the polymorphic project -> resource link.

create table projects (
    id          uuid primary key default gen_random_uuid(),
    org_id      uuid not null references organizations (id) on delete cascade,
    client_id   uuid,
    team_id     uuid,
    name        text not null,
    slug        text not null,
    description text,
    created_by  uuid references users (id) on delete set null,
    deleted_at  timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint projects_org_id_id_key unique (org_id, id),
    -- Deleting a client or team detaches its projects (only that column is set to null).
    constraint projects_client_fkey foreign key (org_id, client_id)
        references clients (org_id, id) on delete set null (client_id),
    constraint projects_team_fkey foreign key (org_id, team_id)
        references teams (org_id, id) on delete set null (team_id),
    constraint projects_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);
-- Slug unique per org among live projects (a deleted project's slug can be reused).
create unique index projects_org_id_slug_key on projects (org_id, slug) where deleted_at is null;
create index projects_org_id_name_id_idx on projects (org_id, name, id);
create index projects_org_id_client_id_idx on projects (org_id, client_id) where client_id is not null;
create index projects_org_id_team_id_idx on projects (org_id, team_id) where team_id is not null;
create index projects_created_by_idx on projects (created_by) where created_by is not null;
create trigger set_updated_at before update on projects
    for each row execute function stackgate_set_updated_at();

-- The link is an "exclusive arc": one nullable foreign-key column per resource kind, exactly one
-- set and matching resource_kind. Each key is composite with org_id, so a link can only point at
-- an existing resource of the same organization, and deleting the resource deletes its links.
-- resource_id is the set column, whatever the kind.
create table project_resources (
    id                  uuid primary key default gen_random_uuid(),
    org_id              uuid not null references organizations (id) on delete cascade,
    project_id          uuid not null,
    resource_kind       text not null,
    server_id           uuid,
    web_service_id      uuid,
    domain_id           uuid,
    database_id         uuid,
    resource_id         uuid not null
        generated always as (coalesce(server_id, web_service_id, domain_id, database_id)) stored,
    -- Copies of the resource's name and status, maintained by triggers (never drift).
    denormalized_name   text not null,
    denormalized_status text not null,
    linked_by           uuid references users (id) on delete set null,
    linked_at           timestamptz not null default now(),
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint project_resources_org_id_id_key unique (org_id, id),
    constraint project_resources_project_id_resource_id_key unique (project_id, resource_id),
    constraint project_resources_project_fkey foreign key (org_id, project_id)
        references projects (org_id, id) on delete cascade,
    constraint project_resources_server_fkey foreign key (org_id, server_id)
        references servers (org_id, id) on delete cascade,
    constraint project_resources_web_service_fkey foreign key (org_id, web_service_id)
        references web_services (org_id, id) on delete cascade,
    constraint project_resources_domain_fkey foreign key (org_id, domain_id)
        references domains (org_id, id) on delete cascade,
    constraint project_resources_database_fkey foreign key (org_id, database_id)
        references databases (org_id, id) on delete cascade,
    constraint project_resources_resource_kind_check
        check (resource_kind in ('server', 'web_service', 'domain', 'database')),
    constraint project_resources_exactly_one_resource
        check (num_nonnulls(server_id, web_service_id, domain_id, database_id) = 1),
    constraint project_resources_kind_matches check (
        case resource_kind
            when 'server' then server_id is not null
            when 'web_service' then web_service_id is not null
            when 'domain' then domain_id is not null
            when 'database' then database_id is not null
            else false
        end),
    constraint project_resources_denormalized_status_check
        check (denormalized_status in ('active', 'provisioning', 'stopped', 'error', 'deleted', 'unknown'))
);
create index project_resources_org_id_project_id_idx on project_resources (org_id, project_id);
create index project_resources_org_id_server_id_idx on project_resources (org_id, server_id)
    where server_id is not null;
create index project_resources_org_id_web_service_id_idx on project_resources (org_id, web_service_id)
    where web_service_id is not null;
create index project_resources_org_id_domain_id_idx on project_resources (org_id, domain_id)
    where domain_id is not null;
create index project_resources_org_id_database_id_idx on project_resources (org_id, database_id)
    where database_id is not null;
-- A resource's projects, whatever its kind.
create index project_resources_org_id_resource_id_idx on project_resources (org_id, resource_id);
create index project_resources_linked_by_idx on project_resources (linked_by) where linked_by is not null;
-- resource_id is a stored generated column: left out of the "row changed" comparison.
create trigger set_updated_at before update on project_resources
    for each row execute function stackgate_set_updated_at('resource_id');

-- (a) A link's denormalized columns always come from the resource it points at, whatever the
-- caller wrote. The resource row is locked FOR SHARE so a concurrent rename either commits first
-- (and is read here) or waits for this transaction (and then rewrites this link).
-- The lookup runs with the caller's row-level security, so a resource of another organization
-- is indistinguishable from a missing one.
create function stackgate_project_resources_fill() returns trigger
    language plpgsql
as $$
declare
    v_id     uuid;
    v_name   text;
    v_status text;
begin
    v_id := case new.resource_kind
        when 'server' then new.server_id
        when 'web_service' then new.web_service_id
        when 'domain' then new.domain_id
        when 'database' then new.database_id
    end;
    if v_id is null
       or num_nonnulls(new.server_id, new.web_service_id, new.domain_id, new.database_id) <> 1 then
        raise exception 'project_resources: exactly one resource id must be set, matching resource_kind %',
                coalesce(quote_literal(new.resource_kind), 'NULL')
            using errcode = 'check_violation',
                  constraint = 'project_resources_kind_matches',
                  table = 'project_resources';
    end if;

    case new.resource_kind
        when 'server' then
            select name, status into v_name, v_status
              from servers where org_id = new.org_id and id = v_id for share;
        when 'web_service' then
            select name, status into v_name, v_status
              from web_services where org_id = new.org_id and id = v_id for share;
        when 'domain' then
            select name, status into v_name, v_status
              from domains where org_id = new.org_id and id = v_id for share;
        when 'database' then
            select name, status into v_name, v_status
              from databases where org_id = new.org_id and id = v_id for share;
    end case;
    if not found then
        raise exception 'project_resources: % % does not exist in organization %',
                new.resource_kind, v_id, new.org_id
            using errcode = 'foreign_key_violation',
                  constraint = 'project_resources_' || new.resource_kind || '_fkey',
                  table = 'project_resources';
    end if;

    new.denormalized_name := v_name;
    new.denormalized_status := v_status;
    return new;
end
$$;
create trigger fill_denormalized
    before insert or update of org_id, resource_kind, server_id, web_service_id, domain_id,
                               database_id, denormalized_name, denormalized_status
    on project_resources
    for each row execute function stackgate_project_resources_fill();

-- (b) When a resource's name or status changes, its links follow in the same statement.
create function stackgate_resource_sync_links() returns trigger
    language plpgsql
as $$
begin
    case tg_table_name
        when 'servers' then
            update project_resources
               set denormalized_name = new.name, denormalized_status = new.status
             where org_id = new.org_id and server_id = new.id
               and (denormalized_name, denormalized_status) is distinct from (new.name, new.status);
        when 'web_services' then
            update project_resources
               set denormalized_name = new.name, denormalized_status = new.status
             where org_id = new.org_id and web_service_id = new.id
               and (denormalized_name, denormalized_status) is distinct from (new.name, new.status);
        when 'domains' then
            update project_resources
               set denormalized_name = new.name, denormalized_status = new.status
             where org_id = new.org_id and domain_id = new.id
               and (denormalized_name, denormalized_status) is distinct from (new.name, new.status);
        when 'databases' then
            update project_resources
               set denormalized_name = new.name, denormalized_status = new.status
             where org_id = new.org_id and database_id = new.id
               and (denormalized_name, denormalized_status) is distinct from (new.name, new.status);
    end case;
    return null;
end
$$;
create trigger sync_project_links after update of name, status on servers
    for each row when (old.name is distinct from new.name or old.status is distinct from new.status)
    execute function stackgate_resource_sync_links();
create trigger sync_project_links after update of name, status on web_services
    for each row when (old.name is distinct from new.name or old.status is distinct from new.status)
    execute function stackgate_resource_sync_links();
create trigger sync_project_links after update of name, status on domains
    for each row when (old.name is distinct from new.name or old.status is distinct from new.status)
    execute function stackgate_resource_sync_links();
create trigger sync_project_links after update of name, status on databases
    for each row when (old.name is distinct from new.name or old.status is distinct from new.status)
    execute function stackgate_resource_sync_links();
