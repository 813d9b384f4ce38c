//! Hysteresis: a resource's confirmed health changes only after N consecutive agreeing probes.
//!
//! The confirmed state is `health_state`; the streak (`health_streak_state`,
//! `health_streak_count`) counts consecutive probes that observed one other state. A probe that
//! agrees with the confirmed state clears the streak; one that observes a third state restarts
//! it. Pure and synchronous: the monitor stores what [`step`] returns.

/// A health state, as stored (`healthy`, `degraded`, `unhealthy`, `unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Healthy,
    Degraded,
    Unhealthy,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Degraded => "degraded",
            State::Unhealthy => "unhealthy",
            State::Unknown => "unknown",
        }
    }

    /// Reads a stored word; anything else is `Unknown`.
    pub fn parse(word: &str) -> State {
        match word {
            "healthy" => State::Healthy,
            "degraded" => State::Degraded,
            "unhealthy" => State::Unhealthy,
            _ => State::Unknown,
        }
    }

    /// How bad a state is, for combining observations (`Unknown` says nothing).
    fn badness(self) -> u8 {
        match self {
            State::Unknown => 0,
            State::Healthy => 1,
            State::Degraded => 2,
            State::Unhealthy => 3,
        }
    }

    /// The worse of two observations; `Unknown` yields to any real observation.
    pub fn worst(self, other: State) -> State {
        if other.badness() > self.badness() {
            other
        } else {
            self
        }
    }
}

/// Consecutive probes that observed a state other than the confirmed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streak {
    pub state: State,
    pub count: u32,
}

/// The confirmed state and streak after one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub confirmed: State,
    pub streak: Option<Streak>,
    /// The confirmed state before, when this probe changed it.
    pub transition: Option<State>,
}

/// Applies one observed state; `needed` (at least 1) agreeing probes confirm a change.
pub fn step(confirmed: State, streak: Option<Streak>, observed: State, needed: u32) -> Step {
    if observed == confirmed {
        return Step {
            confirmed,
            streak: None,
            transition: None,
        };
    }
    let count = match streak {
        Some(s) if s.state == observed => s.count.saturating_add(1),
        _ => 1,
    };
    if count >= needed.max(1) {
        return Step {
            confirmed: observed,
            streak: None,
            transition: Some(confirmed),
        };
    }
    Step {
        confirmed,
        streak: Some(Streak {
            state: observed,
            count,
        }),
        transition: None,
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    /// Feeds observations from `start` and returns the confirmed state after each.
    fn run(start: State, observed: &[State], needed: u32) -> Vec<State> {
        let (mut confirmed, mut streak) = (start, None);
        observed
            .iter()
            .map(|o| {
                let s = step(confirmed, streak, *o, needed);
                (confirmed, streak) = (s.confirmed, s.streak);
                confirmed
            })
            .collect()
    }

    #[test]
    fn a_change_needs_n_agreeing_probes() {
        assert_eq!(
            run(Unknown, &[Healthy, Healthy, Healthy], 2),
            [Unknown, Healthy, Healthy]
        );
        assert_eq!(
            run(Healthy, &[Unhealthy, Unhealthy, Unhealthy], 3),
            [Healthy, Healthy, Unhealthy]
        );
    }

    #[test]
    fn a_single_contrary_probe_flips_nothing() {
        assert_eq!(
            run(Healthy, &[Unhealthy, Healthy, Unhealthy, Healthy], 2),
            [Healthy; 4]
        );
    }

    #[test]
    fn a_third_state_restarts_the_streak() {
        assert_eq!(
            run(Healthy, &[Degraded, Unhealthy, Unhealthy], 2),
            [Healthy, Healthy, Unhealthy]
        );
    }

    #[test]
    fn the_transition_names_the_previous_state() {
        let first = step(Healthy, None, Degraded, 2);
        assert_eq!(first.transition, None);
        assert_eq!(
            first.streak,
            Some(Streak {
                state: Degraded,
                count: 1
            })
        );
        let second = step(Healthy, first.streak, Degraded, 2);
        assert_eq!(second.transition, Some(Healthy));
        assert_eq!((second.confirmed, second.streak), (Degraded, None));
    }

    #[test]
    fn n_of_one_or_zero_changes_at_once() {
        assert_eq!(run(Unknown, &[Degraded], 1), [Degraded]);
        assert_eq!(run(Unknown, &[Degraded], 0), [Degraded]);
    }

    #[test]
    fn worst_prefers_real_observations() {
        assert_eq!(Unknown.worst(Healthy), Healthy);
        assert_eq!(Healthy.worst(Unhealthy), Unhealthy);
        assert_eq!(Degraded.worst(Healthy), Degraded);
        assert_eq!(Healthy.worst(Unknown), Healthy);
    }
}
