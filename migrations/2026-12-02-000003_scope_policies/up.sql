-- The active organization bounds every read (docs/security.md).
--
-- Identity resolution runs before an organization is chosen, with only `stackgate.user_id` set:
-- it must read the user's own memberships, their roles and their organizations in every
-- organization. The policies that allowed it checked the user alone, so they also held inside a
-- request, where `stackgate.org_id` names the active organization: a user belonging to a second
-- organization could read that organization's roles (and their own memberships there) from the
-- first one's context. Each such policy now applies only while no organization is set; once one
-- is, `tenant_isolation` (org_id = the active organization) is the only way to a row.
-- Plain setting comparisons, as before: no per-row function calls.

drop policy memberships_own on memberships;
create policy memberships_own on memberships for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy team_memberships_own on team_memberships;
create policy team_memberships_own on team_memberships for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy client_memberships_own on client_memberships;
create policy client_memberships_own on client_memberships for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

drop policy roles_of_own_memberships on roles;
create policy roles_of_own_memberships on roles for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and id in (select m.role_id from memberships m
                      where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));

drop policy roles_of_own_team_and_client_memberships on roles;
create policy roles_of_own_team_and_client_memberships on roles for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and (id in (select tm.role_id from team_memberships tm
                       where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
                or id in (select cm.role_id from client_memberships cm
                          where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)));

drop policy organizations_visible on organizations;
create policy organizations_visible on organizations for select
    using (id = nullif(current_setting('stackgate.org_id', true), '')::uuid
           or (nullif(current_setting('stackgate.org_id', true), '') is null
               and id in (select m.org_id from memberships m
                          where m.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid))
           or slug = nullif(current_setting('stackgate.admin_org_slug', true), ''));

drop policy organizations_via_teams_and_clients on organizations;
create policy organizations_via_teams_and_clients on organizations for select
    using (nullif(current_setting('stackgate.org_id', true), '') is null
           and (id in (select tm.org_id from team_memberships tm
                       where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
                or id in (select cm.org_id from client_memberships cm
                          where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)));
