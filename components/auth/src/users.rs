//! Users and their storage.
//!
//! Bucket `users` holds one document per user, keyed by e-mail (sign-in looks users up
//! by e-mail). Bucket `email_claims` makes sign-up of one e-mail race-free: keyvalue has
//! no compare-and-swap, but an atomic increment returns 1 to exactly one caller. The
//! claim is a [`lease`]: a sign-up that claimed an address and then failed before
//! storing its user (a store outage between the two writes) gives the address back, or,
//! if even that fails, another sign-up takes it over after [`ABANDONED_AFTER_MS`]. Until
//! then the address has no account: sign-in finds no user.
//!
//! One address is one account whatever its case: e-mails are stored and looked up in
//! their normalised form ([`Email::normalise`]). Users stored before that (under the form they typed, in
//! any case) are still found under that form, and nobody can sign up again with it.

use serde::{Deserialize, Serialize};
use ticketing_common::api::UserView;
use ticketing_common::ids::UserId;
use ticketing_common::lease::{self, Lease};
use ticketing_common::time::Timestamp;
use ticketing_common::validate::Email;
use ticketing_common::store::{JsonStore, KeyValue, StoreResult};

pub const USERS: &str = "users";
pub const EMAIL_CLAIMS: &str = "email_claims";
/// How long a claim without its user blocks the address: its holder stores the user
/// right after claiming, so a claim this old without one was abandoned.
pub const ABANDONED_AFTER_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    #[serde(with = "ticketing_common::time::as_seconds")]
    pub created_at: Timestamp,
}

impl User {
    /// What clients see of a user.
    pub fn view(&self) -> UserView {
        UserView { id: self.id.clone(), email: self.email.clone() }
    }
}

/// The keys a user typing `email` may be stored under: the normalised form, then the
/// form as typed, which is how users were stored before e-mails were normalised.
fn stored_forms(email: &str) -> Vec<String> {
    let normalised = Email::normalise(email).as_str().to_string();
    let typed = email.trim();
    if typed == normalised {
        vec![normalised]
    } else {
        vec![normalised, typed.to_string()]
    }
}

