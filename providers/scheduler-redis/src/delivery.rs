//! Runs due jobs: take what is due, run each, record the outcome. Independent of
//! wasmCloud: `run` is whatever calls the component, and answers with a [`CallOutcome`]:
//! `Done` completes the job; `Failed` runs it again after the backoff and gives it up
//! after the last attempt; `Rejected` gives it up at once; `Unreachable` (nobody was there
//! to run it) offers it again soon without using up an attempt.

use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use ticketing_provider_support::CallOutcome;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::jobs::{JobStore, Taken};

/// Jobs taken per round; a full round is followed at once by the next.
const BATCH: usize = 32;
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

pub fn now_ms() -> u64 {
    ticketing_common::time::Timestamp::now().millis()
}

/// Delivers the namespace's due jobs to `run` until `stopped` turns true.
pub async fn deliver<R, F>(store: JobStore, ns: String, poll: Duration, run: R, mut stopped: watch::Receiver<bool>)
where
    R: Fn(Taken) -> F,
    F: Future<Output = CallOutcome>,
{
    // A run may take at most a third of the lease, so it ends long before anyone else
    // could take the same job.
    let run_timeout = store.settings().lease / 3;
    loop {
        if *stopped.borrow() {
            return;
        }
        let pause = match store.take_due(&ns, now_ms(), BATCH).await {
            Ok(jobs) => {
                let full = jobs.len() == BATCH;
                let runs = jobs.into_iter().map(|job| {
                    let run = &run;
                    let store = &store;
                    let ns = &ns;
                    async move {
                        let outcome = tokio::time::timeout(run_timeout, run(job.clone()))
                            .await
                            .unwrap_or_else(|_| CallOutcome::Failed("the run timed out".into()));
                        record(store, ns, &job, outcome).await;
                    }
                });
                join_all(runs).await;
                if full { Duration::ZERO } else { poll }
            }
            Err(e) => {
                warn!(namespace = ns, error = format!("{e:#}"), "cannot read due jobs; trying again");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn record(store: &JobStore, ns: &str, job: &Taken, outcome: CallOutcome) {
    let settings = store.settings();
    let result = match outcome {
        CallOutcome::Done => store.complete(ns, &job.id).await,
        CallOutcome::Unreachable(reason) => {
            debug!(namespace = ns, job = job.id, %reason, "component unreachable; job held");
            store.retry(ns, &job.id, now_ms() + UNREACHABLE_RETRY.as_millis() as u64, true).await
        }
        // The component says the job can never run: given up at once, kept for an operator.
        CallOutcome::Rejected(reason) => {
            warn!(namespace = ns, job = job.id, attempts = job.attempts, %reason, "job rejected by the component; given up");
            store.give_up(ns, &job.id, &reason).await
        }
        CallOutcome::Failed(reason) if job.attempts >= settings.max_attempts => {
            warn!(namespace = ns, job = job.id, attempts = job.attempts, %reason, "job failed for the last time; given up");
            store.give_up(ns, &job.id, &reason).await
        }
        CallOutcome::Failed(reason) => {
            let delay = settings.retry_delay(job.attempts);
            debug!(namespace = ns, job = job.id, attempts = job.attempts, ?delay, %reason, "job failed; will run again");
            store.retry(ns, &job.id, now_ms() + delay.as_millis() as u64, false).await
        }
    };
    if let Err(e) = result {
        // The lease runs out and the job comes back by itself.
        warn!(namespace = ns, job = job.id, error = format!("{e:#}"), "cannot record the outcome");
    }
}
