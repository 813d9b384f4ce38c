-- User-defined tags on resources, and the indexes behind the resource list filters.
--
-- `tags` belongs to the people who use stackgate: sync never writes it (its upserts name their
-- columns), `setResourceTags` does. At most 32 tags per resource; each is checked by the
-- mutation (1–64 characters of a small alphabet), the bound here is the last line of defence.
-- Tag filters use `tags @> $tags` (GIN); name search uses `name ilike '%…%'` (trigram GIN), so a
-- filtered page stays one indexed statement however many resources an organization has.
create extension if not exists pg_trgm;

alter table servers add column tags text[] not null default '{}'
    constraint servers_tags_bound check (cardinality(tags) <= 32);
alter table web_services add column tags text[] not null default '{}'
    constraint web_services_tags_bound check (cardinality(tags) <= 32);
alter table domains add column tags text[] not null default '{}'
    constraint domains_tags_bound check (cardinality(tags) <= 32);
alter table databases add column tags text[] not null default '{}'
    constraint databases_tags_bound check (cardinality(tags) <= 32);

create index servers_tags_idx on servers using gin (tags);
create index web_services_tags_idx on web_services using gin (tags);
create index domains_tags_idx on domains using gin (tags);
create index databases_tags_idx on databases using gin (tags);

create index servers_name_trgm_idx on servers using gin (name gin_trgm_ops);
create index web_services_name_trgm_idx on web_services using gin (name gin_trgm_ops);
create index domains_name_trgm_idx on domains using gin (name gin_trgm_ops);
create index databases_name_trgm_idx on databases using gin (name gin_trgm_ops);

create index servers_org_id_provider_idx on servers (org_id, provider);
create index web_services_org_id_provider_idx on web_services (org_id, provider);
create index domains_org_id_provider_idx on domains (org_id, provider);
create index databases_org_id_provider_idx on databases (org_id, provider);
