-- Onboarding (issue 14): people provisioned on their first sign-in, and organizations created by
-- their own users.
--
-- Users. The application creates none of its own accord; the one way is
-- stackgate_provision_user, which creates the user that the transaction's
-- `stackgate.external_id` (the verified token's subject) names, from the token's e-mail and name.
-- It refuses (returns null) when another user has that e-mail, compared case-insensitively, so a
-- new subject can never take over an existing account (or its invitations) by claiming its
-- e-mail. Concurrent first requests are serialized on the e-mail (an advisory lock) and on the
-- unique external_id: they create one user.
--
-- As in the invitations migration, a non-superuser owner is subject to the FORCEd policies, so
-- these policies let the OWNER ROLE ONLY read and insert users while the transaction-local
-- stackgate.owner_maintenance is 'on' (set only inside the function).
create index users_lower_email_idx on users (lower(email));

do $$
begin
    execute format(
        'create policy owner_provision_users on users for insert to %I
             with check (current_setting(''stackgate.owner_maintenance'', true) = ''on'')',
        current_user);
end
$$;

create function stackgate_provision_user(p_email text, p_name text)
    returns uuid
    language plpgsql
    security definer
    set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_external text := nullif(current_setting('stackgate.external_id', true), '');
    v_id       uuid;
begin
    if v_external is null or p_email is null or length(p_email) not between 3 and 320
       or p_name is null or length(p_name) not between 1 and 200 or length(v_external) > 255 then
        return null;
    end if;
    perform set_config('stackgate.owner_maintenance', 'on', true);
    perform pg_advisory_xact_lock(hashtext('stackgate_provision_user'), hashtext(lower(p_email)));
    select u.id into v_id from users u where u.external_id = v_external;
    if v_id is null and not exists (select 1 from users u where lower(u.email) = lower(p_email)) then
        insert into users (external_id, email, name) values (v_external, p_email, p_name)
            on conflict do nothing
            returning id into v_id;
        if v_id is null then
            select u.id into v_id from users u where u.external_id = v_external;
        end if;
    end if;
    perform set_config('stackgate.owner_maintenance', '', true);
    return v_id;
end
$$;

revoke all on function stackgate_provision_user(text, text) from public;
grant execute on function stackgate_provision_user(text, text) to stackgate_app;

-- Organizations. A user creates one in a transaction whose `stackgate.org_id` is the new
-- organization's id (chosen by the application), so the built-in roles its trigger inserts and
-- the creator's owner membership pass the tenant policies like any write of that organization.
-- How many a user has created is counted on their row (never decreasing: soft-deleted
-- organizations stay in the table), and bounded by the application.
alter table users add column organizations_created integer not null default 0
    constraint users_organizations_created_check check (organizations_created >= 0);

create policy organizations_insert_current on organizations for insert
    with check (id = nullif(current_setting('stackgate.org_id', true), '')::uuid
                and deleted_at is null);
grant insert (id, name, slug) on organizations to stackgate_app;
grant update (organizations_created) on users to stackgate_app;

-- A renamed organization changes what cached viewers hold: publish an access event for it too.
drop trigger notify_access_update on organizations;
create trigger notify_access_update after update of name, slug, deleted_at on organizations
    for each row execute function stackgate_access_notify();
