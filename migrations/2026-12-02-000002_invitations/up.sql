-- Invitations (issue 11, item 7): people who do not yet reach an organization join it only
-- through an invitation they accept themselves. `addTeamMember` and `addClientMember` no longer
-- look anyone up outside the organization, so the e-mail lookup policy goes.
--
-- An invitation names an e-mail (lower-cased), a role of the organization and at most one target:
-- none for an org membership, a team for a team membership, a client for a client membership (the
-- role is that membership's role). It is pending until accepted, revoked or expired.

drop policy users_by_lookup_email on users;

create table invitations (
    id          uuid primary key default gen_random_uuid(),
    org_id      uuid not null references organizations (id) on delete cascade,
    email       text not null,
    role_id     uuid not null,
    team_id     uuid,
    client_id   uuid,
    invited_by  uuid references users (id) on delete set null,
    expires_at  timestamptz not null,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint invitations_org_id_id_key unique (org_id, id),
    constraint invitations_email_format
        check (email = lower(email) and length(email) between 3 and 320 and position('@' in email) > 1),
    constraint invitations_one_target check (team_id is null or client_id is null),
    constraint invitations_closed_once check (accepted_at is null or revoked_at is null),
    constraint invitations_role_fkey foreign key (org_id, role_id) references roles (org_id, id),
    constraint invitations_team_fkey foreign key (org_id, team_id)
        references teams (org_id, id) on delete cascade,
    constraint invitations_client_fkey foreign key (org_id, client_id)
        references clients (org_id, id) on delete cascade
);
create index invitations_org_id_role_id_idx on invitations (org_id, role_id);
create index invitations_org_id_team_id_idx on invitations (org_id, team_id);
create index invitations_org_id_client_id_idx on invitations (org_id, client_id);
create index invitations_invited_by_idx on invitations (invited_by);
create index invitations_email_idx on invitations (email);
create trigger set_updated_at before update on invitations
    for each row execute function stackgate_set_updated_at();

alter table invitations enable row level security;
alter table invitations force row level security;
create policy tenant_isolation on invitations
    using (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid)
    with check (org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid);
-- Invitations are revoked, never deleted, by the application.
grant select, insert, update on invitations to stackgate_app;

-- The invitee's side. Invitations addressed to someone live in organizations they do not reach
-- yet, so row-level security hides them (and the names they show: organization, role, team,
-- client, inviter). This SECURITY DEFINER function is the one way across: it returns only the
-- invitations addressed to the e-mail of the user named by the transaction's stackgate.user_id
-- (set from the authenticated caller), either the one with id p_invitation_id (in any state, so
-- the caller can be told why it cannot be accepted) or, when that is null, the 100 newest pending
-- ones. Accepting happens afterwards in the invitation's own organization scope.
--
-- As in the sync_leases migration, a non-superuser owner is subject to the FORCEd policies, so
-- these policies let the OWNER ROLE ONLY read the rows involved while the transaction-local
-- stackgate.owner_maintenance is 'on' (set only inside the function).
do $$
declare
    t text;
begin
    foreach t in array array['invitations', 'organizations', 'roles', 'teams', 'clients', 'users'] loop
        execute format(
            'create policy owner_maintenance_invitations on %I for select to %I
                 using (current_setting(''stackgate.owner_maintenance'', true) = ''on'')', t, current_user);
    end loop;
end
$$;

create function stackgate_invitations_of_current_user(p_invitation_id uuid)
    returns table (invitation_id uuid, org_id uuid, org_name text, org_slug text, email text,
                   role_id uuid, role_name text, role_permissions jsonb, role_is_builtin boolean,
                   team_id uuid, team_name text, team_created_at timestamptz,
                   client_id uuid, client_name text, client_created_at timestamptz,
                   invited_by uuid, inviter_email text, inviter_name text,
                   inviter_created_at timestamptz, expires_at timestamptz,
                   accepted_at timestamptz, revoked_at timestamptz, created_at timestamptz)
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
#variable_conflict use_column
declare
    v_user  uuid := nullif(current_setting('stackgate.user_id', true), '')::uuid;
    v_email text;
begin
    if v_user is null then
        return;
    end if;
    perform set_config('stackgate.owner_maintenance', 'on', true);
    select lower(u.email) into v_email from users u where u.id = v_user;
    return query
        select i.id, i.org_id, o.name, o.slug, i.email,
               r.id, r.name, r.permissions, r.is_builtin,
               t.id, t.name, t.created_at,
               c.id, c.name, c.created_at,
               i.invited_by, u.email, u.name, u.created_at,
               i.expires_at, i.accepted_at, i.revoked_at, i.created_at
          from invitations i
          join organizations o on o.id = i.org_id and o.deleted_at is null
          join roles r on r.org_id = i.org_id and r.id = i.role_id
          left join teams t on t.org_id = i.org_id and t.id = i.team_id
          left join clients c on c.org_id = i.org_id and c.id = i.client_id
          left join users u on u.id = i.invited_by
         where i.email = v_email
           and (case when p_invitation_id is null
                     then i.accepted_at is null and i.revoked_at is null and i.expires_at > now()
                     else i.id = p_invitation_id end)
         order by i.created_at desc, i.id desc
         limit 100;
    perform set_config('stackgate.owner_maintenance', '', true);
end
$$;

revoke all on function stackgate_invitations_of_current_user(uuid) from public;
grant execute on function stackgate_invitations_of_current_user(uuid) to stackgate_app;
