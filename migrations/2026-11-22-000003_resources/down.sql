drop table databases;
drop table domains;
drop table web_services;
drop table servers;
