-- Identity and access: organizations, users, roles, memberships, teams, clients, API keys.
--
-- Tenant tables carry `org_id` and `unique (org_id, id)`; a reference to another tenant table is
-- the composite `(org_id, x_id) references x (org_id, id)`, so a row can never point into another
-- organization. Every foreign key has an index whose leading columns are the key's columns.

create table organizations (
    id         uuid primary key default gen_random_uuid(),
    name       text not null,
    slug       text not null,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint organizations_slug_key unique (slug),
    constraint organizations_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);
create trigger set_updated_at before update on organizations
    for each row execute function stackgate_set_updated_at();

-- Global: a person known to the identity provider (external_id = the token's `sub`).
create table users (
    id                uuid primary key default gen_random_uuid(),
    external_id       text not null,
    email             text not null,
    name              text not null,
    is_platform_admin boolean not null default false,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    constraint users_external_id_key unique (external_id),
    constraint users_email_key unique (email)
);
create trigger set_updated_at before update on users
    for each row execute function stackgate_set_updated_at();

-- permissions: one level per area, e.g. {"projects": "full", "docks": "read"}; a missing area is
-- "none". Areas: projects, resources, docks, operations, settings, audit, monitoring.
create table roles (
    id          uuid primary key default gen_random_uuid(),
    org_id      uuid not null references organizations (id) on delete cascade,
    name        text not null,
    permissions jsonb not null default '{}',
    is_builtin  boolean not null default false,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint roles_org_id_id_key unique (org_id, id),
    constraint roles_org_id_name_key unique (org_id, name),
    constraint roles_permissions_is_object check (jsonb_typeof(permissions) = 'object')
);
create trigger set_updated_at before update on roles
    for each row execute function stackgate_set_updated_at();

create table memberships (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    user_id    uuid not null references users (id) on delete cascade,
    role_id    uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint memberships_org_id_id_key unique (org_id, id),
    constraint memberships_org_id_user_id_key unique (org_id, user_id),
    constraint memberships_role_fkey foreign key (org_id, role_id) references roles (org_id, id)
);
create index memberships_user_id_idx on memberships (user_id);
create index memberships_org_id_role_id_idx on memberships (org_id, role_id);
create trigger set_updated_at before update on memberships
    for each row execute function stackgate_set_updated_at();

create table teams (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    name       text not null,
    slug       text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint teams_org_id_id_key unique (org_id, id),
    constraint teams_org_id_name_key unique (org_id, name),
    constraint teams_org_id_slug_key unique (org_id, slug),
    constraint teams_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);
create trigger set_updated_at before update on teams
    for each row execute function stackgate_set_updated_at();

create table team_memberships (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    team_id    uuid not null,
    user_id    uuid not null references users (id) on delete cascade,
    role_id    uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint team_memberships_org_id_id_key unique (org_id, id),
    constraint team_memberships_team_id_user_id_key unique (team_id, user_id),
    constraint team_memberships_team_fkey foreign key (org_id, team_id)
        references teams (org_id, id) on delete cascade,
    constraint team_memberships_role_fkey foreign key (org_id, role_id) references roles (org_id, id)
);
create index team_memberships_org_id_team_id_idx on team_memberships (org_id, team_id);
create index team_memberships_user_id_idx on team_memberships (user_id);
create index team_memberships_org_id_role_id_idx on team_memberships (org_id, role_id);
create trigger set_updated_at before update on team_memberships
    for each row execute function stackgate_set_updated_at();

create table clients (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    name       text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint clients_org_id_id_key unique (org_id, id),
    constraint clients_org_id_name_key unique (org_id, name)
);
create trigger set_updated_at before update on clients
    for each row execute function stackgate_set_updated_at();

create table client_memberships (
    id         uuid primary key default gen_random_uuid(),
    org_id     uuid not null references organizations (id) on delete cascade,
    client_id  uuid not null,
    user_id    uuid not null references users (id) on delete cascade,
    role_id    uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint client_memberships_org_id_id_key unique (org_id, id),
    constraint client_memberships_client_id_user_id_key unique (client_id, user_id),
    constraint client_memberships_client_fkey foreign key (org_id, client_id)
        references clients (org_id, id) on delete cascade,
    constraint client_memberships_role_fkey foreign key (org_id, role_id) references roles (org_id, id)
);
create index client_memberships_org_id_client_id_idx on client_memberships (org_id, client_id);
create index client_memberships_user_id_idx on client_memberships (user_id);
create index client_memberships_org_id_role_id_idx on client_memberships (org_id, role_id);
create trigger set_updated_at before update on client_memberships
    for each row execute function stackgate_set_updated_at();

-- Token `sg_<prefix>_<secret>`: `prefix` finds the row, `secret_hash` verifies the secret.
create table api_keys (
    id           uuid primary key default gen_random_uuid(),
    org_id       uuid not null references organizations (id) on delete cascade,
    user_id      uuid not null references users (id) on delete cascade,
    name         text not null,
    prefix       text not null,
    secret_hash  bytea not null,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint api_keys_org_id_id_key unique (org_id, id),
    constraint api_keys_prefix_key unique (prefix)
);
create index api_keys_user_id_idx on api_keys (user_id);
create trigger set_updated_at before update on api_keys
    for each row execute function stackgate_set_updated_at();

-- Every organization gets the four built-in roles when it is created.
create function stackgate_create_builtin_roles() returns trigger
    language plpgsql
as $$
begin
    insert into roles (org_id, name, permissions, is_builtin)
    values
        (new.id, 'owner',
         '{"projects": "full", "resources": "full", "docks": "full", "operations": "full",
           "settings": "full", "audit": "full", "monitoring": "full"}', true),
        (new.id, 'admin',
         '{"projects": "full", "resources": "full", "docks": "full", "operations": "full",
           "settings": "full", "audit": "full", "monitoring": "full"}', true),
        (new.id, 'member',
         '{"projects": "full", "resources": "read", "docks": "read", "operations": "read",
           "monitoring": "read"}', true),
        (new.id, 'viewer',
         '{"projects": "read", "resources": "read", "docks": "read", "operations": "read",
           "monitoring": "read"}', true);
    return null;
end
$$;
create trigger create_builtin_roles after insert on organizations
    for each row execute function stackgate_create_builtin_roles();
