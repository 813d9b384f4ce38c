//! Areas and levels of access (DESIGN §3): `none < read < full` per area.

use serde_json::Value;

/// The areas a role grants access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Projects,
    Resources,
    Docks,
    Operations,
    Settings,
    Audit,
    Monitoring,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Projects => "projects",
            Area::Resources => "resources",
            Area::Docks => "docks",
            Area::Operations => "operations",
            Area::Settings => "settings",
            Area::Audit => "audit",
            Area::Monitoring => "monitoring",
        }
    }
}

/// A level of access; `Full` implies `Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Read,
    Full,
}

/// A role's permission document, e.g. `{"projects": "full", "resources": "read"}`.
#[derive(Clone, Debug, Default)]
pub struct Permissions(pub Value);

impl Permissions {
    /// Every area at full (platform admins).
    pub fn all() -> Self {
        Self(serde_json::json!({
            "projects": "full", "resources": "full", "docks": "full", "operations": "full",
            "settings": "full", "audit": "full", "monitoring": "full"
        }))
    }

    /// Read (only) in the given areas.
    pub fn read_only(areas: &[Area]) -> Self {
        Self(Value::Object(
            areas
                .iter()
                .map(|a| (a.as_str().to_owned(), Value::from("read")))
                .collect(),
        ))
    }

    /// The higher level of the two documents in every area.
    pub fn merge(&self, other: &Permissions) -> Permissions {
        let word = |level: Level| match level {
            Level::Full => Some("full"),
            Level::Read => Some("read"),
            Level::None => None,
        };
        let areas = [
            Area::Projects,
            Area::Resources,
            Area::Docks,
            Area::Operations,
            Area::Settings,
            Area::Audit,
            Area::Monitoring,
        ];
        let merged = areas
            .iter()
            .filter_map(|a| {
                Some((
                    a.as_str().to_owned(),
                    Value::from(word(self.level(*a).max(other.level(*a)))?),
                ))
            })
            .collect();
        Permissions(Value::Object(merged))
    }

    /// The level granted in `area`; a missing or unknown value is none.
    pub fn level(&self, area: Area) -> Level {
        match self.0.get(area.as_str()).and_then(Value::as_str) {
            Some("full") => Level::Full,
            Some("read") => Level::Read,
            _ => Level::None,
        }
    }

    /// True when the level in `area` is at least `wanted`.
    pub fn allows(&self, area: Area, wanted: Level) -> bool {
        self.level(area) >= wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_default_to_none() {
        let p = Permissions(
            serde_json::json!({ "projects": "full", "resources": "read", "docks": "bogus" }),
        );
        assert!(p.allows(Area::Projects, Level::Read));
        assert!(p.allows(Area::Resources, Level::Read));
        assert!(!p.allows(Area::Resources, Level::Full));
        assert_eq!(p.level(Area::Docks), Level::None);
        assert_eq!(p.level(Area::Audit), Level::None);
        assert!(Permissions::all().allows(Area::Settings, Level::Full));
    }
}
