//! Entity ids: 24 lower-case hex characters, compatible with MongoDB ObjectIds
//! (4 bytes of seconds since the epoch, then 8 bytes). New ids spend the first two of
//! those 8 bytes on the millisecond, so ids sort by creation time to the millisecond:
//! lists ordered by id are newest first without storing a creation time.

use crate::error::ApiError;

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
    id_at(crate::time::now_millis(), random)
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
    fn malformed_ids_are_rejected() {
        for bad in ["", "abc", "5ec00000abababababababaZ", "5EC00000ABABABABABABABAB", "5ec00000abababababababab0"] {
            assert!(!is_valid_id(bad), "{bad}");
            assert_eq!(parse_id(bad).unwrap_err().status, 400);
        }
    }
}
