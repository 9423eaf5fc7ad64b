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
