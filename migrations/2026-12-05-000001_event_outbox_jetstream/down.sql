drop function stackgate_relay_published(text, bigint);
drop function stackgate_relay_claim(text, integer, integer);
drop index event_outbox_seq;
alter table event_outbox drop column seq;
