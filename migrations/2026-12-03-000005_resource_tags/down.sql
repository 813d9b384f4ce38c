drop index servers_org_id_provider_idx, web_services_org_id_provider_idx,
    domains_org_id_provider_idx, databases_org_id_provider_idx;
drop index servers_name_trgm_idx, web_services_name_trgm_idx, domains_name_trgm_idx,
    databases_name_trgm_idx;
alter table servers drop column tags;
alter table web_services drop column tags;
alter table domains drop column tags;
alter table databases drop column tags;
drop extension if exists pg_trgm;
