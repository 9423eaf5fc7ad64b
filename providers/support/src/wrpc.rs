//! Recognising what a failed wRPC invocation means.

/// True when nobody took the invocation: NATS answered "no responders" because no host
/// runs the target right now (not started yet, being replaced, scaled away). The wRPC
/// transport reports it as `NotConnected`. Such a call never reached the target, so
/// trying again later is always safe.
pub fn is_no_responders(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotConnected) {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed to invoke")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn finds_not_connected_anywhere_in_the_chain() {
        assert!(is_no_responders(&Wrapped(std::io::ErrorKind::NotConnected.into())));
        assert!(!is_no_responders(&Wrapped(std::io::ErrorKind::TimedOut.into())));
    }
}
