//! Provider and link settings.
//!
//! Provider config (named config on the provider in wadm.yaml): where NATS is and how the
//! streams behave. Link config (source config of a link to a component): which subjects
//! the component consumes.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use ticketing_provider_support::settings::{lookup, millis_list, nats_url, number, text};
use wasmcloud_provider_sdk::core::secrets::SecretValue;

use crate::bus::BusSettings;

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub nats_url: String,
    pub bus: BusSettings,
}

impl ProviderSettings {
    /// `nats_url` comes from a secret first (it may carry credentials), then config, else
    /// it is `lattice_nats`, the lattice's NATS.
    pub fn from_config(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>, lattice_nats: &str) -> Result<Self> {
        let nats_url = nats_url(config, secrets, lattice_nats);
        let mut bus = BusSettings::default();
        let number = |key: &str| number(config, key).map_err(anyhow::Error::msg);
        if let Some(v) = text(config, "stream") { bus.stream = v; }
        if let Some(v) = text(config, "subject_prefix") { bus.prefix = v; }
        if let Some(v) = text(config, "dead_letter_stream") { bus.dead_letter_stream = v; }
        if let Some(v) = text(config, "dead_letter_prefix") { bus.dead_letter_prefix = v; }
        if let Some(v) = number("max_age_seconds")? { bus.max_age = Duration::from_secs(v); }
        if let Some(v) = number("ack_wait_ms")? { bus.ack_wait = Duration::from_millis(v); }
        if let Some(v) = number("max_deliver")? {
            if v == 0 { bail!("`max_deliver` must be at least 1"); }
            bus.max_deliver = i64::try_from(v).context("`max_deliver` is too large")?;
        }
        if let Some(v) = millis_list(config, "backoff_ms").map_err(anyhow::Error::msg)? {
            bus.backoff = v;
        }
        if bus.ack_wait < Duration::from_millis(100) {
            bail!("`ack_wait_ms` must be at least 100");
        }
        Ok(Self { nats_url, bus })
    }
}

/// The subjects a link subscribes to: config `subscriptions`, comma-separated.
pub fn subscriptions(config: &HashMap<String, String>) -> Result<Vec<String>> {
    let Some(list) = lookup(config, "subscriptions") else {
        return Ok(Vec::new());
    };
    let mut subjects = Vec::new();
    for subject in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if subject.contains(char::is_whitespace) || subject.starts_with('.') || subject.ends_with('.') || subject.contains("..") {
            bail!("`{subject}` is not a valid subject");
        }
        if !subjects.iter().any(|s| s == subject) {
            subjects.push(subject.to_string());
        }
    }
    Ok(subjects)
}

#[cfg(test)]
mod tests {
    use ticketing_provider_support::settings::{map, redacted};

    use super::*;

    /// The lattice's NATS, as a host would give it.
    const LATTICE: &str = "nats://lattice:4222";

    #[test]
    fn defaults_and_overrides() {
        let s = ProviderSettings::from_config(&HashMap::new(), &HashMap::new(), LATTICE).unwrap();
        assert_eq!(s.nats_url, LATTICE, "events go over the lattice's NATS by default");
        assert_eq!(s.bus.max_deliver, 10);
        let s = ProviderSettings::from_config(
            &map(&[("NATS_URL", "nats://n:1"), ("ack_wait_ms", "2000"), ("max_deliver", "3"), ("backoff_ms", "10, 20"), ("max_age_seconds", "60")]),
            &HashMap::new(),
            LATTICE,
        )
        .unwrap();
        assert_eq!(s.nats_url, "nats://n:1");
        assert_eq!(s.bus.ack_wait, Duration::from_secs(2));
        assert_eq!(s.bus.max_deliver, 3);
        assert_eq!(s.bus.backoff, vec![Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!(s.bus.max_age, Duration::from_secs(60));
    }

    #[test]
    fn a_secret_url_wins() {
        let secrets = HashMap::from([("nats_url".to_string(), SecretValue::String("nats://u:p@n:1".into()))]);
        let s = ProviderSettings::from_config(&map(&[("nats_url", "nats://other:2")]), &secrets, LATTICE).unwrap();
        assert_eq!(s.nats_url, "nats://u:p@n:1");
        assert_eq!(redacted(&s.nats_url), "nats://u:***@n:1");
    }

    #[test]
    fn bad_numbers_are_refused() {
        for (key, value) in [("ack_wait_ms", "soon"), ("max_deliver", "0"), ("backoff_ms", "1,x"), ("ack_wait_ms", "5")] {
            assert!(ProviderSettings::from_config(&map(&[(key, value)]), &HashMap::new(), LATTICE).is_err(), "{key}={value}");
        }
    }

    #[test]
    fn subscriptions_are_a_clean_list() {
        assert_eq!(subscriptions(&map(&[("subscriptions", " ticket:created, ticket:updated,,ticket:created")])).unwrap(),
                   vec!["ticket:created", "ticket:updated"]);
        assert!(subscriptions(&HashMap::new()).unwrap().is_empty());
        assert!(subscriptions(&map(&[("subscriptions", "bad subject")])).is_err());
        assert!(subscriptions(&map(&[("subscriptions", "a..b")])).is_err());
    }
}
