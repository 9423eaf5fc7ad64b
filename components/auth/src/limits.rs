//! Rate limits on sign-in and sign-up, so that passwords cannot be guessed and accounts
//! cannot be mass-created at full speed.
//!
//! Counted per fixed window of time, in the keyvalue store (bucket `rate_limits`), so
//! every instance on every host shares the counts: one counter per (kind, subject,
//! window), bumped with the atomic increment. When a window's first count is made, the
//! previous window's counter of that subject is deleted, so keys do not pile up for
//! subjects that come back (those that never do leave one key behind).
//!
//! - sign-in **failures** per account (normalised e-mail) and per client address: once
//!   either has reached its limit, sign-in is refused (even with the right password)
//!   until the window ends; a correct password works again after that.
//! - sign-up **attempts** per client address: any attempt counts, refused once over.

use ticketing_common::store::{JsonStore, KeyValue, StoreResult};
use ticketing_common::time::Timestamp;

pub const BUCKET: &str = "rate_limits";

/// At most `max` counts per window of `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub max: u64,
    pub window_seconds: u64,
}

/// The limits of a deployment: config `auth-limits` in wadm.yaml, these defaults otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub signin_failures_per_account: Rule,
    pub signin_failures_per_address: Rule,
    pub signups_per_address: Rule,
}

impl Default for Limits {
    /// Production defaults: a person who mistypes is not stopped, a guesser is stopped
    /// after a handful of tries; sign-ups stay generous because many users can share one
    /// address (a NAT, a load test from 127.0.0.1).
    fn default() -> Self {
        Self {
            signin_failures_per_account: Rule { max: 5, window_seconds: 15 * 60 },
            signin_failures_per_address: Rule { max: 50, window_seconds: 15 * 60 },
            signups_per_address: Rule { max: 500, window_seconds: 10 * 60 },
        }
    }
}

impl Limits {
    /// The limits from config values found by `lookup` (config keys
    /// `signin_failures_per_account`, `signin_failures_per_address`, `signin_window_seconds`,
    /// `signups_per_address`, `signup_window_seconds`); a value that is absent, zero or not
    /// a whole number keeps its default.
    pub fn from_config(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let number = |key: &str, default: u64| {
            lookup(key).and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > 0).unwrap_or(default)
        };
        let d = Self::default();
        let signin_window = number("signin_window_seconds", d.signin_failures_per_account.window_seconds);
        Self {
            signin_failures_per_account: Rule {
                max: number("signin_failures_per_account", d.signin_failures_per_account.max),
                window_seconds: signin_window,
            },
            signin_failures_per_address: Rule {
                max: number("signin_failures_per_address", d.signin_failures_per_address.max),
                window_seconds: signin_window,
            },
            signups_per_address: Rule {
                max: number("signups_per_address", d.signups_per_address.max),
                window_seconds: number("signup_window_seconds", d.signups_per_address.window_seconds),
            },
        }
    }
}

/// Refused: too many attempts; try again in `retry_after` seconds (when the window ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after: u64,
}

/// One subject's counter of one kind under a rule.
struct Counter<'a> {
    kind: &'static str,
    subject: &'a str,
    rule: Rule,
}

impl Counter<'_> {
    fn window(&self, now: u64) -> u64 {
        now / self.rule.window_seconds
    }

    /// The window's length is part of the key, so that changing it in config never
    /// mixes counts of windows of another length.
    fn key(&self, window: u64) -> String {
        format!("{}:{}s:{}:{}", self.kind, self.rule.window_seconds, window, self.subject)
    }

    fn blocked(&self, now: u64) -> Blocked {
        let ends = (self.window(now) + 1) * self.rule.window_seconds;
        Blocked { retry_after: ends.saturating_sub(now).max(1) }
    }

    /// Blocked once the current window's count has reached the limit.
    fn check(&self, store: &impl KeyValue, now: u64) -> StoreResult<Option<Blocked>> {
        let count = store.counter(BUCKET, &self.key(self.window(now)))?;
        Ok((count >= self.rule.max).then(|| self.blocked(now)))
    }

    /// Counts one; blocked when that goes over the limit.
    fn add(&self, store: &impl KeyValue, now: u64) -> StoreResult<Option<Blocked>> {
        let window = self.window(now);
        let count = store.increment(BUCKET, &self.key(window), 1)?;
        if count == 1 && window > 0 {
            // Best effort: a leftover key is harmless, it is never read again.
            let _ = store.delete(BUCKET, &self.key(window - 1));
        }
        Ok((count > self.rule.max).then(|| self.blocked(now)))
    }
}

