//! What became of one call into a component, as the providers that call components
//! (messaging-jetstream delivering an event, scheduler-redis running a due job) need to
//! know it to decide what happens next.

use crate::wrpc::is_no_responders;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The component did what was asked.
    Done,
    /// The component (or the call) failed in a way that may pass: the work is offered
    /// again after a backoff, and given up after the last attempt.
    Failed(String),
    /// The component says it can never do this (a payload that does not decode, a subject
    /// it does not know): given up at once, with the reason, without using up attempts on
    /// it.
    Rejected(String),
    /// Nobody was there to take the call (the component is not running, being replaced):
    /// it never ran, so it is offered again soon without using up an attempt. A component
    /// that is down must not make its work fail for good.
    Unreachable(String),
}

impl CallOutcome {
    /// The outcome of a wRPC call to a component function returning `result<_, E>`: the
    /// transport's error is [`Unreachable`](Self::Unreachable) when no instance took the
    /// call and [`Failed`](Self::Failed) otherwise; the component's own error is what
    /// `refused` makes of it.
    pub fn of_call<T, E>(result: anyhow::Result<Result<T, E>>, refused: impl FnOnce(E) -> Self) -> Self {
        match result {
            Ok(Ok(_)) => Self::Done,
            Ok(Err(e)) => refused(e),
            Err(e) if is_no_responders(e.as_ref()) => Self::Unreachable(format!("{e:#}")),
            Err(e) => Self::Failed(format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(result: anyhow::Result<Result<(), String>>) -> CallOutcome {
        CallOutcome::of_call(result, CallOutcome::Failed)
    }

    #[test]
    fn answers_and_transport_errors_map_to_outcomes() {
        assert_eq!(call(Ok(Ok(()))), CallOutcome::Done);
        assert_eq!(call(Ok(Err("no".into()))), CallOutcome::Failed("no".into()));
        let nobody = anyhow::Error::from(std::io::Error::new(std::io::ErrorKind::NotConnected, "no responders"))
            .context("failed to invoke");
        assert_eq!(call(Err(nobody)), CallOutcome::Unreachable("failed to invoke: no responders".into()));
        let broken = anyhow::anyhow!("connection reset");
        assert_eq!(call(Err(broken)), CallOutcome::Failed("connection reset".into()));
    }

    #[test]
    fn the_component_error_is_the_callers_to_read() {
        let outcome = CallOutcome::of_call(Ok::<Result<(), &str>, _>(Err("bad payload")), |r| CallOutcome::Rejected(r.into()));
        assert_eq!(outcome, CallOutcome::Rejected("bad payload".into()));
    }
}
