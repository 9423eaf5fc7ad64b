//! A small Stripe REST client: charges and refunds, form-encoded, with an
//! `Idempotency-Key` on every create and retries with backoff on network errors, 429
//! and 5xx (the same key on each retry, so a retry never charges twice).

use std::time::Duration;

use serde::Deserialize;
use ticketing_provider_support::backoff::delay_after;
use tracing::{debug, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub amount: u64,
    pub currency: String,
    pub source: String,
    pub idempotency_key: String,
    pub description: Option<String>,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: u64,
    pub currency: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    pub charge: String,
    pub amount: u64,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeError {
    CardDeclined(String),
    InvalidRequest(String),
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub api_base: String,
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delays before the 1st, 2nd, ... retry; the last one repeats.
    pub backoff: Vec<Duration>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            api_base: "https://api.stripe.com".into(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff: vec![Duration::from_millis(250), Duration::from_millis(500), Duration::from_secs(1)],
        }
    }
}

/// The API key is kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    secret_key: String,
    settings: ClientSettings,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient").field("api_base", &self.settings.api_base).field("secret_key", &"***").finish()
    }
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

impl StripeClient {
    pub fn new(secret_key: String, settings: ClientSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
        Ok(Self { http, secret_key, settings })
    }

    pub async fn create_charge(&self, request: &ChargeRequest) -> Result<Charge, StripeError> {
        let mut form = vec![
            ("amount".to_string(), request.amount.to_string()),
            ("currency".to_string(), request.currency.clone()),
            ("source".to_string(), request.source.clone()),
        ];
        if let Some(description) = &request.description {
            form.push(("description".into(), description.clone()));
        }
        for (key, value) in &request.metadata {
            form.push((format!("metadata[{key}]"), value.clone()));
        }
        self.post("/v1/charges", &form, &request.idempotency_key).await
    }

    pub async fn refund_charge(&self, charge_id: &str, idempotency_key: &str) -> Result<Refund, StripeError> {
        self.post("/v1/refunds", &[("charge".to_string(), charge_id.to_string())], idempotency_key).await
    }

    async fn post<T: for<'de> Deserialize<'de>>(&self, path: &str, form: &[(String, String)], idempotency_key: &str) -> Result<T, StripeError> {
        if idempotency_key.is_empty() {
            return Err(StripeError::InvalidRequest("an idempotency key is required".into()));
        }
        let url = format!("{}{path}", self.settings.api_base.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.secret_key)
                .header("Idempotency-Key", idempotency_key)
                .form(form)
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status();
                    let body = response.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_slice(&body).map_err(|e| {
                            warn!(path, error = %e, "unexpected answer from Stripe");
                            StripeError::Unavailable(format!("unexpected answer from Stripe: {e}"))
                        });
                    }
                    let detail = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
                    let message = detail.as_ref().and_then(|d| d.message.clone()).unwrap_or_else(|| format!("Stripe answered {status}"));
                    let kind = detail.and_then(|d| d.kind).unwrap_or_default();
                    match status.as_u16() {
                        429 | 500..=599 => StripeError::Unavailable(message),
                        // Another request with this idempotency key is still running: the
                        // outcome is not known yet.
                        409 => return Err(StripeError::Unavailable(message)),
                        401 | 403 => {
                            warn!(path, %status, "Stripe refused the API key; check `stripe_secret_key`");
                            return Err(StripeError::Unavailable(format!("Stripe refused the API key: {message}")));
                        }
                        402 if kind == "card_error" => return Err(StripeError::CardDeclined(message)),
                        _ if kind == "card_error" => return Err(StripeError::CardDeclined(message)),
                        _ => return Err(StripeError::InvalidRequest(message)),
                    }
                }
                Err(e) => StripeError::Unavailable(format!("cannot reach Stripe: {}", without_url(&e))),
            };
            if attempt >= self.settings.max_retries {
                warn!(path, attempts = attempt + 1, error = ?failure, "Stripe kept failing; giving up");
                return Err(failure);
            }
            let delay = delay_after(&self.settings.backoff, u64::from(attempt) + 1).unwrap_or_default();
            debug!(path, attempt = attempt + 1, ?delay, error = ?failure, "Stripe failed; retrying with the same idempotency key");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// A reqwest error's text without its URL (which is harmless, but keeps logs short).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() { "timed out" } else if e.is_connect() { "connection failed" } else { "request failed" };
    kind.to_string()
}
