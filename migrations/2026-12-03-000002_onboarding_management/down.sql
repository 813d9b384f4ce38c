drop trigger notify_access_update on organizations;
create trigger notify_access_update after update of slug, deleted_at on organizations
    for each row execute function stackgate_access_notify();

revoke update (organizations_created) on users from stackgate_app;
revoke insert (id, name, slug) on organizations from stackgate_app;
drop policy organizations_insert_current on organizations;
alter table users drop column organizations_created;

drop function stackgate_provision_user(text, text);
drop policy owner_provision_users on users;
drop index users_lower_email_idx;
