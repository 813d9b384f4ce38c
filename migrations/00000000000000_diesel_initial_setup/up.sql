-- stackgate: database-wide prerequisites (replaces diesel's standard initial setup).
--
-- 1. The application role `stackgate_app`. The server connects as the owner (or a superuser) and
--    runs `SET ROLE stackgate_app` on every pooled connection, so its queries run as a role that
--    owns no table, cannot log in, and has no BYPASSRLS: row-level security (last migration)
--    always applies to it. Roles are cluster-wide and several databases of one cluster may share
--    it, so it is created only when missing; its attributes are enforced either way.
-- 2. `stackgate_set_updated_at()`, the one trigger function that keeps every `updated_at`.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'stackgate_app') then
        begin
            create role stackgate_app nologin nosuperuser nobypassrls nocreatedb nocreaterole;
        exception when duplicate_object then
            null; -- created concurrently by a migration of another database
        end;
    end if;

    -- An existing role must not be able to escape row-level security.
    if exists (select 1 from pg_roles
               where rolname = 'stackgate_app'
                 and (rolsuper or rolbypassrls or rolcanlogin or rolcreatedb or rolcreaterole)) then
        alter role stackgate_app nologin nosuperuser nobypassrls nocreatedb nocreaterole;
    end if;

    -- A superuser may always `SET ROLE stackgate_app`; a non-superuser owner needs membership.
    if not (select rolsuper from pg_roles where rolname = current_user)
       and not pg_has_role(current_user, 'stackgate_app', 'member') then
        execute format('grant stackgate_app to %I', current_user);
    end if;
end
$$;

grant usage on schema public to stackgate_app;

-- Keeps `updated_at` on every table that has one (BEFORE UPDATE ... FOR EACH ROW): it is set to
-- now() when the row actually changed, whatever the caller wrote into it.
-- Stored generated columns are not computed yet in a BEFORE trigger (they read as NULL in NEW), so
-- a table that has any passes their names as trigger arguments and they are left out of the
-- comparison.
create function stackgate_set_updated_at() returns trigger
    language plpgsql
as $$
begin
    if tg_nargs = 0 then
        if row(new.*) is distinct from row(old.*) then
            new.updated_at := now();
        end if;
    elsif (to_jsonb(new) - tg_argv) is distinct from (to_jsonb(old) - tg_argv) then
        new.updated_at := now();
    end if;
    return new;
end
$$;
