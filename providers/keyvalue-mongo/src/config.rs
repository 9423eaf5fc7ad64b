//! Settings. Link settings (one per component): where its database is. Provider settings
//! (named config on the provider in wadm.yaml): where the outbox relay publishes events.
//! Connection URLs may carry a password, so they are read from secrets first; plain
//! config is accepted for local development.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use ticketing_provider_support::settings::{lookup, nats_url, number, secret_or_config, text};
use wasmcloud_provider_sdk::core::secrets::SecretValue;

use crate::outbox::valid_subject;

pub const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017";
pub const DEFAULT_DATABASE: &str = "ticketing";
/// The messaging provider's stream keeps `events.>`.
pub const DEFAULT_EVENT_PREFIX: &str = "events";
pub const DEFAULT_SWEEP_MS: u64 = 2000;
/// How soon a standby instance takes over from a lost one (see [`crate::lease`]).
pub const DEFAULT_LEASE_TTL_MS: u64 = 2000;

/// The outbox relay's settings: `nats_url` (secret, then config, else the lattice's NATS), `event_prefix`,
/// `outbox_sweep_ms`; and `lease_ttl_ms`, how long the serving instance may go silent
/// before a standby takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    pub nats_url: String,
    pub event_prefix: String,
    pub sweep_interval: Duration,
    pub lease_ttl: Duration,
}

impl ProviderSettings {
    pub fn from_config(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>, lattice_nats: &str) -> Result<Self> {
        let nats_url = nats_url(config, secrets, lattice_nats);
        let event_prefix = text(config, "event_prefix").unwrap_or_else(|| DEFAULT_EVENT_PREFIX.to_string());
        if !valid_subject(&event_prefix) {
            bail!("`event_prefix` must be a subject prefix such as `events`, got `{event_prefix}`");
        }
        let sweep_ms = number(config, "outbox_sweep_ms").map_err(anyhow::Error::msg)?.unwrap_or(DEFAULT_SWEEP_MS);
        if sweep_ms < 10 {
            bail!("`outbox_sweep_ms` must be at least 10");
        }
        let lease_ms = number(config, "lease_ttl_ms").map_err(anyhow::Error::msg)?.unwrap_or(DEFAULT_LEASE_TTL_MS);
        if lease_ms < 300 {
            bail!("`lease_ttl_ms` must be at least 300");
        }
        Ok(Self {
            nats_url,
            event_prefix,
            sweep_interval: Duration::from_millis(sweep_ms),
            lease_ttl: Duration::from_millis(lease_ms),
        })
    }
}

/// A link's settings: `uri` (secret, then config), `database`, and `writes_at_once`, how
/// many writes to the database may run at once (unset: no limit; `1` for FerretDB on
/// SQLite, see [`crate::write_gate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    pub uri: String,
    pub database: String,
    pub writes_at_once: Option<usize>,
}

impl LinkSettings {
    pub fn from_link(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>) -> Result<Self> {
        let uri = secret_or_config(config, secrets, "uri").unwrap_or_else(|| DEFAULT_URI.to_string());
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            bail!("the `uri` link setting must be a mongodb:// or mongodb+srv:// URI");
        }
        let database = lookup(config, "database").map(String::as_str).unwrap_or(DEFAULT_DATABASE).to_string();
        if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
            bail!("`{database}` is not a valid MongoDB database name");
        }
        let writes_at_once = match number(config, "writes_at_once").map_err(anyhow::Error::msg)? {
            Some(0) => bail!("`writes_at_once` must be at least 1 (leave it out for no limit)"),
            Some(n) => Some(usize::try_from(n)?),
            None => None,
        };
        Ok(Self { uri, database, writes_at_once })
    }
}

#[cfg(test)]
mod tests {
    use ticketing_provider_support::settings::map;

    use super::*;

    /// The lattice's NATS, as a host would give it.
    const LATTICE: &str = "nats://lattice:4222";

    #[test]
    fn defaults() {
        let s = LinkSettings::from_link(&HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(s, LinkSettings { uri: DEFAULT_URI.into(), database: DEFAULT_DATABASE.into(), writes_at_once: None });
        let s = LinkSettings::from_link(&map(&[("writes_at_once", "1")]), &HashMap::new()).unwrap();
        assert_eq!(s.writes_at_once, Some(1));
    }

    #[test]
    fn secret_uri_wins_over_config() {
        let secrets = HashMap::from([("uri".to_string(), SecretValue::String("mongodb://u:p@db:1".into()))]);
        let s = LinkSettings::from_link(&map(&[("URI", "mongodb://other:2"), ("database", "auth")]), &secrets).unwrap();
        assert_eq!(s.uri, "mongodb://u:p@db:1");
        assert_eq!(s.database, "auth");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(LinkSettings::from_link(&map(&[("uri", "http://x")]), &HashMap::new()).is_err());
        assert!(LinkSettings::from_link(&map(&[("database", "a.b")]), &HashMap::new()).is_err());
        for writes in ["0", "one", "-1"] {
            assert!(LinkSettings::from_link(&map(&[("writes_at_once", writes)]), &HashMap::new()).is_err(), "{writes}");
        }
    }

    #[test]
    fn provider_defaults_and_overrides() {
        let s = ProviderSettings::from_config(&HashMap::new(), &HashMap::new(), LATTICE).unwrap();
        assert_eq!(s, ProviderSettings {
            nats_url: LATTICE.into(),
            event_prefix: "events".into(),
            sweep_interval: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(2),
        });
        let s = ProviderSettings::from_config(
            &map(&[("NATS_URL", "nats://n:1"), ("event_prefix", "test.events"), ("outbox_sweep_ms", "250")]),
            &HashMap::new(),
            LATTICE,
        )
        .unwrap();
        assert_eq!((s.nats_url.as_str(), s.event_prefix.as_str()), ("nats://n:1", "test.events"));
        assert_eq!(s.sweep_interval, Duration::from_millis(250));
    }

    #[test]
    fn a_secret_nats_url_wins() {
        let secrets = HashMap::from([("nats_url".to_string(), SecretValue::String("nats://u:p@n:1".into()))]);
        let s = ProviderSettings::from_config(&map(&[("nats_url", "nats://other:2")]), &secrets, LATTICE).unwrap();
        assert_eq!(s.nats_url, "nats://u:p@n:1");
    }

    #[test]
    fn bad_provider_settings_are_refused() {
        for (key, value) in [("outbox_sweep_ms", "soon"), ("outbox_sweep_ms", "5"), ("lease_ttl_ms", "100"), ("event_prefix", "a b"), ("event_prefix", "events.>")] {
            assert!(ProviderSettings::from_config(&map(&[(key, value)]), &HashMap::new(), LATTICE).is_err(), "{key}={value}");
        }
    }

}
