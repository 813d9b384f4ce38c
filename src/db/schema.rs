// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "xid8", schema = "pg_catalog"))]
    pub struct Xid8;
}

diesel::table! {
    action_runs (id) {
        id -> Uuid,
        org_id -> Uuid,
        resource_kind -> Text,
        resource_id -> Uuid,
        dock_id -> Uuid,
        action -> Text,
        status -> Text,
        requested_by -> Nullable<Uuid>,
        api_key_id -> Nullable<Uuid>,
        idempotency_key -> Nullable<Text>,
        summary -> Nullable<Text>,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alerts (id) {
        id -> Uuid,
        org_id -> Uuid,
        resource_kind -> Text,
        resource_id -> Uuid,
        severity -> Text,
        opened_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        message -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        acknowledged_at -> Nullable<Timestamptz>,
        acknowledged_by -> Nullable<Uuid>,
        acknowledgement_note -> Nullable<Text>,
        resolved_by -> Nullable<Uuid>,
        resolution_note -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        prefix -> Text,
        secret_hash -> Bytea,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        trusted_documents_only -> Bool,
    }
}

diesel::table! {
    audit_logs (id) {
        id -> Uuid,
        org_id -> Uuid,
        user_id -> Nullable<Uuid>,
        api_key_id -> Nullable<Uuid>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Uuid>,
        result -> Text,
        message -> Nullable<Text>,
        metadata -> Jsonb,
        ip_address -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    client_memberships (id) {
        id -> Uuid,
        org_id -> Uuid,
        client_id -> Uuid,
        user_id -> Uuid,
        role_id -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    clients (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    databases (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        provider -> Text,
        provider_resource_id -> Text,
        name -> Text,
        status -> Text,
        provider_status -> Nullable<Text>,
        region -> Nullable<Text>,
        full_api_data -> Nullable<Jsonb>,
        health_state -> Text,
        last_health_check_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        engine -> Nullable<Text>,
        version -> Nullable<Text>,
        host -> Nullable<Text>,
        port -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        health_next_check_at -> Timestamptz,
        health_lease_owner -> Nullable<Text>,
        health_lease_expires_at -> Nullable<Timestamptz>,
        health_streak_state -> Nullable<Text>,
        health_streak_count -> Int4,
        tags -> Array<Text>,
    }
}

diesel::table! {
    dock_permissions (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        team_id -> Nullable<Uuid>,
        client_id -> Nullable<Uuid>,
        level -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    docks (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        provider -> Text,
        encrypted_api_key -> Bytea,
        api_key_hint -> Nullable<Text>,
        endpoint -> Nullable<Text>,
        last_sync_at -> Nullable<Timestamptz>,
        last_sync_status -> Text,
        last_sync_error -> Nullable<Text>,
        sync_interval_seconds -> Int4,
        backoff_until -> Nullable<Timestamptz>,
        rate_limit_remaining -> Nullable<Int4>,
        rate_limit_reset_at -> Nullable<Timestamptz>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    domains (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        provider -> Text,
        provider_resource_id -> Text,
        name -> Text,
        status -> Text,
        provider_status -> Nullable<Text>,
        region -> Nullable<Text>,
        full_api_data -> Nullable<Jsonb>,
        health_state -> Text,
        last_health_check_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        domain_name -> Text,
        expires_at -> Nullable<Timestamptz>,
        auto_renew -> Nullable<Bool>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        health_next_check_at -> Timestamptz,
        health_lease_owner -> Nullable<Text>,
        health_lease_expires_at -> Nullable<Timestamptz>,
        health_streak_state -> Nullable<Text>,
        health_streak_count -> Int4,
        tags -> Array<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    event_outbox (xid, id) {
        id -> Int8,
        org_id -> Nullable<Uuid>,
        payload -> Text,
        xid -> Xid8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    event_relay (id) {
        id -> Bool,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        last_seq -> Int8,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    health_check_intervals (id) {
        id -> Uuid,
        org_id -> Uuid,
        resource_kind -> Text,
        interval_seconds -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    health_checks (id) {
        id -> Uuid,
        org_id -> Uuid,
        resource_kind -> Text,
        resource_id -> Uuid,
        checked_at -> Timestamptz,
        state -> Text,
        latency_ms -> Nullable<Int4>,
        message -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        org_id -> Uuid,
        email -> Text,
        role_id -> Uuid,
        team_id -> Nullable<Uuid>,
        client_id -> Nullable<Uuid>,
        invited_by -> Nullable<Uuid>,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    memberships (id) {
        id -> Uuid,
        org_id -> Uuid,
        user_id -> Uuid,
        role_id -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notification_channels (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        kind -> Text,
        url -> Nullable<Text>,
        email_to -> Nullable<Text>,
        encrypted_secret -> Nullable<Bytea>,
        secret_hint -> Nullable<Text>,
        min_severity -> Text,
        project_id -> Nullable<Uuid>,
        resource_kind -> Nullable<Text>,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notification_deliveries (id) {
        id -> Uuid,
        org_id -> Uuid,
        channel_id -> Uuid,
        alert_id -> Nullable<Uuid>,
        event -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    operation_permissions (id) {
        id -> Uuid,
        org_id -> Uuid,
        operation_service_id -> Uuid,
        team_id -> Uuid,
        level -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    operation_services (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        kind -> Text,
        provider -> Nullable<Text>,
        encrypted_config -> Nullable<Bytea>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        config_hint -> Nullable<Text>,
    }
}

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        slug -> Text,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    project_operation_services (id) {
        id -> Uuid,
        org_id -> Uuid,
        project_id -> Uuid,
        operation_service_id -> Uuid,
        linked_by -> Nullable<Uuid>,
        linked_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    project_resources (id) {
        id -> Uuid,
        org_id -> Uuid,
        project_id -> Uuid,
        resource_kind -> Text,
        server_id -> Nullable<Uuid>,
        web_service_id -> Nullable<Uuid>,
        domain_id -> Nullable<Uuid>,
        database_id -> Nullable<Uuid>,
        resource_id -> Uuid,
        denormalized_name -> Text,
        denormalized_status -> Text,
        linked_by -> Nullable<Uuid>,
        linked_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        denormalized_health -> Text,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        org_id -> Uuid,
        client_id -> Nullable<Uuid>,
        team_id -> Nullable<Uuid>,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    roles (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        permissions -> Jsonb,
        is_builtin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    servers (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        provider -> Text,
        provider_resource_id -> Text,
        name -> Text,
        status -> Text,
        provider_status -> Nullable<Text>,
        region -> Nullable<Text>,
        full_api_data -> Nullable<Jsonb>,
        health_state -> Text,
        last_health_check_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        primary_ip_address -> Nullable<Text>,
        ipv6 -> Nullable<Text>,
        vcpus -> Nullable<Int4>,
        memory_mb -> Nullable<Int4>,
        disk_gb -> Nullable<Int4>,
        image -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        health_next_check_at -> Timestamptz,
        health_lease_owner -> Nullable<Text>,
        health_lease_expires_at -> Nullable<Timestamptz>,
        health_streak_state -> Nullable<Text>,
        health_streak_count -> Int4,
        tags -> Array<Text>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        trigger -> Text,
        status -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        created -> Int4,
        updated -> Int4,
        deleted -> Int4,
        unchanged -> Int4,
        pages -> Int4,
        requests -> Int4,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    team_memberships (id) {
        id -> Uuid,
        org_id -> Uuid,
        team_id -> Uuid,
        user_id -> Uuid,
        role_id -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    teams (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        slug -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        external_id -> Text,
        email -> Text,
        name -> Text,
        is_platform_admin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        organizations_created -> Int4,
    }
}

diesel::table! {
    web_services (id) {
        id -> Uuid,
        org_id -> Uuid,
        dock_id -> Uuid,
        provider -> Text,
        provider_resource_id -> Text,
        name -> Text,
        status -> Text,
        provider_status -> Nullable<Text>,
        region -> Nullable<Text>,
        full_api_data -> Nullable<Jsonb>,
        health_state -> Text,
        last_health_check_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        production_url -> Nullable<Text>,
        environment -> Nullable<Text>,
        framework -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        health_next_check_at -> Timestamptz,
        health_lease_owner -> Nullable<Text>,
        health_lease_expires_at -> Nullable<Timestamptz>,
        health_streak_state -> Nullable<Text>,
        health_streak_count -> Int4,
        tags -> Array<Text>,
    }
}

diesel::joinable!(action_runs -> organizations (org_id));
diesel::joinable!(action_runs -> users (requested_by));
diesel::joinable!(alerts -> organizations (org_id));
diesel::joinable!(api_keys -> organizations (org_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(audit_logs -> api_keys (api_key_id));
diesel::joinable!(audit_logs -> organizations (org_id));
diesel::joinable!(audit_logs -> users (user_id));
diesel::joinable!(client_memberships -> organizations (org_id));
diesel::joinable!(client_memberships -> users (user_id));
diesel::joinable!(clients -> organizations (org_id));
diesel::joinable!(databases -> organizations (org_id));
diesel::joinable!(dock_permissions -> organizations (org_id));
diesel::joinable!(docks -> organizations (org_id));
diesel::joinable!(domains -> organizations (org_id));
diesel::joinable!(health_check_intervals -> organizations (org_id));
diesel::joinable!(health_checks -> organizations (org_id));
diesel::joinable!(invitations -> organizations (org_id));
diesel::joinable!(invitations -> users (invited_by));
diesel::joinable!(memberships -> organizations (org_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(notification_channels -> organizations (org_id));
diesel::joinable!(notification_deliveries -> organizations (org_id));
diesel::joinable!(operation_permissions -> organizations (org_id));
diesel::joinable!(operation_services -> organizations (org_id));
diesel::joinable!(project_operation_services -> organizations (org_id));
diesel::joinable!(project_operation_services -> users (linked_by));
diesel::joinable!(project_resources -> organizations (org_id));
diesel::joinable!(project_resources -> users (linked_by));
diesel::joinable!(projects -> organizations (org_id));
diesel::joinable!(projects -> users (created_by));
diesel::joinable!(roles -> organizations (org_id));
diesel::joinable!(servers -> organizations (org_id));
diesel::joinable!(sync_runs -> organizations (org_id));
diesel::joinable!(team_memberships -> organizations (org_id));
diesel::joinable!(team_memberships -> users (user_id));
diesel::joinable!(teams -> organizations (org_id));
diesel::joinable!(web_services -> organizations (org_id));

diesel::allow_tables_to_appear_in_same_query!(
    action_runs,
    alerts,
    api_keys,
    audit_logs,
    client_memberships,
    clients,
    databases,
    dock_permissions,
    docks,
    domains,
    event_outbox,
    event_relay,
    health_check_intervals,
    health_checks,
    invitations,
    memberships,
    notification_channels,
    notification_deliveries,
    operation_permissions,
    operation_services,
    organizations,
    project_operation_services,
    project_resources,
    projects,
    roles,
    servers,
    sync_runs,
    team_memberships,
    teams,
    users,
    web_services,
);
