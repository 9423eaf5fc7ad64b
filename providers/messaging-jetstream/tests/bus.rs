//! The delivery engine against a real NATS JetStream server started by the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use messaging_jetstream::bus::{consumer_name, Bus, BusSettings};
use ticketing_provider_support::CallOutcome;
use ticketing_test_support::Server;
use tokio::sync::oneshot;

fn start_nats() -> Server {
    Server::start("nats-server", |port, data| {
        vec!["-js".into(), "-a".into(), "127.0.0.1".into(), "-p".into(), port.to_string(), "-sd".into(), data.display().to_string()]
    })
}

fn fast_settings() -> BusSettings {
    BusSettings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 3,
        backoff: vec![Duration::from_millis(50)],
        ..BusSettings::default()
    }
}

async fn bus(nats: &Server) -> Bus {
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port)).await.unwrap();
    Bus::connect(client, fast_settings()).await.unwrap()
}

/// Runs a consumer in the background; returns what it saw and a stop switch.
fn spawn_consumer(bus: &Bus, subscriber: &str, subject: &str, fail_first: usize) -> Consumer {
    spawn_consumer_with(bus, subscriber, subject, fail_first, CallOutcome::Failed)
}

type Consumer = (Arc<Mutex<Vec<String>>>, oneshot::Sender<()>, tokio::task::JoinHandle<()>);

