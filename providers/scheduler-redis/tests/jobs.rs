//! The job store and delivery loop against a real Redis started by the test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_redis::delivery::{deliver, now_ms};
use scheduler_redis::jobs::{JobSettings, JobStore, Taken};
use ticketing_provider_support::CallOutcome;
use ticketing_test_support::Server;
use tokio::sync::watch;

fn start_redis() -> Server {
    Server::start("redis-server", |port, data| {
        ["--bind", "127.0.0.1", "--port", &port.to_string(), "--dir", &data.display().to_string(),
         "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            .iter().map(|s| s.to_string()).collect()
    })
}

fn settings() -> JobSettings {
    JobSettings { lease: Duration::from_secs(2), backoff: vec![Duration::from_millis(50)], max_attempts: 4, ..JobSettings::default() }
}

async fn store(redis: &Server) -> JobStore {
    JobStore::connect(&format!("redis://127.0.0.1:{}", redis.port), settings()).await.unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

/// Runs `ns`'s jobs in the background; `behaviour(job)` says how each run ends.
fn run_jobs(store: &JobStore, ns: &str, behaviour: fn(&Taken) -> CallOutcome) -> (Log, watch::Sender<bool>) {
    let log: Log = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let seen = Arc::clone(&log);
    let run = move |job: Taken| {
        let seen = Arc::clone(&seen);
        async move {
            let outcome = behaviour(&job);
            if outcome == CallOutcome::Done {
                seen.lock().unwrap().push(job.id.clone());
            }
            outcome
        }
    };
    tokio::spawn(deliver(store.clone(), ns.to_string(), Duration::from_millis(20), run, stopped));
    (log, stop)
}

async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn done(_: &Taken) -> CallOutcome {
    CallOutcome::Done
}

#[tokio::test]
async fn jobs_run_in_due_order_not_before_they_are_due() {
    let redis = start_redis();
    let store = store(&redis).await;
    let now = now_ms();
    for (id, delay) in [("late", 600), ("early", 200), ("middle", 400)] {
        assert!(store.schedule("orders", id, id.as_bytes(), now + delay).await.unwrap());
    }
    let started = Instant::now();
    let (log, _stop) = run_jobs(&store, "orders", done);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(log.lock().unwrap().is_empty(), "nothing is due yet");
    eventually("three runs", || log.lock().unwrap().len() == 3).await;
    assert_eq!(*log.lock().unwrap(), ["early", "middle", "late"]);
    assert!(started.elapsed() >= Duration::from_millis(550));
}

#[tokio::test]
async fn a_cancelled_job_never_runs() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "a", b"", now_ms() + 200).await.unwrap();
    store.schedule("orders", "b", b"", now_ms() + 200).await.unwrap();
    assert!(store.cancel("orders", "a").await.unwrap());
    assert!(!store.cancel("orders", "a").await.unwrap(), "nothing left to cancel");
    let (log, _stop) = run_jobs(&store, "orders", done);
    eventually("b to run", || log.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*log.lock().unwrap(), ["b"]);
}

#[tokio::test]
async fn scheduling_an_id_again_changes_nothing_before_or_after_it_ran() {
    let redis = start_redis();
    let store = store(&redis).await;
    let due = now_ms();
    assert!(store.schedule("expiration", "o1", b"first", due).await.unwrap());
    assert!(!store.schedule("expiration", "o1", b"second", due + 60_000).await.unwrap());
    let (log, _stop) = run_jobs(&store, "expiration", done);
    eventually("o1 to run", || log.lock().unwrap().len() == 1).await;
    assert!(!store.schedule("expiration", "o1", b"third", now_ms()).await.unwrap(), "ran recently");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.lock().unwrap().len(), 1);
    assert!(store.schedule("payments", "o1", b"", now_ms()).await.unwrap(), "namespaces are separate");
}

