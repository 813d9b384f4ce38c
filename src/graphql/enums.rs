//! The contract's enums and their stored words.

use async_graphql::Enum;

use crate::db::models::resource::Kind;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Server,
    WebService,
    Domain,
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

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResourceStatus {
    Active,
    Provisioning,
    Stopped,
    Error,
    Deleted,
    Unknown,
}

stored_words!(ResourceStatus {
    Active => "active", Provisioning => "provisioning", Stopped => "stopped",
    Error => "error", Deleted => "deleted", Unknown => "unknown",
} else Unknown);

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Degraded,
    Unhealthy,
    Unknown,
}

stored_words!(HealthState {
    Healthy => "healthy", Degraded => "degraded", Unhealthy => "unhealthy", Unknown => "unknown",
} else Unknown);

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    Pending,
    Syncing,
    Success,
    Error,
}

stored_words!(SyncStatus {
    Pending => "pending", Syncing => "syncing", Success => "success", Error => "error",
} else Pending);

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccessLevel {
    None,
    Read,
    Full,
}

/// Stored words of a list of enum values (for filters).
pub fn words<T: Copy>(values: &[T], word: impl Fn(T) -> &'static str) -> Vec<String> {
    values.iter().map(|v| word(*v).to_owned()).collect()
}
