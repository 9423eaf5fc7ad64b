//! Entity ids: 24 lower-case hex characters, compatible with MongoDB ObjectIds
//! (4 bytes of seconds since the epoch, then 8 bytes). New ids spend the first two of
//! those 8 bytes on the millisecond, so ids sort by creation time to the millisecond:
//! lists ordered by id are newest first without storing a creation time.

use crate::error::ApiError;

/// Defines a typed id: a `String` on the wire and in the store (`serde(transparent)`),
/// but a type of its own in the code, so a ticket id can never be passed where an order
/// id belongs. It reads as a `&str` wherever one is expected (`Deref`).
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id (see [`new_id`]).
            pub fn generate() -> Self {
                Self(new_id())
            }

            /// An id taken from a client (a URL, a body): a malformed one is a 400.
            pub fn parse(text: &str) -> Result<Self, ApiError> {
                parse_id(text).map(|id| Self(id.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// An id from a trusted place (the store, an event, a verified session),
        /// taken as it is.
        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

typed_id!(
    /// A user's id (auth makes it at sign-up; sessions carry it).
    UserId
);
typed_id!(
    /// A ticket's id.
    TicketId
);
typed_id!(
    /// An order's id.
    OrderId
);

/// Builds an id from a timestamp and 8 random bytes (pure, so it is testable).
pub fn id_from_parts(unix_seconds: u64, random: [u8; 8]) -> String {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&(unix_seconds as u32).to_be_bytes());
    bytes[4..].copy_from_slice(&random);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An id made at `unix_millis`: seconds, milliseconds, 6 random bytes.
pub fn id_at(unix_millis: u64, random: [u8; 6]) -> String {
    let mut rest = [0u8; 8];
    rest[..2].copy_from_slice(&((unix_millis % 1000) as u16).to_be_bytes());
    rest[2..].copy_from_slice(&random);
    id_from_parts(unix_millis / 1000, rest)
}

/// A fresh id from the clock and the system's random source.
pub fn new_id() -> String {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("the system random source is always available");
    id_at(crate::time::Timestamp::now().millis(), random)
}

/// The id of the `n`-th thing of kind `kind` made for the record `parent` (an id): the
/// parent's timestamp, then 8 bytes of a SHA-256 of all three. The same inputs always give
/// the same id, so two requests that do the same work name it alike (a charge taken over
/// after a failure keeps its id, and with it its Stripe idempotency key).
pub fn derived_id(parent: &str, kind: &str, n: u64) -> String {
    use sha2::{Digest, Sha256};
    let seconds = u32::from_str_radix(parent.get(..8).unwrap_or(""), 16).unwrap_or(0);
    let hash = Sha256::new().chain_update(parent).chain_update([0]).chain_update(kind).chain_update(n.to_be_bytes()).finalize();
    let mut random = [0u8; 8];
    random.copy_from_slice(&hash[..8]);
    id_from_parts(u64::from(seconds), random)
}

pub fn is_valid_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks an id taken from a URL; a malformed one is a 400 (never a 500 or a 404).
pub fn parse_id(s: &str) -> Result<&str, ApiError> {
    if is_valid_id(s) {
        Ok(s)
    } else {
        Err(ApiError::bad_request("Invalid id: expected 24 hexadecimal characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_valid_and_distinct() {
        let parent = "5ec00000aaaaaaaaaaaaaaaa";
        let id = derived_id(parent, "charge", 0);
        assert!(is_valid_id(&id), "{id}");
        assert_eq!(&id[..8], "5ec00000", "the parent's creation time");
        assert_eq!(id, derived_id(parent, "charge", 0));
        assert_ne!(id, derived_id(parent, "charge", 1));
        assert_ne!(id, derived_id(parent, "refund", 0));
        assert_ne!(id, derived_id("5ec00000bbbbbbbbbbbbbbbb", "charge", 0));
        assert!(is_valid_id(&derived_id("nope", "charge", 0)));
    }

    #[test]
    fn ids_are_24_hex_and_start_with_the_timestamp() {
        let id = id_from_parts(0x5e_c0_00_00, [0xab; 8]);
        assert_eq!(id, "5ec00000abababababababab");
        assert!(is_valid_id(&id));
    }

    #[test]
    fn ids_sort_by_creation_time_to_the_millisecond() {
        let (low, high) = ([0xff; 6], [0x00; 6]);
        assert_eq!(id_at(1_795_428_900_123, [0; 6]), "6b041224007b000000000000");
        assert!(id_at(1_795_428_900_001, low) < id_at(1_795_428_900_002, high), "random bytes never outweigh a millisecond");
        assert!(id_at(1_795_428_900_999, low) < id_at(1_795_428_901_000, high));
        assert!(is_valid_id(&id_at(1_795_428_900_999, low)));
    }

    #[test]
    fn fresh_ids_differ() {
        let (a, b) = (new_id(), new_id());
        assert!(is_valid_id(&a) && is_valid_id(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn typed_ids_are_strings_on_the_wire_and_checked_from_clients() {
        let id = TicketId::generate();
        assert!(is_valid_id(&id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TicketId>(&format!("\"{id}\"")).unwrap(), id);
        assert_eq!(TicketId::parse(id.as_str()).unwrap(), id);
        assert_eq!(OrderId::parse("nope").unwrap_err().status, 400);
        assert!(UserId::from("u1") == "u1");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "abc", "5ec00000abababababababaZ", "5EC00000ABABABABABABABAB", "5ec00000abababababababab0"] {
            assert!(!is_valid_id(bad), "{bad}");
            assert_eq!(parse_id(bad).unwrap_err().status, 400);
        }
    }
}
