//! Provider and link settings. The Redis URL may carry a password, so it is read from a
//! secret `redis_url` first, then config; a link's own `redis_url` (secret or config)
//! puts that component's jobs in another Redis.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use ticketing_provider_support::settings::{millis_list, number, secret_or_config, text};
use wasmcloud_provider_sdk::core::secrets::SecretValue;

use crate::jobs::JobSettings;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub redis_url: String,
    /// How often each component's due jobs are looked for.
    pub poll: Duration,
    pub jobs: JobSettings,
}

/// `redis_url` from the secrets, else the config.
pub fn redis_url(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>) -> Option<String> {
    secret_or_config(config, secrets, "redis_url")
}

impl ProviderSettings {
    pub fn from_config(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>) -> Result<Self> {
        let number = |key: &str| number(config, key).map_err(anyhow::Error::msg);
        let mut jobs = JobSettings::default();
        if let Some(v) = text(config, "key_prefix") { jobs.prefix = v; }
        if let Some(v) = number("lease_ms")? { jobs.lease = Duration::from_millis(v); }
        if let Some(v) = number("done_ttl_seconds")? { jobs.done_ttl = Duration::from_secs(v); }
        if let Some(v) = number("max_attempts")? {
            jobs.max_attempts = u32::try_from(v).ok().filter(|&n| n > 0).ok_or_else(|| anyhow::anyhow!("`max_attempts` must be between 1 and 4294967295"))?;
        }
        if let Some(v) = millis_list(config, "backoff_ms").map_err(anyhow::Error::msg)? { jobs.backoff = v; }
        let poll = Duration::from_millis(number("poll_ms")?.unwrap_or(100));
        if poll < Duration::from_millis(10) { bail!("`poll_ms` must be at least 10"); }
        if jobs.lease < Duration::from_secs(1) { bail!("`lease_ms` must be at least 1000"); }
        let redis_url = redis_url(config, secrets).unwrap_or_else(|| DEFAULT_REDIS_URL.to_string());
        Ok(Self { redis_url, poll, jobs })
    }
}

#[cfg(test)]
mod tests {
    use ticketing_provider_support::settings::{map, redacted};

    use super::*;

    #[test]
    fn defaults_overrides_and_secrets() {
        let s = ProviderSettings::from_config(&HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!((s.redis_url.as_str(), s.poll), (DEFAULT_REDIS_URL, Duration::from_millis(100)));
        let secrets = HashMap::from([("REDIS_URL".to_string(), SecretValue::String("redis://:pw@r:1".into()))]);
        let s = ProviderSettings::from_config(&map(&[("redis_url", "redis://other:2"), ("poll_ms", "50"), ("max_attempts", "3")]), &secrets).unwrap();
        assert_eq!((s.redis_url.as_str(), s.poll, s.jobs.max_attempts), ("redis://:pw@r:1", Duration::from_millis(50), 3));
        assert_eq!(redacted(&s.redis_url), "redis://:***@r:1");
    }

    #[test]
    fn bad_values_are_refused() {
        for (k, v) in [("poll_ms", "1"), ("lease_ms", "soon"), ("max_attempts", "0"), ("backoff_ms", "1,x")] {
            assert!(ProviderSettings::from_config(&map(&[(k, v)]), &HashMap::new()).is_err(), "{k}={v}");
        }
    }
}
