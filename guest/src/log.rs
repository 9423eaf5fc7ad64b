//! Logging through `wasi:logging`, which the host writes to its own log.

use crate::bindings::wasi::logging::logging::{log, Level};

pub fn error(context: &str, message: &str) {
    log(Level::Error, context, message);
}
