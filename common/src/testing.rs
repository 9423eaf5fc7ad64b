//! Fixtures for the services' unit tests (tiny, so it ships in the library).

/// A signing key for tests only; deployments get theirs from config.
pub const TEST_KEY: &str = "a-test-key-that-is-long-enough-for-hs256";
/// Three valid ids: two users and one that exists nowhere.
pub const ALICE: &str = "5ec00000aaaaaaaaaaaaaaaa";
pub const BOB: &str = "5ec00000bbbbbbbbbbbbbbbb";
pub const NOWHERE: &str = "5ec00000cccccccccccccccc";
