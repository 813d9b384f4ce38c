drop function stackgate_claim_due_notifications(text, integer, integer);
drop trigger notify_change_acknowledged on alerts;
drop trigger enqueue_notifications_update on alerts;
drop trigger enqueue_notifications on alerts;
drop function stackgate_enqueue_alert_notifications();
alter table alerts
    drop column acknowledged_at,
    drop column acknowledged_by,
    drop column acknowledgement_note,
    drop column resolved_by,
    drop column resolution_note;
drop table notification_deliveries;
drop table notification_channels;
