//! Reading wasmCloud config and secrets maps, whose keys deployers spell in any case.

use std::collections::HashMap;

/// The value of `key`, matched case-insensitively (`URI`, `uri` and `Uri` are one key).
pub fn lookup<'a, V>(map: &'a HashMap<String, V>, key: &str) -> Option<&'a V> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// A trimmed, non-empty value of `key`.
pub fn text(map: &HashMap<String, String>, key: &str) -> Option<String> {
    lookup(map, key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A whole number under `key`, if set; an error names the key and the bad value.
pub fn number(map: &HashMap<String, String>, key: &str) -> Result<Option<u64>, String> {
    text(map, key).map(|v| v.parse::<u64>().map_err(|_| format!("`{key}` must be a whole number, got `{v}`"))).transpose()
}

/// A comma-separated list of milliseconds under `key` (a backoff), if set.
pub fn millis_list(map: &HashMap<String, String>, key: &str) -> Result<Option<Vec<std::time::Duration>>, String> {
    let Some(v) = text(map, key) else { return Ok(None) };
    v.split(',')
        .map(|d| d.trim().parse::<u64>().map(std::time::Duration::from_millis))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|_| format!("`{key}` must be a comma-separated list of milliseconds, got `{v}`"))
}

/// A connection URL with any password replaced, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redacted("mongodb://user:secret@host:27017/db"), "mongodb://user:***@host:27017/db");
        assert_eq!(redacted("redis://:secret@r:1"), "redis://:***@r:1");
        assert_eq!(redacted("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn numbers_and_lists() {
        let map = HashMap::from([("n".to_string(), " 42 ".to_string()), ("bad".into(), "x".into()), ("l".into(), "10, 20".into())]);
        assert_eq!(number(&map, "n"), Ok(Some(42)));
        assert_eq!(number(&map, "missing"), Ok(None));
        assert!(number(&map, "bad").unwrap_err().contains("`bad`"));
        assert_eq!(millis_list(&map, "l").unwrap().unwrap(), vec![std::time::Duration::from_millis(10), std::time::Duration::from_millis(20)]);
        assert!(millis_list(&map, "bad").is_err());
    }

    #[test]
    fn keys_match_in_any_case() {
        let map = HashMap::from([("URI".to_string(), 1)]);
        assert_eq!(lookup(&map, "uri"), Some(&1));
        assert_eq!(lookup(&map, "url"), None);
    }
}
