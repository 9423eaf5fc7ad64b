//! Provider settings. The secret key comes only from the wasmCloud secret
//! `stripe_secret_key` (never from named config, which any linked entity and every
//! `wash config get` can read); everything else from config.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use ticketing_provider_support::settings::{millis_list, number, secret, text};
use wasmcloud_provider_sdk::core::secrets::SecretValue;

use crate::stripe::ClientSettings;

#[derive(Clone)]
pub struct ProviderSettings {
    pub secret_key: String,
    pub client: ClientSettings,
}

impl ProviderSettings {
    pub fn from_config(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>) -> Result<Self> {
        let Some(secret_key) = secret(secrets, "stripe_secret_key") else {
            bail!("no Stripe key: put it in a secret named `stripe_secret_key`");
        };
        if !secret_key.starts_with("sk_") && !secret_key.starts_with("rk_") {
            bail!("`stripe_secret_key` does not look like a Stripe secret key (sk_... or rk_...)");
        }
        let number = |key: &str| number(config, key).map_err(anyhow::Error::msg);
        let mut client = ClientSettings::default();
        if let Some(v) = text(config, "api_base") {
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                bail!("`api_base` must be an http(s) URL");
            }
            client.api_base = v;
        }
        if let Some(v) = number("timeout_ms")? { client.timeout = Duration::from_millis(v.max(100)); }
        if let Some(v) = number("max_retries")? { client.max_retries = u32::try_from(v.min(10)).unwrap_or(10); }
        if let Some(v) = millis_list(config, "backoff_ms").map_err(anyhow::Error::msg)? { client.backoff = v; }
        Ok(Self { secret_key, client })
    }
}

#[cfg(test)]
mod tests {
    use ticketing_provider_support::settings::map;

    use super::*;

    fn key(value: &str) -> HashMap<String, SecretValue> {
        HashMap::from([("stripe_secret_key".to_string(), SecretValue::String(value.into()))])
    }

    #[test]
    fn the_key_comes_from_the_secret_only() {
        let s = ProviderSettings::from_config(&map(&[("api_base", "http://127.0.0.1:1")]), &key("sk_test_secret")).unwrap();
        assert_eq!((s.secret_key.as_str(), s.client.api_base.as_str()), ("sk_test_secret", "http://127.0.0.1:1"));
        assert!(ProviderSettings::from_config(&map(&[("stripe_secret_key", "sk_test_config")]), &HashMap::new()).is_err(),
                "a key in config is not used");
    }

    #[test]
    fn a_missing_or_odd_key_and_bad_values_are_refused() {
        assert!(ProviderSettings::from_config(&HashMap::new(), &HashMap::new()).is_err());
        assert!(ProviderSettings::from_config(&HashMap::new(), &key("pk_test_x")).is_err());
        assert!(ProviderSettings::from_config(&map(&[("api_base", "ftp://x")]), &key("sk_test_x")).is_err());
        assert!(ProviderSettings::from_config(&map(&[("timeout_ms", "soon")]), &key("sk_test_x")).is_err());
    }
}
