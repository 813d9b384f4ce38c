drop trigger sync_link_health on servers;
drop trigger sync_link_health on web_services;
drop trigger sync_link_health on domains;
drop trigger sync_link_health on databases;
drop function stackgate_resource_sync_link_health();

drop trigger fill_denormalized on project_resources;
create or replace function stackgate_project_resources_fill() returns trigger
    language plpgsql
as $$
declare
    v_id     uuid;
    v_name   text;
    v_status text;
begin
    v_id := case new.resource_kind
        when 'server' then new.server_id
        when 'web_service' then new.web_service_id
        when 'domain' then new.domain_id
        when 'database' then new.database_id
    end;
    if v_id is null
       or num_nonnulls(new.server_id, new.web_service_id, new.domain_id, new.database_id) <> 1 then
        raise exception 'project_resources: exactly one resource id must be set, matching resource_kind %',
                coalesce(quote_literal(new.resource_kind), 'NULL')
            using errcode = 'check_violation',
                  constraint = 'project_resources_kind_matches',
                  table = 'project_resources';
    end if;

    case new.resource_kind
        when 'server' then
            select name, status into v_name, v_status
              from servers where org_id = new.org_id and id = v_id for share;
        when 'web_service' then
            select name, status into v_name, v_status
              from web_services where org_id = new.org_id and id = v_id for share;
        when 'domain' then
            select name, status into v_name, v_status
              from domains where org_id = new.org_id and id = v_id for share;
        when 'database' then
            select name, status into v_name, v_status
              from databases where org_id = new.org_id and id = v_id for share;
    end case;
    if not found then
        raise exception 'project_resources: % % does not exist in organization %',
                new.resource_kind, v_id, new.org_id
            using errcode = 'foreign_key_violation',
                  constraint = 'project_resources_' || new.resource_kind || '_fkey',
                  table = 'project_resources';
    end if;

    new.denormalized_name := v_name;
    new.denormalized_status := v_status;
    return new;
end
$$;
create trigger fill_denormalized
    before insert or update of org_id, resource_kind, server_id, web_service_id, domain_id,
                               database_id, denormalized_name, denormalized_status
    on project_resources
    for each row execute function stackgate_project_resources_fill();

drop trigger set_updated_at on project_resources;
create trigger set_updated_at before update on project_resources
    for each row execute function stackgate_set_updated_at('resource_id');

alter table project_resources
    drop constraint project_resources_denormalized_health_check,
    drop column denormalized_health;
