drop function stackgate_set_updated_at();

-- Remove everything stackgate_app owns or was granted in this database, then drop the role unless
-- another database of the cluster still uses it.
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'stackgate_app') then
        revoke usage on schema public from stackgate_app;
        drop owned by stackgate_app;
        begin
            drop role stackgate_app;
        exception when dependent_objects_still_exist then
            raise notice 'role stackgate_app is still used by another database; keeping it';
        end;
    end if;
end
$$;
