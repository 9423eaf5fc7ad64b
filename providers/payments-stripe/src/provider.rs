//! The wRPC side: serves `ticketing:stripe/charges` with one [`StripeClient`].

use anyhow::Result;
use tokio::sync::OnceCell;
use ticketing_provider_support::trace::call_span;
use tracing::{info, Instrument as _};
use wasmcloud_provider_sdk::{serve_provider_exports, Context, Provider, ProviderInitConfig};

use crate::config::ProviderSettings;
use crate::stripe::{self, StripeClient, StripeError};

mod bindings {
    wit_bindgen_wrpc::generate!({
        path: "../../wit",
        world: "payments-stripe-provider",
        generate_all,
    });
}

use bindings::exports::ticketing::stripe::charges;
use bindings::ticketing::stripe::types::{Charge, ChargeRequest, Error, Refund};

#[derive(Clone, Default)]
pub struct PaymentsStripe {
    client: std::sync::Arc<OnceCell<StripeClient>>,
}

pub async fn run() -> Result<()> {
    let provider = PaymentsStripe::default();
    let (wrpc, shutdown) = ticketing_provider_support::start(&provider, "payments-stripe").await?;
    serve_provider_exports(&wrpc, provider, shutdown, bindings::serve).await
}

impl Provider for PaymentsStripe {
    async fn init(&self, init: impl ProviderInitConfig) -> Result<()> {
        let settings = ProviderSettings::from_config(init.get_config(), init.get_secrets())?;
        info!(api_base = settings.client.api_base, "Stripe client ready");
        let _ = self.client.set(StripeClient::new(settings.secret_key, settings.client)?);
        Ok(())
    }
}

fn to_wit(e: StripeError) -> Error {
    match e {
        StripeError::CardDeclined(m) => Error::CardDeclined(m),
        StripeError::InvalidRequest(m) => Error::InvalidRequest(m),
        StripeError::Unavailable(m) => Error::Unavailable(m),
    }
}

impl PaymentsStripe {
    fn client(&self) -> Result<&StripeClient, Error> {
        self.client.get().ok_or_else(|| Error::Unavailable("the Stripe provider is not configured".into()))
    }
}

impl charges::Handler<Option<Context>> for PaymentsStripe {
    async fn create_charge(&self, cx: Option<Context>, request: ChargeRequest) -> Result<Result<Charge, Error>> {
        let span = call_span(&cx, "stripe create-charge");
        async move {
            let client = match self.client() { Ok(c) => c, Err(e) => return Ok(Err(e)) };
            let request = stripe::ChargeRequest {
                amount: request.amount,
                currency: request.currency,
                source: request.source,
                idempotency_key: request.idempotency_key,
                description: request.description,
                metadata: request.metadata,
            };
            Ok(client.create_charge(&request).await.map(|c| Charge { id: c.id, amount: c.amount, currency: c.currency, status: c.status }).map_err(to_wit))
        }
        .instrument(span)
        .await
    }

    async fn refund_charge(&self, cx: Option<Context>, charge_id: String, idempotency_key: String) -> Result<Result<Refund, Error>> {
        let span = call_span(&cx, "stripe refund-charge");
        async move {
            let client = match self.client() { Ok(c) => c, Err(e) => return Ok(Err(e)) };
            Ok(client
                .refund_charge(&charge_id, &idempotency_key)
                .await
                .map(|r| Refund { id: r.id, charge: r.charge, amount: r.amount, status: r.status })
                .map_err(to_wit))
        }
        .instrument(span)
        .await
    }
}
