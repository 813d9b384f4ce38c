//! Areas and levels of access (docs/security.md): `none < read < full` per area.

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
    /// Every area, in the order documents list them.
    pub const ALL: [Area; 7] = [
        Area::Projects,
        Area::Resources,
        Area::Docks,
        Area::Operations,
        Area::Settings,
        Area::Audit,
        Area::Monitoring,
    ];

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
        Self::at(&Area::ALL, "full")
    }

    /// Read (only) in the given areas.
    pub fn read_only(areas: &[Area]) -> Self {
        Self::at(areas, "read")
    }

    /// `level` (`"read"` or `"full"`) in each of `areas`, none elsewhere.
    fn at(areas: &[Area], level: &str) -> Self {
        Self(Value::Object(
            areas
                .iter()
                .map(|a| (a.as_str().to_owned(), Value::from(level)))
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
        let merged = Area::ALL
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

    /// The first area where this document grants more than `own`: nobody hands out a level
    /// above their own (see docs/security.md, role hierarchy).
    pub fn exceeding(&self, own: &Permissions) -> Option<Area> {
        Area::ALL
            .into_iter()
            .find(|area| self.level(*area) > own.level(*area))
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

    #[test]
    fn a_document_exceeds_another_in_its_first_higher_area() {
        let admin = Permissions::all();
        let member = Permissions(serde_json::json!({ "projects": "full", "docks": "read" }));
        assert_eq!(member.exceeding(&admin), None);
        assert_eq!(member.exceeding(&member), None);
        assert_eq!(admin.exceeding(&member), Some(Area::Resources));
        let docks = Permissions(serde_json::json!({ "docks": "full" }));
        assert_eq!(docks.exceeding(&member), Some(Area::Docks));
        assert_eq!(
            Permissions::default().exceeding(&Permissions::default()),
            None
        );
    }
}
