//! The contract's enums and their stored words.

use async_graphql::Enum;

use crate::db::models::resource::Kind;

/// What kind of thing a resource is; each kind is an object type implementing `Resource`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A virtual machine (`Server`).
    Server,
    /// A hosted application or site (`WebService`).
    WebService,
    /// A registered domain name (`Domain`).
    Domain,
    /// A managed database (`Database`).
    Database,
}

impl From<Kind> for ResourceKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Server => Self::Server,
            Kind::WebService => Self::WebService,
            Kind::Domain => Self::Domain,
            Kind::Database => Self::Database,
        }
    }
}

impl From<ResourceKind> for Kind {
    fn from(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::Server => Kind::Server,
            ResourceKind::WebService => Kind::WebService,
            ResourceKind::Domain => Kind::Domain,
            ResourceKind::Database => Kind::Database,
        }
    }
}

/// Maps enum values to and from the lowercase words stored in the database.
macro_rules! stored_words {
    ($ty:ident { $($variant:ident => $word:literal),* $(,)? } else $fallback:ident) => {
        impl $ty {
            /// The stored word.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),* }
            }
            /// Reads a stored word; unknown words read as the fallback.
            pub fn from_word(word: &str) -> Self {
                match word { $($word => Self::$variant,)* _ => Self::$fallback }
            }
        }
    };
}

/// A resource's lifecycle status, normalized from the provider's own word (which
/// `providerStatus` keeps).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceStatus {
    /// Running or available.
    Active,
    /// Being created or changed by the provider.
    Provisioning,
    /// Switched off or paused; it still exists at the provider.
    Stopped,
    /// The provider reports it failed.
    Error,
    /// Missing from the provider's complete listing at a sync (the row is kept).
    Deleted,
    /// The provider's word maps to none of the others.
    Unknown,
}

stored_words!(ResourceStatus {
    Active => "active", Provisioning => "provisioning", Stopped => "stopped",
    Error => "error", Deleted => "deleted", Unknown => "unknown",
} else Unknown);

/// What the health monitor's probes of a resource concluded.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Probes succeed in time.
    Healthy,
    /// Slow, or a warning sign (an HTTP 4xx, a domain expiring within 14 days).
    Degraded,
    /// Probes fail (an error, a timeout, an HTTP 5xx, an expired or unresolvable domain).
    Unhealthy,
    /// Not probed yet, or nothing to probe.
    Unknown,
}

stored_words!(HealthState {
    Healthy => "healthy", Degraded => "degraded", Unhealthy => "unhealthy", Unknown => "unknown",
} else Unknown);

/// Where a dock's sync stands (for a dock: its latest run; for a run: that run).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// Not synced yet.
    Pending,
    /// A sync is running.
    Syncing,
    /// The sync finished and its listing was written.
    Success,
    /// The sync failed and wrote nothing (see `lastSyncError` / `error`).
    Error,
}

stored_words!(SyncStatus {
    Pending => "pending", Syncing => "syncing", Success => "success", Error => "error",
} else Pending);

/// How far a role reaches into one area of an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccessLevel {
    /// Nothing in the area is shown.
    None,
    /// The area can be read.
    Read,
    /// The area can be read and changed.
    Full,
}

/// What an operation service does for the organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OperationServiceKind {
    /// Object storage that backups are written to.
    BackupBucket,
    /// A content delivery network.
    Cdn,
    /// A DNS provider.
    Dns,
    /// An external monitoring or uptime service.
    Monitoring,
    /// Anything else.
    Other,
}

impl OperationServiceKind {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackupBucket => "backup_bucket",
            Self::Cdn => "cdn",
            Self::Dns => "dns",
            Self::Monitoring => "monitoring",
            Self::Other => "other",
        }
    }

    /// The kind of a stored word (an unknown word reads as `OTHER`).
    pub fn from_word(word: &str) -> Self {
        match word {
            "backup_bucket" => Self::BackupBucket,
            "cdn" => Self::Cdn,
            "dns" => Self::Dns,
            "monitoring" => Self::Monitoring,
            _ => Self::Other,
        }
    }
}

