-- Back to the policies of 2026-11-22-000006 and 2026-11-22-100001 (checked by the user alone).

drop policy memberships_own on memberships;
create policy memberships_own on memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy team_memberships_own on team_memberships;
create policy team_memberships_own on team_memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy client_memberships_own on client_memberships;
create policy client_memberships_own on client_memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy roles_of_own_memberships on roles;
create policy roles_of_own_memberships on roles for select
    using (id in (select m.role_id from memberships m where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));

drop policy roles_of_own_team_and_client_memberships on roles;
create policy roles_of_own_team_and_client_memberships on roles for select
    using (id in (select tm.role_id from team_memberships tm
                  where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or id in (select cm.role_id from client_memberships cm
                     where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));

drop policy organizations_visible on organizations;
create policy organizations_visible on organizations for select
    using (id = nullif(current_setting('stackgate.org_id', true), '')::uuid
           or id in (select m.org_id from memberships m where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or slug = nullif(current_setting('stackgate.admin_org_slug', true), ''));

drop policy organizations_via_teams_and_clients on organizations;
create policy organizations_via_teams_and_clients on organizations for select
    using (id in (select tm.org_id from team_memberships tm
                  where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or id in (select cm.org_id from client_memberships cm
                     where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));