/// The user who signed up with `email`, in any case.
pub fn find_by_email(store: &impl KeyValue, email: &str) -> StoreResult<Option<User>> {
    for key in stored_forms(email) {
        if let Some(user) = store.get_json(USERS, &key)? {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// Outcome of trying to register a new user.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    EmailInUse,
}

/// Stores `user` for a client who typed the e-mail `typed` (`user.email` is its
/// normalised form) unless the address is taken, in either form, also against
/// concurrent sign-ups; takes over a claim whose sign-up was abandoned half-way.
pub fn create(store: &impl KeyValue, user: &User, typed: &str, now: Timestamp) -> StoreResult<Created> {
    debug_assert_eq!(user.email, Email::normalise(typed));
    if has_user(store, typed)? {
        return Ok(Created::EmailInUse);
    }
    let generation = match lease::take(store, EMAIL_CLAIMS, &user.email, now)? {
        Lease::Won { generation } => generation,
        held @ Lease::Held { generation, .. } => {
            // Another sign-up is storing its user, or failed to: wait until it is abandoned.
            if !held.held_longer_than(ABANDONED_AFTER_MS, now) || has_user(store, typed)? {
                return Ok(Created::EmailInUse);
            }
            match lease::take_over(store, EMAIL_CLAIMS, &user.email, generation, now)? {
                Lease::Won { generation } => generation,
                Lease::Held { .. } => return Ok(Created::EmailInUse),
            }
        }
    };
    if let Err(e) = store.set_json(USERS, &user.email, user) {
        // Give the e-mail back so that a retry can succeed at once.
        let _ = lease::release(store, EMAIL_CLAIMS, &user.email, generation);
        return Err(e);
    }
    Ok(Created::Yes)
}

/// Whether a user is stored under any form of `typed`.
fn has_user(store: &impl KeyValue, typed: &str) -> StoreResult<bool> {
    for key in stored_forms(typed) {
        if store.exists(USERS, &key)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::store::MemoryStore;
    use ticketing_common::testing::FlakyStore;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn user(email: &str) -> User {
        User { id: "5ec00000abababababababab".into(), email: email.into(), password_hash: "h".into(), created_at: Timestamp::from_seconds(1) }
    }

    /// Signs up as a client typing `typed` would.
    fn sign_up(store: &MemoryStore, typed: &str) -> Created {
        create(store, &user(&Email::normalise(typed)), typed, NOW).unwrap()
    }

    #[test]
    fn normalising_trims_and_lowercases() {
        assert_eq!(Email::normalise("  UPPER@Test.COM "), "upper@test.com");
        assert_eq!(Email::normalise("Ünïcode@Exämple.DE"), "ünïcode@exämple.de");
        assert_eq!(Email::normalise("a@b.com"), "a@b.com");
    }

    #[test]
    fn an_email_registers_once() {
        let store = MemoryStore::default();
        assert_eq!(sign_up(&store, "a@b.com"), Created::Yes);
        assert_eq!(sign_up(&store, "a@b.com"), Created::EmailInUse);
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), Some(user("a@b.com")));
    }

    #[test]
    fn a_lost_claim_race_is_email_in_use_even_before_the_winner_stored_the_user() {
        let store = MemoryStore::default();
        lease::take(&store, EMAIL_CLAIMS, "a@b.com", Timestamp::from_millis(NOW.millis() - 1000)).unwrap(); // a concurrent winner, mid-way
        assert_eq!(sign_up(&store, "A@B.com"), Created::EmailInUse, "claims are on the normalised form");
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), None);
    }

    #[test]
    fn an_abandoned_claim_is_taken_over_by_one_sign_up() {
        let store = MemoryStore::default();
        lease::take(&store, EMAIL_CLAIMS, "a@b.com", Timestamp::from_millis(NOW.millis() - ABANDONED_AFTER_MS)).unwrap(); // failed before storing its user
        let (first, second) = (user("a@b.com"), User { id: "5ec00000cdcdcdcdcdcdcdcd".into(), ..user("a@b.com") });
        assert_eq!(create(&store, &first, "a@b.com", NOW).unwrap(), Created::Yes);
        assert_eq!(create(&store, &second, "a@b.com", NOW).unwrap(), Created::EmailInUse);
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), Some(first));
    }

    #[test]
    fn a_claim_from_before_leases_without_its_user_is_taken_over() {
        let store = MemoryStore::default();
        store.increment(EMAIL_CLAIMS, "a@b.com", 1).unwrap(); // stuck since an old outage
        assert_eq!(sign_up(&store, "a@b.com"), Created::Yes);
        assert!(find_by_email(&store, "a@b.com").unwrap().is_some());
    }

    #[test]
    fn a_taken_over_claim_never_replaces_a_stored_user() {
        let store = MemoryStore::default();
        store.increment(EMAIL_CLAIMS, "a@b.com", 1).unwrap();
        store.set_json(USERS, "a@b.com", &user("a@b.com")).unwrap();
        let other = User { id: "5ec00000cdcdcdcdcdcdcdcd".into(), ..user("a@b.com") };
        assert_eq!(create(&store, &other, "a@b.com", NOW.plus_millis(ABANDONED_AFTER_MS)).unwrap(), Created::EmailInUse);
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), Some(user("a@b.com")));
    }

    /// An outage from any write of a sign-up on never leaves the address claimed without
    /// its user for good: once the store is back, signing up again succeeds (at once when
    /// the claim could be given back, else once it is abandoned).
    #[test]
    fn an_outage_at_any_write_never_leaves_the_address_unusable() {
        let probe = FlakyStore::default();
        create(&probe, &user("a@b.com"), "a@b.com", NOW).unwrap();
        let writes = probe.writes();
        assert_eq!(writes, 3, "lease time, claim, user");
        for n in 1..=writes {
            let store = FlakyStore::default();
            store.outage_from_write(n);
            assert!(create(&store, &user("a@b.com"), "a@b.com", NOW).is_err(), "write {n}");
            store.heal();
            assert_eq!(find_by_email(&store, "a@b.com").unwrap(), None, "write {n}: no account meanwhile");
            let at_once = create(&store, &user("a@b.com"), "a@b.com", NOW.plus_millis(1000)).unwrap();
            let expected = if n == 3 { Created::EmailInUse } else { Created::Yes };
            assert_eq!(at_once, expected, "write {n}: the claim could not be given back during the outage");
            if at_once == Created::EmailInUse {
                assert_eq!(create(&store, &user("a@b.com"), "a@b.com", NOW.plus_millis(1000 + ABANDONED_AFTER_MS)).unwrap(), Created::Yes);
            }
            assert_eq!(find_by_email(&store, "a@b.com").unwrap(), Some(user("a@b.com")), "write {n}");
        }
    }

    #[test]
    fn a_failed_user_write_gives_the_address_back_at_once() {
        let store = FlakyStore::default();
        store.fail_write(3);
        assert!(create(&store, &user("a@b.com"), "a@b.com", NOW).is_err());
        assert_eq!(create(&store, &user("a@b.com"), "a@b.com", NOW.plus_millis(1)).unwrap(), Created::Yes);
    }

    #[test]
    fn one_address_is_one_account_in_any_case() {
        let store = MemoryStore::default();
        assert_eq!(sign_up(&store, "UPPER@Test.com"), Created::Yes);
        assert_eq!(store.list_keys(USERS).unwrap(), vec!["upper@test.com"]);
        assert_eq!(sign_up(&store, "upper@test.com"), Created::EmailInUse);
        assert_eq!(sign_up(&store, " Upper@TEST.com "), Created::EmailInUse);
        for typed in ["upper@test.com", "UPPER@Test.com", " uPPer@test.COM"] {
            assert_eq!(find_by_email(&store, typed).unwrap().map(|u| u.email), Some("upper@test.com".into()), "{typed}");
        }
    }

    #[test]
    fn users_stored_before_normalising_keep_working() {
        let store = MemoryStore::default();
        let legacy = user("Old@Test.com");
        store.set_json(USERS, "Old@Test.com", &legacy).unwrap();
        store.increment(EMAIL_CLAIMS, "Old@Test.com", 1).unwrap();

        assert_eq!(find_by_email(&store, "Old@Test.com").unwrap(), Some(legacy.clone()), "the form as stored");
        assert_eq!(find_by_email(&store, " Old@Test.com ").unwrap(), Some(legacy));
        assert_eq!(sign_up(&store, "Old@Test.com"), Created::EmailInUse, "its exact form is taken");
        assert_eq!(store.list_keys(USERS).unwrap(), vec!["Old@Test.com"], "nothing stored");
    }
}