/// Stored words of a list of enum values (for filters).
pub fn words<T: Copy>(values: &[T], word: impl Fn(T) -> &'static str) -> Vec<String> {
    values.iter().map(|v| word(*v).to_owned()).collect()
}

/// Where a notification channel sends alerts.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationChannelKind {
    /// A signed JSON `POST` to a URL (`X-Stackgate-Signature`, see `docs/health.md`).
    Webhook,
    /// A Slack-compatible incoming webhook (`POST {"text": ...}`).
    Slack,
    /// An e-mail through the server's SMTP relay.
    Email,
}

stored_words!(NotificationChannelKind {
    Webhook => "webhook", Slack => "slack", Email => "email",
} else Webhook);

/// How serious an alert is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AlertSeverity {
    /// Informational.
    Info,
    /// A resource is DEGRADED.
    Warning,
    /// A resource is UNHEALTHY.
    Critical,
}

stored_words!(AlertSeverity {
    Info => "info", Warning => "warning", Critical => "critical",
} else Info);

/// What a notification announces.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationEvent {
    /// An alert opened.
    Opened,
    /// An alert resolved (the resource recovered, or someone resolved it).
    Resolved,
    /// A test message (`testNotificationChannel`).
    Test,
}

stored_words!(NotificationEvent {
    Opened => "opened", Resolved => "resolved", Test => "test",
} else Test);

/// Where a notification's delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationDeliveryStatus {
    /// Not delivered yet: waiting for its first attempt or a retry.
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Given up: every attempt failed, or the failure cannot be retried.
    Failed,
}

stored_words!(NotificationDeliveryStatus {
    Pending => "pending", Delivered => "delivered", Failed => "failed",
} else Pending);

/// Something a provider can be asked to do to a resource (`performResourceAction`); which ones
/// a resource supports depends on its provider and kind (`Resource.availableActions`).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceAction {
    /// Restart a server (DigitalOcean droplets, Linode instances).
    Reboot,
    /// Stop a server (DigitalOcean `power_off`, Linode `shutdown`).
    PowerOff,
    /// Start a stopped server (DigitalOcean `power_on`, Linode `boot`).
    PowerOn,
    /// Deploy a web service's latest deployment again, to production (Vercel projects).
    Redeploy,
    /// Empty a site's or a zone's cache (GridPane sites, Cloudflare zones).
    PurgeCache,
}

impl From<crate::sync::Action> for ResourceAction {
    fn from(action: crate::sync::Action) -> Self {
        use crate::sync::Action;
        match action {
            Action::Reboot => Self::Reboot,
            Action::PowerOff => Self::PowerOff,
            Action::PowerOn => Self::PowerOn,
            Action::Redeploy => Self::Redeploy,
            Action::PurgeCache => Self::PurgeCache,
        }
    }
}

impl From<ResourceAction> for crate::sync::Action {
    fn from(action: ResourceAction) -> Self {
        use crate::sync::Action;
        match action {
            ResourceAction::Reboot => Action::Reboot,
            ResourceAction::PowerOff => Action::PowerOff,
            ResourceAction::PowerOn => Action::PowerOn,
            ResourceAction::Redeploy => Action::Redeploy,
            ResourceAction::PurgeCache => Action::PurgeCache,
        }
    }
}

/// Where a provider action run stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ActionRunStatus {
    /// Sent, or being sent, to the provider.
    Running,
    /// The provider accepted it (it may still be carrying it out: a reboot takes a while).
    Succeeded,
    /// The provider refused it or could not be reached; `summary` says why.
    Failed,
}

stored_words!(ActionRunStatus {
    Running => "running", Succeeded => "succeeded", Failed => "failed",
} else Failed);
