//! The Stripe client against stripe-mock (Stripe's official mock, started by the test) and,
//! for what stripe-mock never does (declines, 5xx, 429), a small local server answering
//! with Stripe's documented error bodies.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payments_stripe::stripe::{ChargeRequest, ClientSettings, StripeClient, StripeError};
use ticketing_test_support::{next_port, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn charge_request(key: &str) -> ChargeRequest {
    ChargeRequest {
        amount: 2050,
        currency: "usd".into(),
        source: "tok_visa".into(),
        idempotency_key: key.into(),
        description: Some("Ticket order".into()),
        metadata: vec![("orderId".into(), "5ec0000000000000000000aa".into())],
    }
}

fn client(api_base: String) -> StripeClient {
    let settings = ClientSettings {
        api_base,
        timeout: Duration::from_secs(5),
        max_retries: 2,
        backoff: vec![Duration::from_millis(10)],
    };
    StripeClient::new(KEY.into(), settings).unwrap()
}

#[tokio::test]
async fn charges_and_refunds_against_stripe_mock() {
    let https = next_port();
    let mock = Server::start("stripe-mock", move |port, _| {
        vec!["-http-addr".into(), format!("127.0.0.1:{port}"), "-https-addr".into(), format!("127.0.0.1:{https}")]
    });
    let stripe = client(format!("http://127.0.0.1:{}", mock.port));
    let charge = stripe.create_charge(&charge_request("charge-1")).await.unwrap();
    assert!(charge.id.starts_with("ch_"), "{charge:?}");
    assert_eq!((charge.amount, charge.currency.as_str()), (2050, "usd"));
    let refund = stripe.refund_charge(&charge.id, "refund-1").await.unwrap();
    assert!(refund.id.starts_with("re_"), "{refund:?}");
}

/// One request as the local server saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Answers each request with the next scripted (status, body); records what it got.
async fn scripted(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body_start) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&raw[..i]).to_string(), i + 4);
                }
            };
            let length: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
            while raw.len() < body_start + length {
                let n = socket.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
            }
            log.lock().unwrap().push(Seen { head, body: String::from_utf8_lossy(&raw[body_start..]).to_string() });
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            socket.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (base, seen)
}

const CHARGE_OK: &str = r#"{"id":"ch_1","object":"charge","amount":2050,"currency":"usd","status":"succeeded"}"#;
const DECLINED: &str = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","message":"Your card was declined."}}"#;
const BAD_TOKEN: &str = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such token: 'tok_nope'"}}"#;
const API_ERROR: &str = r#"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#;
const RATE_LIMITED: &str = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}"#;

#[tokio::test]
async fn requests_are_form_encoded_authorised_and_carry_the_idempotency_key() {
    let (base, seen) = scripted(vec![(200, CHARGE_OK)]).await;
    client(base).create_charge(&charge_request("order-42")).await.unwrap();
    let request = seen.lock().unwrap()[0].clone();
    assert!(request.head.starts_with("POST /v1/charges "), "{}", request.head);
    assert_eq!(request.header("idempotency-key").as_deref(), Some("order-42"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}")));
    assert_eq!(request.header("content-type").as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.body, "amount=2050&currency=usd&source=tok_visa&description=Ticket+order&metadata%5BorderId%5D=5ec0000000000000000000aa");
}

#[tokio::test]
async fn a_failing_upstream_is_retried_with_the_same_key() {
    let (base, seen) = scripted(vec![(500, API_ERROR), (429, RATE_LIMITED), (200, CHARGE_OK)]).await;
    let charge = client(base).create_charge(&charge_request("order-7")).await.unwrap();
    assert_eq!(charge.id, "ch_1");
    let keys: Vec<_> = seen.lock().unwrap().iter().map(|s| s.header("idempotency-key").unwrap()).collect();
    assert_eq!(keys, ["order-7", "order-7", "order-7"]);
}

#[tokio::test]
async fn a_stripe_that_keeps_failing_is_unavailable_after_the_retries() {
    let (base, seen) = scripted(vec![(503, API_ERROR), (503, API_ERROR), (503, API_ERROR)]).await;
    let error = client(base).create_charge(&charge_request("k")).await.unwrap_err();
    assert_eq!(error, StripeError::Unavailable("An unknown error occurred".into()));
    assert_eq!(seen.lock().unwrap().len(), 3, "the first attempt and two retries");
    let nowhere = client(format!("http://127.0.0.1:{}", next_port()));
    assert!(matches!(nowhere.create_charge(&charge_request("k")).await, Err(StripeError::Unavailable(_))));
}

#[tokio::test]
async fn declines_and_bad_requests_are_typed_and_not_retried() {
    let (base, seen) = scripted(vec![(402, DECLINED), (400, BAD_TOKEN)]).await;
    let stripe = client(base);
    assert_eq!(stripe.create_charge(&charge_request("a")).await.unwrap_err(), StripeError::CardDeclined("Your card was declined.".into()));
    assert_eq!(stripe.create_charge(&charge_request("b")).await.unwrap_err(), StripeError::InvalidRequest("No such token: 'tok_nope'".into()));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// Collects log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_secret_key_is_never_logged() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (base, _) = scripted(vec![(500, API_ERROR), (500, API_ERROR), (500, API_ERROR), (402, DECLINED)]).await;
    let stripe = client(base);
    tracing::info!(?stripe, "client in use");
    let _ = stripe.create_charge(&charge_request("a")).await;
    let _ = stripe.create_charge(&charge_request("b")).await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying") && logs.contains("giving up"), "the failures were logged:\n{logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
}
