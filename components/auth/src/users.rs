//! Users and their storage.
//!
//! Bucket `users` holds one document per user, keyed by e-mail (sign-in looks users up
//! by e-mail). Bucket `email_claims` makes sign-up of one e-mail race-free: keyvalue has
//! no compare-and-swap, but an atomic increment returns 1 to exactly one caller.

use serde::{Deserialize, Serialize};
use ticketing_common::store::{JsonStore, KeyValue, StoreResult};

pub const USERS: &str = "users";
pub const EMAIL_CLAIMS: &str = "email_claims";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: u64,
}

/// What clients see of a user.
#[derive(Debug, Serialize)]
pub struct PublicUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
}

impl User {
    pub fn public(&self) -> PublicUser<'_> {
        PublicUser { id: &self.id, email: &self.email }
    }
}

pub fn find_by_email(store: &impl KeyValue, email: &str) -> StoreResult<Option<User>> {
    store.get_json(USERS, email)
}

/// Outcome of trying to register a new user.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    EmailInUse,
}

/// Stores `user` unless its e-mail is taken, also against concurrent sign-ups.
pub fn create(store: &impl KeyValue, user: &User) -> StoreResult<Created> {
    if store.exists(USERS, &user.email)? {
        return Ok(Created::EmailInUse);
    }
    if !store.claim(EMAIL_CLAIMS, &user.email)? {
        return Ok(Created::EmailInUse);
    }
    if let Err(e) = store.set_json(USERS, &user.email, user) {
        // Give the e-mail back so that a retry can succeed.
        let _ = store.delete(EMAIL_CLAIMS, &user.email);
        return Err(e);
    }
    Ok(Created::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_common::store::MemoryStore;

    fn user(email: &str) -> User {
        User { id: "5ec00000abababababababab".into(), email: email.into(), password_hash: "h".into(), created_at: 1 }
    }

    #[test]
    fn an_email_registers_once() {
        let store = MemoryStore::default();
        assert_eq!(create(&store, &user("a@b.com")).unwrap(), Created::Yes);
        assert_eq!(create(&store, &user("a@b.com")).unwrap(), Created::EmailInUse);
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), Some(user("a@b.com")));
    }

    #[test]
    fn a_lost_claim_race_is_email_in_use_even_before_the_winner_stored_the_user() {
        let store = MemoryStore::default();
        store.increment(EMAIL_CLAIMS, "a@b.com", 1).unwrap(); // a concurrent winner, mid-way
        assert_eq!(create(&store, &user("a@b.com")).unwrap(), Created::EmailInUse);
        assert_eq!(find_by_email(&store, "a@b.com").unwrap(), None);
    }

    #[test]
    fn emails_are_case_sensitive_like_the_reference() {
        let store = MemoryStore::default();
        assert_eq!(create(&store, &user("a@b.com")).unwrap(), Created::Yes);
        assert_eq!(create(&store, &user("A@b.com")).unwrap(), Created::Yes);
    }
}
