//! Reading wasmCloud config and secrets maps, whose keys deployers spell in any case.
//!
//! Every provider reads its own keys with these, so that a key means the same to all of
//! them: matched in any case, trimmed, empty meaning unset, a credential taken from a
//! secret before config.

use std::collections::HashMap;

use wasmcloud_provider_sdk::core::secrets::SecretValue;

/// Where a provider reaches NATS when nothing else is known (wasmCloud's own default).
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The value of `key`, matched case-insensitively (`URI`, `uri` and `Uri` are one key).
pub fn lookup<'a, V>(map: &'a HashMap<String, V>, key: &str) -> Option<&'a V> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// A trimmed, non-empty value of `key`.
pub fn text(map: &HashMap<String, String>, key: &str) -> Option<String> {
    lookup(map, key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The secret `key` as text (a binary secret does not count), as given.
pub fn secret(secrets: &HashMap<String, SecretValue>, key: &str) -> Option<String> {
    lookup(secrets, key).and_then(|v| v.as_string().map(str::to_string))
}

/// A setting that may carry a credential (a URL with a password): the secret `key` first,
/// else the config's [`text`] under `key`. Credentials belong in wasmCloud secrets, which
/// are encrypted and kept out of config listings; plain config is accepted for local
/// development, so one deployment can use either without a second key name.
pub fn secret_or_config(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>, key: &str) -> Option<String> {
    secret(secrets, key).or_else(|| text(config, key))
}

/// The NATS a provider's own connection (its event streams) uses: the secret or config
/// `nats_url`, else `lattice` (the lattice's NATS, as the host told the provider), so
/// that events flow over the lattice's NATS unless a deployment says otherwise, and a
/// provider on a machine with a NATS server of its own stays on that server.
pub fn nats_url(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>, lattice: &str) -> String {
    secret_or_config(config, secrets, "nats_url").unwrap_or_else(|| lattice.to_string())
}

/// The lattice's NATS as this provider's host gave it (its host data), or
/// [`DEFAULT_NATS_URL`] when there is none (a provider run by hand).
pub fn lattice_nats_url() -> String {
    wasmcloud_provider_sdk::provider::load_host_data()
        .ok()
        .map(|host| host.lattice_rpc_url.trim().to_string())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_NATS_URL.to_string())
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

/// A config map from `(key, value)` pairs, as tests write settings.
pub fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, SecretValue)]) -> HashMap<String, SecretValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn a_secret_wins_over_config() {
        let config = map(&[("nats_url", "nats://config:1")]);
        let found = secrets(&[("NATS_URL", SecretValue::String("nats://u:p@secret:1".into()))]);
        assert_eq!(secret_or_config(&config, &found, "nats_url").as_deref(), Some("nats://u:p@secret:1"));
        assert_eq!(secret_or_config(&config, &HashMap::new(), "nats_url").as_deref(), Some("nats://config:1"));
        assert_eq!(secret_or_config(&HashMap::new(), &HashMap::new(), "nats_url"), None);
    }

    #[test]
    fn a_binary_secret_does_not_count_and_config_is_trimmed() {
        let binary = secrets(&[("uri", SecretValue::Bytes(b"mongodb://x".to_vec()))]);
        assert_eq!(secret(&binary, "uri"), None);
        assert_eq!(secret_or_config(&map(&[("URI", " mongodb://db:1 ")]), &binary, "uri").as_deref(), Some("mongodb://db:1"));
        assert_eq!(secret_or_config(&map(&[("uri", "  ")]), &binary, "uri"), None, "blank config is unset");
    }

    #[test]
    fn secrets_are_taken_as_given() {
        let found = secrets(&[("stripe_secret_key", SecretValue::String(" sk_test_x".into()))]);
        assert_eq!(secret(&found, "STRIPE_SECRET_KEY").as_deref(), Some(" sk_test_x"));
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redacted("mongodb://user:secret@host:27017/db"), "mongodb://user:***@host:27017/db");
        assert_eq!(redacted("redis://:secret@r:1"), "redis://:***@r:1");
        assert_eq!(redacted("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn numbers_and_lists() {
        let map = map(&[("n", " 42 "), ("bad", "x"), ("l", "10, 20")]);
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
