drop policy users_by_lookup_email on users;