/// The later of two refusals (the client must wait for both).
fn later(a: Option<Blocked>, b: Option<Blocked>) -> Option<Blocked> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.retry_after >= b.retry_after { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The limits applied to one request at time `now` (seconds).
pub struct Limiter<'a, S: KeyValue> {
    pub store: &'a S,
    pub limits: &'a Limits,
    pub now: Timestamp,
}

impl<S: KeyValue> Limiter<'_, S> {
    fn signin_counters<'s>(&self, account: &'s str, address: &'s str) -> [Counter<'s>; 2] {
        [
            Counter { kind: "signin-account", subject: account, rule: self.limits.signin_failures_per_account },
            Counter { kind: "signin-address", subject: address, rule: self.limits.signin_failures_per_address },
        ]
    }

    /// Before a password is checked: refused while the account or the address has used
    /// up its failures. (Concurrent guesses that all pass this check before any is counted
    /// can overshoot the limit by the number in flight; the next ones are refused.)
    pub fn check_signin(&self, account: &str, address: &str) -> StoreResult<Option<Blocked>> {
        let [a, b] = self.signin_counters(account, address);
        Ok(later(a.check(self.store, self.now.seconds())?, b.check(self.store, self.now.seconds())?))
    }

    /// After a failed sign-in (unknown account or wrong password).
    pub fn signin_failed(&self, account: &str, address: &str) -> StoreResult<()> {
        for counter in self.signin_counters(account, address) {
            counter.add(self.store, self.now.seconds())?;
        }
        Ok(())
    }

    /// Counts a sign-up attempt from `address`; refused once over the limit.
    pub fn signup_attempt(&self, address: &str) -> StoreResult<Option<Blocked>> {
        Counter { kind: "signup-address", subject: address, rule: self.limits.signups_per_address }.add(self.store, self.now.seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use ticketing_common::store::MemoryStore;

    const T0: u64 = 1_800_000_000; // a multiple of 900 and 600: a window starts here

    fn limits() -> Limits {
        Limits {
            signin_failures_per_account: Rule { max: 3, window_seconds: 60 },
            signin_failures_per_address: Rule { max: 5, window_seconds: 60 },
            signups_per_address: Rule { max: 2, window_seconds: 30 },
        }
    }

    fn at<'a>(store: &'a MemoryStore, limits: &'a Limits, now: u64) -> Limiter<'a, MemoryStore> {
        Limiter { store, limits, now: Timestamp::from_seconds(now) }
    }

    #[test]
    fn an_account_is_refused_after_its_failures_until_the_window_ends() {
        let (store, limits) = (MemoryStore::default(), limits());
        for i in 0..3 {
            let l = at(&store, &limits, T0 + i);
            assert_eq!(l.check_signin("a@b.com", "1.2.3.4").unwrap(), None, "failure {i} is still allowed");
            l.signin_failed("a@b.com", "1.2.3.4").unwrap();
        }
        assert_eq!(at(&store, &limits, T0 + 10).check_signin("a@b.com", "1.2.3.4").unwrap(), Some(Blocked { retry_after: 50 }));
        assert_eq!(at(&store, &limits, T0 + 59).check_signin("a@b.com", "9.9.9.9").unwrap(), Some(Blocked { retry_after: 1 }), "from any address");
        assert_eq!(at(&store, &limits, T0 + 10).check_signin("other@b.com", "1.2.3.4").unwrap(), None, "other accounts are not affected");
        assert_eq!(at(&store, &limits, T0 + 60).check_signin("a@b.com", "1.2.3.4").unwrap(), None, "the next window starts afresh");
    }

    #[test]
    fn an_address_is_refused_after_failures_on_many_accounts() {
        let (store, limits) = (MemoryStore::default(), limits());
        let l = at(&store, &limits, T0 + 30);
        for i in 0..5 {
            assert_eq!(l.check_signin(&format!("user{i}@b.com"), "1.2.3.4").unwrap(), None);
            l.signin_failed(&format!("user{i}@b.com"), "1.2.3.4").unwrap();
        }
        assert_eq!(l.check_signin("fresh@b.com", "1.2.3.4").unwrap(), Some(Blocked { retry_after: 30 }));
        assert_eq!(l.check_signin("fresh@b.com", "5.6.7.8").unwrap(), None, "other addresses are not affected");
    }

    #[test]
    fn the_later_end_wins_when_both_are_blocked() {
        let mut limits = limits();
        limits.signin_failures_per_address = Rule { max: 1, window_seconds: 600 };
        let store = MemoryStore::default();
        let l = at(&store, &limits, T0 + 100);
        for _ in 0..3 {
            l.signin_failed("a@b.com", "1.2.3.4").unwrap();
        }
        assert_eq!(l.check_signin("a@b.com", "1.2.3.4").unwrap(), Some(Blocked { retry_after: 500 }));
    }

    #[test]
    fn signups_are_counted_per_address_and_refused_over_the_limit() {
        let (store, limits) = (MemoryStore::default(), limits());
        let l = at(&store, &limits, T0 + 5);
        assert_eq!(l.signup_attempt("1.2.3.4").unwrap(), None);
        assert_eq!(l.signup_attempt("1.2.3.4").unwrap(), None);
        assert_eq!(l.signup_attempt("1.2.3.4").unwrap(), Some(Blocked { retry_after: 25 }));
        assert_eq!(l.signup_attempt("5.6.7.8").unwrap(), None);
        assert_eq!(at(&store, &limits, T0 + 30).signup_attempt("1.2.3.4").unwrap(), None);
    }

    #[test]
    fn a_new_window_deletes_the_previous_windows_counter() {
        let (store, limits) = (MemoryStore::default(), limits());
        at(&store, &limits, T0).signup_attempt("1.2.3.4").unwrap();
        at(&store, &limits, T0).signin_failed("a@b.com", "1.2.3.4").unwrap();
        assert_eq!(store.list_keys(BUCKET).unwrap().len(), 3);
        at(&store, &limits, T0 + 30).signup_attempt("1.2.3.4").unwrap();
        at(&store, &limits, T0 + 60).signin_failed("a@b.com", "1.2.3.4").unwrap();
        let keys = store.list_keys(BUCKET).unwrap();
        let window = T0 / 60 + 1;
        assert_eq!(
            keys,
            vec![
                format!("signin-account:60s:{window}:a@b.com"),
                format!("signin-address:60s:{window}:1.2.3.4"),
                format!("signup-address:30s:{}:1.2.3.4", T0 / 30 + 1),
            ]
        );
    }

    #[test]
    fn a_changed_window_length_starts_new_counts() {
        let store = MemoryStore::default();
        let short = limits();
        for _ in 0..3 {
            at(&store, &short, T0).signin_failed("a@b.com", "x").unwrap();
        }
        let long = Limits::default();
        assert_eq!(at(&store, &long, T0).check_signin("a@b.com", "x").unwrap(), None);
    }

    #[test]
    fn config_overrides_defaults_and_bad_values_keep_them() {
        assert_eq!(Limits::from_config(|_| None), Limits::default());
        let config = HashMap::from([
            ("signin_failures_per_account", " 3 "),
            ("signin_failures_per_address", "0"),
            ("signin_window_seconds", "10"),
            ("signups_per_address", "lots"),
            ("signup_window_seconds", "20"),
        ]);
        let limits = Limits::from_config(|k| config.get(k).map(|v| v.to_string()));
        assert_eq!(limits.signin_failures_per_account, Rule { max: 3, window_seconds: 10 });
        assert_eq!(limits.signin_failures_per_address, Rule { max: 50, window_seconds: 10 });
        assert_eq!(limits.signups_per_address, Rule { max: 500, window_seconds: 20 });
    }

    #[test]
    fn a_store_outage_is_an_error_not_a_pass() {
        let (store, limits) = (MemoryStore::default(), limits());
        store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        let l = at(&store, &limits, T0);
        assert!(l.check_signin("a@b.com", "x").is_err());
        assert!(l.signin_failed("a@b.com", "x").is_err());
        assert!(l.signup_attempt("x").is_err());
    }
}
