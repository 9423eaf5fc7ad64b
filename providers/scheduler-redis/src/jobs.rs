//! The job store: jobs in Redis, independent of wasmCloud.
//!
//! Per namespace (one per component) under `<prefix>:{<namespace>}`:
//! - `:due`, a sorted set of job ids by due time (ms). A job being run is moved to the end
//!   of its lease, so another instance does not take it, and it comes back by itself if the
//!   runner dies: delivery is at least once.
//! - `:job:<id>`, a hash with the payload, attempts and claim count.
//! - `:done:<id>`, a marker (with a time to live) of a job that ran, so scheduling the same
//!   id again is a no-op.
//! - `:failed`, a hash of job id → reason for jobs given up after the last attempt (the job
//!   hash stays for an operator to read).
//!
//! Every change is one Lua script, so two provider instances never take the same job.

use std::time::Duration;

use anyhow::{Context as _, Result};
use redis::aio::ConnectionManager;
use redis::Script;
use ticketing_provider_support::backoff::delay_after;

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub prefix: String,
    /// How long a taken job is reserved for its runner before it is due again.
    pub lease: Duration,
    /// How long ran jobs are remembered (so the same id is not scheduled again).
    pub done_ttl: Duration,
    /// Failed runs before a job is given up.
    pub max_attempts: u32,
    /// Delays before the 2nd, 3rd, ... run; the last one repeats.
    pub backoff: Vec<Duration>,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            prefix: "jobs".into(),
            lease: Duration::from_secs(30),
            done_ttl: Duration::from_secs(7 * 24 * 3600),
            max_attempts: 20,
            backoff: [500, 1000, 2000, 5000, 10_000, 30_000].into_iter().map(Duration::from_millis).collect(),
        }
    }
}

impl JobSettings {
    /// Delay before the next run after `attempts` failed ones.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        delay_after(&self.backoff, attempts.into()).unwrap_or(Duration::from_secs(1))
    }
}

/// A job taken for running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub id: String,
    pub payload: Vec<u8>,
    /// This run included.
    pub attempts: u32,
}

#[derive(Clone)]
pub struct JobStore {
    redis: ConnectionManager,
    settings: JobSettings,
}

const SCHEDULE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'payload', ARGV[2], 'due', ARGV[3], 'attempts', 0)
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1";

const CANCEL: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1";

/// KEYS[1] = due set; ARGV = now, lease end, limit, job key prefix.
const TAKE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local taken = {}
for _, id in ipairs(ids) do
  local job = ARGV[4] .. id
  if redis.call('EXISTS', job) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    local attempts = redis.call('HINCRBY', job, 'attempts', 1)
    table.insert(taken, {id, redis.call('HGET', job, 'payload') or '', attempts})
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return taken";

const COMPLETE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return 1";

/// ARGV = id, when, attempts to give back (a run that never reached the component).
const RETRY: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', KEYS[2], 'attempts', -tonumber(ARGV[3])) end
return 1";

const GIVE_UP: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'failed', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1";

impl JobStore {
    pub async fn connect(url: &str, settings: JobSettings) -> Result<JobStore> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let redis = ConnectionManager::new(client).await.context("failed to connect to Redis")?;
        Ok(JobStore { redis, settings })
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    fn base(&self, namespace: &str) -> String {
        format!("{}:{{{namespace}}}", self.settings.prefix)
    }

    fn due_key(&self, ns: &str) -> String {
        format!("{}:due", self.base(ns))
    }

    fn job_key(&self, ns: &str, id: &str) -> String {
        format!("{}:job:{id}", self.base(ns))
    }

    fn done_key(&self, ns: &str, id: &str) -> String {
        format!("{}:done:{id}", self.base(ns))
    }

    fn failed_key(&self, ns: &str) -> String {
        format!("{}:failed", self.base(ns))
    }

    /// Schedules a job unless one with this id is pending or ran recently.
    pub async fn schedule(&self, ns: &str, id: &str, payload: &[u8], due_ms: u64) -> Result<bool> {
        let added: i32 = Script::new(SCHEDULE)
            .key(self.due_key(ns))
            .key(self.job_key(ns, id))
            .key(self.done_key(ns, id))
            .arg(id)
            .arg(payload)
            .arg(due_ms)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(added == 1)
    }

    /// Cancels a pending job; false if there was none.
    pub async fn cancel(&self, ns: &str, id: &str) -> Result<bool> {
        let removed: i32 = Script::new(CANCEL)
            .key(self.due_key(ns))
            .key(self.job_key(ns, id))
            .arg(id)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Takes up to `limit` jobs due at `now_ms`, leasing them to the caller.
    pub async fn take_due(&self, ns: &str, now_ms: u64, limit: usize) -> Result<Vec<Taken>> {
        let lease_end = now_ms + self.settings.lease.as_millis() as u64;
        let taken: Vec<(String, Vec<u8>, u32)> = Script::new(TAKE)
            .key(self.due_key(ns))
            .arg(now_ms)
            .arg(lease_end)
            .arg(limit)
            .arg(self.job_key(ns, ""))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(taken.into_iter().map(|(id, payload, attempts)| Taken { id, payload, attempts }).collect())
    }

    /// The job ran: forget it, but remember its id for a while.
    pub async fn complete(&self, ns: &str, id: &str) -> Result<()> {
        let _: i32 = Script::new(COMPLETE)
            .key(self.due_key(ns))
            .key(self.job_key(ns, id))
            .key(self.done_key(ns, id))
            .arg(id)
            .arg(self.settings.done_ttl.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Runs the job again at `at_ms`. `uncounted` gives the attempt back (the run never
    /// reached the component).
    pub async fn retry(&self, ns: &str, id: &str, at_ms: u64, uncounted: bool) -> Result<()> {
        let _: i32 = Script::new(RETRY)
            .key(self.due_key(ns))
            .key(self.job_key(ns, id))
            .arg(id)
            .arg(at_ms)
            .arg(u32::from(uncounted))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Stops running a job that failed too often; it stays readable under `:failed`.
    pub async fn give_up(&self, ns: &str, id: &str, reason: &str) -> Result<()> {
        let _: i32 = Script::new(GIVE_UP)
            .key(self.due_key(ns))
            .key(self.job_key(ns, id))
            .key(self.failed_key(ns))
            .arg(id)
            .arg(reason)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Jobs given up, id → reason.
    pub async fn failed(&self, ns: &str) -> Result<Vec<(String, String)>> {
        Ok(redis::cmd("HGETALL").arg(self.failed_key(ns)).query_async(&mut self.redis.clone()).await?)
    }

    /// Pending jobs (including those being run), for tests and operators.
    pub async fn pending(&self, ns: &str) -> Result<usize> {
        Ok(redis::cmd("ZCARD").arg(self.due_key(ns)).query_async(&mut self.redis.clone()).await?)
    }
}