/// A consumer whose first `fail_first` attempts per event end as `failure(reason)`.
fn spawn_consumer_with(
    bus: &Bus,
    subscriber: &str,
    subject: &str,
    fail_first: usize,
    failure: fn(String) -> CallOutcome,
) -> Consumer {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let (bus, subscriber, subject) = (bus.clone(), subscriber.to_string(), subject.to_string());
    let seen_in = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        bus.consume(
            &subscriber,
            &subject,
            move |_subject, payload: Bytes, _trace| {
                let seen = Arc::clone(&seen_in);
                let attempts = Arc::clone(&attempts);
                async move {
                    let text = String::from_utf8(payload.to_vec()).unwrap();
                    let n = {
                        let mut a = attempts.lock().unwrap();
                        let n = a.entry(text.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    if n <= fail_first {
                        return failure(format!("failing attempt {n}"));
                    }
                    seen.lock().unwrap().push(text);
                    CallOutcome::Done
                }
            },
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    (seen, stop, task)
}

/// Waits up to 15 s for `done` to hold.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for(seen: &Arc<Mutex<Vec<String>>>, count: usize) {
    eventually(&format!("{count} events"), || seen.lock().unwrap().len() >= count).await;
}

#[tokio::test]
async fn events_published_while_the_consumer_is_down_arrive_in_order_once() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    // Register the durable consumer, then stop it.
    let (_, stop, task) = spawn_consumer(&bus, "orders", "ticket:created", 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    task.await.unwrap();

    for i in 0..20 {
        bus.publish("ticket:created", Bytes::from(format!("t{i}"))).await.unwrap();
    }
    let (seen, stop, task) = spawn_consumer(&bus, "orders", "ticket:created", 0);
    wait_for(&seen, 20).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // past ack_wait: nothing comes twice
    assert_eq!(*seen.lock().unwrap(), (0..20).map(|i| format!("t{i}")).collect::<Vec<_>>());
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failed_event_is_redelivered_until_it_succeeds() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    let (seen, stop, task) = spawn_consumer(&bus, "orders", "payment:created", 2);
    bus.publish("payment:created", Bytes::from("p1")).await.unwrap();
    wait_for(&seen, 1).await;
    assert_eq!(*seen.lock().unwrap(), vec!["p1".to_string()]);
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn an_unreachable_subscriber_gets_the_event_later_without_using_up_its_attempts() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    // Six unreachable offers, more than max_deliver (3), then the subscriber is back.
    let (seen, stop, task) = spawn_consumer_with(&bus, "orders", "ticket:updated", 6, CallOutcome::Unreachable);
    bus.publish("ticket:updated", Bytes::from("u1")).await.unwrap();
    bus.publish("ticket:updated", Bytes::from("u2")).await.unwrap();
    wait_for(&seen, 2).await;
    assert_eq!(*seen.lock().unwrap(), vec!["u1".to_string(), "u2".to_string()], "in order, once each");
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port)).await.unwrap();
    let mut dead = async_nats::jetstream::new(client).get_stream("TICKETING_DEAD_LETTERS").await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0, "nothing dead-lettered");
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Waits for the dead letter of `subscriber`/`subject`; returns it and how many attempts
/// the consumer made.
async fn dead_letter(nats: &Server, subscriber: &str, subject: &str) -> (async_nats::jetstream::message::StreamMessage, u64) {
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port)).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let dead = js.get_stream("TICKETING_DEAD_LETTERS").await.unwrap();
    let name = consumer_name(subscriber, subject);
    let deadline = Instant::now() + Duration::from_secs(15);
    let message = loop {
        if let Ok(m) = dead.get_last_raw_message_by_subject(&format!("deadletter.{name}")).await {
            break m;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events = js.get_stream("TICKETING_EVENTS").await.unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = events.get_consumer(&name).await.unwrap();
    let delivered = consumer.info().await.unwrap().delivered.consumer_sequence;
    (message, delivered)
}

#[tokio::test]
async fn an_event_that_always_fails_ends_in_the_dead_letters() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    let (seen, stop, task) = spawn_consumer(&bus, "orders", "expiration:complete", usize::MAX);
    bus.publish("expiration:complete", Bytes::from("doomed")).await.unwrap();
    let (message, delivered) = dead_letter(&nats, "orders", "expiration:complete").await;
    assert_eq!(&message.payload[..], b"doomed");
    assert_eq!(delivered, 3, "after max_deliver attempts");
    assert!(seen.lock().unwrap().is_empty());
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_rejected_event_goes_to_the_dead_letters_at_once_with_its_reason() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    let (seen, stop, task) = spawn_consumer_with(&bus, "orders", "payment:failed", usize::MAX, CallOutcome::Rejected);
    bus.publish("payment:failed", Bytes::from("not json")).await.unwrap();
    let (message, delivered) = dead_letter(&nats, "orders", "payment:failed").await;
    assert_eq!(&message.payload[..], b"not json");
    assert_eq!(delivered, 1, "no retry for what can never succeed");
    let failure = message.headers.get("Ticketing-Failure").map(|v| v.to_string());
    assert_eq!(failure.as_deref(), Some("failing attempt 1"));
    assert!(seen.lock().unwrap().is_empty());
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn instances_of_one_subscriber_share_events_and_other_subscribers_get_all() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    let (a, stop_a, task_a) = spawn_consumer(&bus, "tickets", "order:created", 0);
    let (b, stop_b, task_b) = spawn_consumer(&bus, "tickets", "order:created", 0);
    let (other, stop_o, task_o) = spawn_consumer(&bus, "payments", "order:created", 0);
    for i in 0..30 {
        bus.publish("order:created", Bytes::from(format!("o{i}"))).await.unwrap();
    }
    wait_for(&other, 30).await;
    eventually("30 events shared by two instances", || a.lock().unwrap().len() + b.lock().unwrap().len() >= 30).await;
    let mut shared: Vec<String> = a.lock().unwrap().iter().chain(b.lock().unwrap().iter()).cloned().collect();
    shared.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("o{i}")).collect();
    expected.sort();
    assert_eq!(shared, expected, "each event handled once by one of the two instances");
    for (stop, task) in [(stop_a, task_a), (stop_b, task_b), (stop_o, task_o)] {
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_steady_flow_of_bursts_keeps_flowing() {
    // Bursts with pauses between them: the consumer must keep pulling after each (an
    // earlier pull loop stalled for its whole expiry now and then).
    let nats = start_nats();
    let bus = bus(&nats).await;
    let (seen, stop, task) = spawn_consumer(&bus, "orders", "ticket:created", 0);
    for burst in 0..10 {
        for i in 0..20 {
            bus.publish("ticket:created", Bytes::from(format!("b{burst}-{i}"))).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(&seen, 200).await;
    assert_eq!(seen.lock().unwrap().len(), 200);
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn request_reply_reaches_a_responder_and_times_out_without_one() {
    let nats = start_nats();
    let bus = bus(&nats).await;
    let responder = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port)).await.unwrap();
    let mut requests = responder.subscribe("prices.quote").await.unwrap();
    tokio::spawn(async move {
        if let Some(request) = futures::StreamExt::next(&mut requests).await {
            let reply = format!("quote for {}", String::from_utf8_lossy(&request.payload));
            responder.publish(request.reply.unwrap(), reply.into()).await.unwrap();
            responder.flush().await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = bus.request("prices.quote", Bytes::from("t1"), Duration::from_secs(2)).await.unwrap();
    assert_eq!(&reply.payload[..], b"quote for t1");
    let error = bus.request("nobody.listens", Bytes::new(), Duration::from_millis(300)).await.unwrap_err();
    assert!(format!("{error:#}").contains("nobody.listens"), "{error:#}");
}
