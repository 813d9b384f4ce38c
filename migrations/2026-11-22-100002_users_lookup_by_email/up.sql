-- Adding a person to a team or client by email (`addTeamMember`, `addClientMember`).
--
-- `users_visible` shows the app only the people of the current organization, so someone who is
-- not yet in it cannot be found. This policy shows exactly one more user: the one whose email
-- equals `stackgate.lookup_email`. Only those mutations set it, behind settings FULL, with
--   select set_config('stackgate.lookup_email', $1, true)
-- for their own transaction only (and clear it right after the lookup). Unset or empty, it shows
-- nobody. A plain text comparison on the unique `email`: no per-row function call.

create policy users_by_lookup_email on users for select
    using (email = nullif(current_setting('stackgate.lookup_email', true), ''));
