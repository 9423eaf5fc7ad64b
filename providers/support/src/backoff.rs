//! The providers' retry rules, so that every retry in the lattice waits the same way.
//!
//! - [`delay_after`]: a configured list of delays (`backoff_ms` in the messaging,
//!   scheduler and Stripe providers' config): the first failure waits the first delay,
//!   the second the second, and the last delay repeats for ever after.
//! - [`Doubling`]: a pause that doubles while something keeps failing, up to a cap (a
//!   component with no instance yet, NATS away from the outbox relay).

use std::time::Duration;

/// The delay before the next attempt after `failures` failed ones: `delays[failures - 1]`,
/// or the last delay once the list has run out. `failures` 0 counts as 1 (a count that
/// never went up still waits the first delay). `None` when there are no delays; each
/// caller chooses its own fallback.
pub fn delay_after(delays: &[Duration], failures: u64) -> Option<Duration> {
    let index = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
    delays.get(index).or(delays.last()).copied()
}

/// A pause that starts at `first`, doubles each time it is used, and stays at `max`
/// once it gets there. `first` itself is not capped: a cap below it only applies from
/// the second pause on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doubling {
    first: Duration,
    current: Duration,
    max: Duration,
}

impl Doubling {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, current: first, max }
    }

    /// The pause to wait now.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// Doubles the pause (up to the cap), for after another failure.
    pub fn double(&mut self) {
        self.current = (self.current * 2).min(self.max);
    }

    /// Back to the first pause, for after a success.
    pub fn reset(&mut self) {
        self.current = self.first;
    }

    /// The pause to wait now; the next one is twice as long (up to the cap).
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.current;
        self.double();
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_follow_the_list_and_repeat_the_last() {
        let delays = [ms(500), ms(1000), ms(5000)];
        assert_eq!(delay_after(&delays, 1), Some(ms(500)));
        assert_eq!(delay_after(&delays, 2), Some(ms(1000)));
        assert_eq!(delay_after(&delays, 3), Some(ms(5000)));
        assert_eq!(delay_after(&delays, 40), Some(ms(5000)));
        assert_eq!(delay_after(&delays, u64::MAX), Some(ms(5000)));
    }

    #[test]
    fn no_failure_yet_waits_the_first_delay_and_no_list_has_no_delay() {
        assert_eq!(delay_after(&[ms(7), ms(9)], 0), Some(ms(7)));
        assert_eq!(delay_after(&[], 1), None);
        assert_eq!(delay_after(&[], 0), None);
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut pauses = Doubling::new(ms(20), ms(250));
        let seen: Vec<_> = (0..6).map(|_| pauses.next_pause()).collect();
        assert_eq!(seen, [ms(20), ms(40), ms(80), ms(160), ms(250), ms(250)]);
    }

    #[test]
    fn a_cap_below_the_first_pause_applies_from_the_second() {
        let mut pauses = Doubling::new(ms(100), ms(50));
        assert_eq!(pauses.next_pause(), ms(100));
        assert_eq!(pauses.next_pause(), ms(50));
        assert_eq!(pauses.next_pause(), ms(50));
    }

    #[test]
    fn a_reset_starts_over() {
        let mut pauses = Doubling::new(ms(2000), ms(30_000));
        pauses.double();
        pauses.double();
        assert_eq!(pauses.current(), ms(8000));
        pauses.reset();
        assert_eq!(pauses.current(), ms(2000));
    }
}
