//! The serving lease against a real NATS with JetStream: one holder at a time, a standby
//! that takes over once the holder goes silent (never before), at once when it lets go,
//! and a holder that learns it was replaced.

use std::time::{Duration, Instant};

use keyvalue_mongo::lease::{Lease, LeaseTimes};
use ticketing_test_support::Server;
use tokio::time::timeout;

const TTL: Duration = Duration::from_millis(900);

fn start_nats() -> Server {
    Server::start("nats-server", |port, data| {
        vec!["-js".into(), "-a".into(), "127.0.0.1".into(), "-p".into(), port.to_string(), "-sd".into(), data.display().to_string()]
    })
}

async fn contender(nats: &Server, name: &str) -> Lease {
    let client = async_nats::connect(format!("127.0.0.1:{}", nats.port)).await.expect("NATS connects");
    Lease::new(client, "test.keyvalue", name, LeaseTimes::with_ttl(TTL)).await.expect("the lease bucket opens")
}

#[tokio::test]
async fn a_standby_takes_over_only_once_the_holder_stops_renewing() {
    let nats = start_nats();
    let first = contender(&nats, "first").await;
    let second = contender(&nats, "second").await;

    let mut held = timeout(TTL, first.acquire()).await.expect("a free lease is taken at once");
    // While the holder renews, the standby waits, however long that is.
    let keeping = tokio::select! {
        reason = first.keep(&mut held) => panic!("the holder lost its lease: {reason}"),
        _ = second.acquire() => panic!("the standby took a lease that was being renewed"),
        () = tokio::time::sleep(TTL * 4) => Instant::now(),
    };
    // The holder goes silent (a killed host): the standby takes over, after a whole TTL.
    let held_by_second = timeout(TTL * 3, second.acquire()).await.expect("the standby takes over");
    let waited = keeping.elapsed();
    assert!(waited >= TTL, "took over {waited:?} after the last renewal, before the {TTL:?} lease ran out");

    // The old holder wakes up: its next renewal finds the lease taken, and it stops.
    let reason = timeout(TTL * 2, first.keep(&mut held)).await.expect("the old holder notices");
    assert!(reason.contains("another instance"), "{reason}");

    // A holder that stops on purpose lets go, and the other takes over at its next look.
    second.release(held_by_second).await;
    let started = Instant::now();
    timeout(TTL, first.acquire()).await.expect("a released lease is taken before it would have expired");
    assert!(started.elapsed() < TTL);
}

#[tokio::test]
async fn a_holder_cut_off_from_nats_stops_before_anyone_else_may_serve() {
    let mut nats = start_nats();
    let only = contender(&nats, "only").await;
    let mut held = only.acquire().await;
    nats.stop();
    let started = Instant::now();
    let reason = timeout(TTL * 2, only.keep(&mut held)).await.expect("the holder gives up");
    assert!(reason.contains("in time"), "{reason}");
    assert!(started.elapsed() < TTL, "gave up after {:?}, when a standby could already take over", started.elapsed());
}
