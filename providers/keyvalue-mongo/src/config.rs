//! Link settings. The connection URI may carry a password, so it is read from the
//! link's secrets first; plain config is accepted for local development.

use std::collections::HashMap;

use anyhow::{bail, Result};
pub use ticketing_common::settings::redacted;
use ticketing_common::settings::lookup;
use wasmcloud_provider_sdk::core::secrets::SecretValue;

pub const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017";
pub const DEFAULT_DATABASE: &str = "ticketing";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    pub uri: String,
    pub database: String,
}

impl LinkSettings {
    pub fn from_link(config: &HashMap<String, String>, secrets: &HashMap<String, SecretValue>) -> Result<Self> {
        let secret_uri = lookup(secrets, "uri").and_then(|v| v.as_string().map(str::to_string));
        let uri = secret_uri
            .or_else(|| lookup(config, "uri").cloned())
            .unwrap_or_else(|| DEFAULT_URI.to_string());
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            bail!("the `uri` link setting must be a mongodb:// or mongodb+srv:// URI");
        }
        let database = lookup(config, "database").map(String::as_str).unwrap_or(DEFAULT_DATABASE).to_string();
        if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
            bail!("`{database}` is not a valid MongoDB database name");
        }
        Ok(Self { uri, database })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults() {
        let s = LinkSettings::from_link(&HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(s, LinkSettings { uri: DEFAULT_URI.into(), database: DEFAULT_DATABASE.into() });
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
    }

}
