alter table api_keys drop column trusted_documents_only;
