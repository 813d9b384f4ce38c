-- An API key may be limited to the trusted documents manifest (docs/http-api.md, "Persisted
-- queries and trusted documents"): such a key runs only the documents its operators vetted,
-- whatever mode the server runs in, so a leaked key cannot run arbitrary queries.
alter table api_keys add column trusted_documents_only boolean not null default false;