#[tokio::test]
async fn a_failing_run_is_retried_until_it_succeeds() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "flaky", b"", now_ms()).await.unwrap();
    let (log, _stop) = run_jobs(&store, "orders", |job| {
        if job.attempts < 3 { CallOutcome::Failed(format!("attempt {}", job.attempts)) } else { CallOutcome::Done }
    });
    eventually("the third attempt", || log.lock().unwrap().len() == 1).await;
    assert_eq!(store.pending("orders").await.unwrap(), 0);
    assert!(store.failed("orders").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_that_always_fails_is_given_up_and_kept_for_an_operator() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "doomed", b"", now_ms()).await.unwrap();
    let (_log, _stop) = run_jobs(&store, "orders", |_| CallOutcome::Failed("always".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.failed("orders").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "never given up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.failed("orders").await.unwrap(), vec![("doomed".to_string(), "always".to_string())]);
    assert_eq!(store.pending("orders").await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_the_component_rejects_is_given_up_at_its_first_attempt() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "unreadable", b"garbage", now_ms()).await.unwrap();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&runs);
    let (_stop, stopped) = watch::channel(false);
    let run = move |job: Taken| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(job.attempts);
            CallOutcome::Rejected("unreadable payload".into())
        }
    };
    tokio::spawn(deliver(store.clone(), "orders".into(), Duration::from_millis(20), run, stopped));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.failed("orders").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "never given up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.failed("orders").await.unwrap(), vec![("unreadable".to_string(), "unreadable payload".to_string())]);
    assert_eq!(store.pending("orders").await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(200)).await; // more than the backoff (50 ms)
    assert_eq!(*runs.lock().unwrap(), [1], "run once, not retried");
}

#[tokio::test]
async fn an_unreachable_component_does_not_use_up_attempts() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "j", b"", now_ms()).await.unwrap();
    // Unreachable for longer than max_attempts (4) runs would allow, then back.
    let offers = Arc::new(Mutex::new(0));
    let (stop_tx, stopped) = watch::channel(false);
    let log: Log = Arc::default();
    let (o, l) = (Arc::clone(&offers), Arc::clone(&log));
    let run = move |job: Taken| {
        let (o, l) = (Arc::clone(&o), Arc::clone(&l));
        async move {
            let mut n = o.lock().unwrap();
            *n += 1;
            if *n <= 6 { return CallOutcome::Unreachable("no responders".into()); }
            l.lock().unwrap().push(format!("{}@{}", job.id, job.attempts));
            CallOutcome::Done
        }
    };
    tokio::spawn(deliver(store.clone(), "orders".into(), Duration::from_millis(20), run, stopped));
    let deadline = Instant::now() + Duration::from_secs(15);
    while log.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*log.lock().unwrap(), ["j@1"], "the one real run is the first attempt");
    let _ = stop_tx.send(true);
}

#[tokio::test]
async fn a_job_taken_by_a_runner_that_died_comes_back_after_its_lease() {
    let redis = start_redis();
    let store = store(&redis).await;
    store.schedule("orders", "j", b"payload", now_ms()).await.unwrap();
    let taken = store.take_due("orders", now_ms(), 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    // ... and the runner dies without a word.
    assert!(store.take_due("orders", now_ms(), 10).await.unwrap().is_empty(), "leased to the first runner");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let again = store.take_due("orders", now_ms(), 10).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].payload.as_slice(), again[0].attempts), ("j", &b"payload"[..], 2));
}

#[tokio::test]
async fn a_job_scheduled_before_a_restart_of_provider_and_redis_runs_after_it() {
    let mut redis = start_redis();
    {
        let before = store(&redis).await;
        before.schedule("orders", "survivor", b"", now_ms() + 300).await.unwrap();
    } // the provider goes away ...
    redis.stop(); // ... and so does Redis
    redis.spawn();
    let after = store(&redis).await;
    let (log, _stop) = run_jobs(&after, "orders", done);
    eventually("the job to run after the restarts", || log.lock().unwrap().len() == 1).await;
    assert_eq!(*log.lock().unwrap(), ["survivor"]);
}

#[tokio::test]
async fn two_instances_run_each_job_once() {
    let redis = start_redis();
    let (one, two) = (store(&redis).await, store(&redis).await);
    let now = now_ms();
    for i in 0..100 {
        one.schedule("orders", &format!("j{i:03}"), b"", now + (i % 10) * 20).await.unwrap();
    }
    let (a, _stop_a) = run_jobs(&one, "orders", done);
    let (b, _stop_b) = run_jobs(&two, "orders", done);
    eventually("100 runs", || a.lock().unwrap().len() + b.lock().unwrap().len() >= 100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut all: Vec<String> = a.lock().unwrap().iter().chain(b.lock().unwrap().iter()).cloned().collect();
    all.sort();
    assert_eq!(all, (0..100).map(|i| format!("j{i:03}")).collect::<Vec<_>>(), "each once");
    assert!(!a.lock().unwrap().is_empty() && !b.lock().unwrap().is_empty(), "both instances took part");
}
