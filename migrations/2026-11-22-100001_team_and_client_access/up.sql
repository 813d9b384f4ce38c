-- A person may reach an organization through a team or a client membership alone (docs/security.md:
-- team roles over the team's projects and granted docks; client roles over the client portal).
-- Identity resolution runs before an organization is chosen, with only `stackgate.user_id` set,
-- so the user's own team and client memberships, their organizations and roles must be readable
-- by that setting, exactly as `memberships_own` does for org memberships.

create policy team_memberships_own on team_memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

create policy client_memberships_own on client_memberships for select
    using (user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid);

create policy roles_of_own_team_and_client_memberships on roles for select
    using (id in (select tm.role_id from team_memberships tm
                  where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or id in (select cm.role_id from client_memberships cm
                     where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));

create policy organizations_via_teams_and_clients on organizations for select
    using (id in (select tm.org_id from team_memberships tm
                  where tm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid)
           or id in (select cm.org_id from client_memberships cm
                     where cm.user_id = nullif(current_setting('stackgate.user_id', true), '')::uuid));
