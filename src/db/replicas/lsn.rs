//! WAL positions (`pg_lsn`): what a write's response carries, what a replica has replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A position in PostgreSQL's write-ahead log, as `pg_lsn` counts it (bytes since the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's text form, `X/Y`: two groups of 1 to 8 hexadecimal digits. Anything
    /// else (signs, spaces, longer groups, a zero position) is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.split_once('/')?;
        let group = |g: &str| {
            let valid = (1..=8).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| u32::from_str_radix(g, 16).ok()).flatten()
        };
        let lsn = (u64::from(group(high)?) << 32) | u64::from(group(low)?);
        (lsn != 0).then_some(Self(lsn))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A position that only moves forward, shared between tasks: the newest write a caller made,
/// or the newest commit whose event this replica has received.
#[derive(Clone, Debug, Default)]
pub struct Watermark(Arc<AtomicU64>);

impl Watermark {
    /// Starts at `lsn` (none: the start of the log).
    pub fn at(lsn: Option<Lsn>) -> Self {
        Self(Arc::new(AtomicU64::new(lsn.map_or(0, |l| l.0))))
    }

    /// The position reached so far; `None` before any.
    pub fn get(&self) -> Option<Lsn> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            lsn => Some(Lsn(lsn)),
        }
    }

    /// Moves to `lsn` unless already past it.
    pub fn advance(&self, lsn: Lsn) {
        self.0.fetch_max(lsn.0, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_in_postgres_text_form() {
        for text in ["0/16B3748", "1/0", "FFFFFFFF/FFFFFFFF", "A/B"] {
            let lsn = Lsn::parse(text).expect(text);
            assert_eq!(lsn.to_string(), text);
        }
        assert_eq!(Lsn::parse("0/16b3748"), Lsn::parse("0/16B3748"));
        assert!(Lsn::parse("1/0") > Lsn::parse("0/FFFFFFFF"));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "/",
            "0/",
            "/1",
            "0/0",
            "00000000/00000000",
            "1/2/3",
            "-1/2",
            "+1/2",
            " 1/2",
            "1/2 ",
            "123456789/0",
            "0/123456789",
            "g/1",
            "1",
            "0x1/2",
        ] {
            assert_eq!(Lsn::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_watermark_never_moves_back() {
        let mark = Watermark::at(None);
        assert_eq!(mark.get(), None);
        mark.advance(Lsn(10));
        mark.advance(Lsn(5));
        assert_eq!(mark.get(), Some(Lsn(10)));
    }
}
