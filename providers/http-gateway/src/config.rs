//! Provider-level settings, read from the provider's config at start.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, Result};
use ticketing_provider_support::settings::lookup;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where to listen.
    pub address: SocketAddr,
    /// Longest time a component may take to answer.
    pub timeout: Duration,
    /// Largest request body forwarded; bigger ones get 413.
    pub max_body_bytes: usize,
    /// Fronts (reverse proxies, load balancers) whose `X-Forwarded-For` is believed;
    /// empty by default, so the socket peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 8000)),
            timeout: Duration::from_secs(20),
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Settings {
    pub fn from_config(config: &HashMap<String, String>) -> Result<Self> {
        let mut settings = Settings::default();
        let get = |key: &str| lookup(config, key).map(|v| v.trim());
        if let Some(address) = get("address") {
            settings.address = address.parse().with_context(|| format!("invalid address `{address}`"))?;
        }
        if let Some(ms) = get("timeout_ms") {
            let ms: u64 = ms.parse().with_context(|| format!("invalid timeout_ms `{ms}`"))?;
            settings.timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = get("max_body_bytes") {
            settings.max_body_bytes = bytes.parse().with_context(|| format!("invalid max_body_bytes `{bytes}`"))?;
        }
        if let Some(list) = get("trusted_proxies") {
            settings.trusted_proxies = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().with_context(|| format!("invalid address `{a}` in trusted_proxies")))
                .collect::<Result<_>>()?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use ticketing_provider_support::settings::map as config;

    use super::*;

    #[test]
    fn defaults_listen_on_loopback_8000() {
        let s = Settings::from_config(&HashMap::new()).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.address.to_string(), "127.0.0.1:8000");
    }

    #[test]
    fn reads_every_key_case_insensitively() {
        let s = Settings::from_config(&config(&[
            ("ADDRESS", "0.0.0.0:9000"),
            ("timeout_ms", "1500"),
            ("max_body_bytes", "10"),
            ("trusted_proxies", "127.0.0.1, ::1"),
        ]))
        .unwrap();
        assert_eq!(s.address.to_string(), "0.0.0.0:9000");
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.max_body_bytes, 10);
        assert_eq!(s.trusted_proxies, vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Settings::from_config(&config(&[("address", "nowhere")])).is_err());
        assert!(Settings::from_config(&config(&[("timeout_ms", "-1")])).is_err());
        assert!(Settings::from_config(&config(&[("trusted_proxies", "10.0.0.1,proxy")])).is_err());
    }
}
