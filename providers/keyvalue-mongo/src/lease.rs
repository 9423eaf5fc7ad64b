//! Which instance of this provider serves: a lease in a NATS JetStream key-value bucket.
//!
//! Every host runs keyvalue-mongo, so losing a host does not lose the store; but only one
//! instance may serve at a time, because atomicity rests on this process (each key's
//! writes go through one lock here, and FerretDB's own updates are not atomic across
//! clients) and so does the outbox relay. The instance holding the lease serves; the
//! others stand by, connected and linked, and take over once the holder has not renewed
//! it for [`LeaseTimes::ttl`].
//!
//! Why two instances never serve at once: the holder renews every `renew_every` and
//! gives up by itself when it has not managed to for `ttl / 2` (counted from *before*
//! its last successful renewal was sent), while a standby takes over only after seeing
//! the same revision for a whole `ttl` (counted from when it saw it, which is after it
//! was written). A holder that stops on purpose deletes the key, so a standby takes over
//! at its next look.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::kv::{self, Operation, Store, UpdateErrorKind};
use bytes::Bytes;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tracing::{info, warn};

/// The bucket holding every lease of a NATS account (one key per lease).
pub const BUCKET: &str = "ticketing_leases";

#[derive(Clone, Copy, Debug)]
pub struct LeaseTimes {
    /// How long a standby waits, after the holder's last renewal, before taking over.
    pub ttl: Duration,
    /// How often the holder renews, and a standby looks.
    pub renew_every: Duration,
}

impl LeaseTimes {
    /// A lease that fails over `ttl` after its holder stopped renewing.
    pub fn with_ttl(ttl: Duration) -> Self {
        LeaseTimes { ttl, renew_every: ttl / 6 }
    }

    /// After this long without a successful renewal, the holder stops serving.
    fn give_up_after(&self) -> Duration {
        self.ttl / 2
    }
}

/// One contender for one lease.
#[derive(Clone)]
pub struct Lease {
    store: Store,
    key: String,
    holder: Bytes,
    times: LeaseTimes,
}

/// The lease, held: its revision as last renewed.
#[derive(Debug)]
pub struct Held {
    revision: u64,
}

impl Lease {
    /// A contender named `holder` (unique per process) for lease `key` on this NATS
    /// connection's JetStream; creates the bucket when it is missing.
    pub async fn new(nats: async_nats::Client, key: &str, holder: &str, times: LeaseTimes) -> Result<Self> {
        let js = async_nats::jetstream::new(nats);
        let store = match js.get_key_value(BUCKET).await {
            Ok(store) => store,
            Err(_) => match js.create_key_value(kv::Config { bucket: BUCKET.into(), history: 1, ..Default::default() }).await {
                Ok(store) => store,
                // Another contender may have created it meanwhile.
                Err(_) => js.get_key_value(BUCKET).await.with_context(|| format!("cannot open or create the key-value bucket {BUCKET}"))?,
            },
        };
        Ok(Lease { store, key: lease_key(key), holder: Bytes::from(holder.to_string()), times })
    }

    /// Waits until this contender holds the lease.
    pub async fn acquire(&self) -> Held {
        // The holder's revision as this standby first saw it, and when.
        let mut seen: Option<(u64, Instant)> = None;
        loop {
            let entry = match self.store.entry(self.key.as_str()).await {
                Ok(entry) => entry.filter(|e| e.operation == Operation::Put),
                Err(e) => {
                    warn!(lease = self.key, error = %e, "cannot read the lease; trying again");
                    sleep(self.times.renew_every).await;
                    continue;
                }
            };
            match (entry, seen) {
                // Free (never taken, or released): `create` lets exactly one contender in.
                (None, _) => {
                    if let Ok(revision) = self.store.create(self.key.as_str(), self.holder.clone()).await {
                        return Held { revision };
                    }
                }
                // Silent for a whole TTL: take it over, unless another standby was quicker.
                (Some(entry), Some((revision, since))) if revision == entry.revision => {
                    if since.elapsed() >= self.times.ttl {
                        if let Ok(revision) = self.store.update(self.key.as_str(), self.holder.clone(), revision).await {
                            info!(lease = self.key, previous = %String::from_utf8_lossy(&entry.value),
                                  "took over a lease its holder stopped renewing");
                            return Held { revision };
                        }
                    }
                }
                (Some(entry), _) => seen = Some((entry.revision, Instant::now())),
            }
            sleep(self.times.renew_every).await;
        }
    }

    /// Renews the lease while it is held; returns (with the reason) once it is not: another
    /// contender took it, or it could not be renewed in time.
    pub async fn keep(&self, held: &mut Held) -> String {
        let mut renewed = Instant::now();
        loop {
            let give_up_at = renewed + self.times.give_up_after();
            tokio::select! {
                () = sleep_until(give_up_at) => return "could not renew the lease in time".into(),
                () = sleep(self.times.renew_every) => {}
            }
            let sent = Instant::now();
            let renewal = timeout(self.times.renew_every, self.store.update(self.key.as_str(), self.holder.clone(), held.revision));
            match renewal.await {
                Ok(Ok(revision)) => {
                    held.revision = revision;
                    renewed = sent;
                }
                Ok(Err(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    return "another instance holds the lease".into();
                }
                Ok(Err(e)) => warn!(lease = self.key, error = %e, "cannot renew the lease; trying again"),
                Err(_) => warn!(lease = self.key, "renewing the lease timed out; trying again"),
            }
        }
    }

    /// Gives the lease up at once (on a clean stop), so a standby need not wait.
    pub async fn release(&self, held: Held) {
        if let Err(e) = self.store.delete_expect_revision(self.key.as_str(), Some(held.revision)).await {
            warn!(lease = self.key, error = %e, "could not release the lease; a standby takes over when it expires");
        }
    }
}

/// A key-value key for a lease name (letters, digits, `-`, `_`, `=`, `.` and `/` only).
fn lease_key(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_=./".contains(c) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_keep_only_what_nats_allows() {
        assert_eq!(lease_key("default.ticketing-keyvalue_mongo"), "default.ticketing-keyvalue_mongo");
        assert_eq!(lease_key("lattice one:kv*"), "lattice_one_kv_");
    }

    #[test]
    fn the_holder_gives_up_well_before_a_standby_takes_over() {
        let times = LeaseTimes::with_ttl(Duration::from_secs(3));
        assert!(times.give_up_after() + times.renew_every < times.ttl);
    }
}
