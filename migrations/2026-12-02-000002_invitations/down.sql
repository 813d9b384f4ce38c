drop function stackgate_invitations_of_current_user(uuid);

do $$
declare
    t text;
begin
    foreach t in array array['invitations', 'organizations', 'roles', 'teams', 'clients', 'users'] loop
        execute format('drop policy owner_maintenance_invitations on %I', t);
    end loop;
end
$$;

drop table invitations;

create policy users_by_lookup_email on users for select
    using (email = nullif(current_setting('stackgate.lookup_email', true), ''));
