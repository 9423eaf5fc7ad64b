//! Reading wasmCloud config and secrets maps, whose keys deployers spell in any case.

use std::collections::HashMap;

/// The value of `key`, matched case-insensitively (`URI`, `uri` and `Uri` are one key).
pub fn lookup<'a, V>(map: &'a HashMap<String, V>, key: &str) -> Option<&'a V> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_in_any_case() {
        let map = HashMap::from([("URI".to_string(), 1)]);
        assert_eq!(lookup(&map, "uri"), Some(&1));
        assert_eq!(lookup(&map, "url"), None);
    }
}
