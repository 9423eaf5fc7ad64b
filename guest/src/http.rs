//! The adapter between `wasi:http` and the plain `ticketing_common::http` values.

use ticketing_common::http::{Request, Response};
use ticketing_common::ApiError;

use crate::wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use crate::wasi::io::streams::StreamError;

/// Largest request body read into memory; the gateway enforces its own limit first.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;
/// Which build answered, sent as `x-ticketing-build` on every response: the version, or
/// the `TICKETING_BUILD_TAG` the build was made with (a git revision, say). Operators see
/// which code serves; the redeploy test sees the new code arrive on every host.
const BUILD: &str = match option_env!("TICKETING_BUILD_TAG") {
    Some(tag) => tag,
    None => env!("CARGO_PKG_VERSION"),
};

/// Reads the request, runs `handler`, writes its response.
pub fn serve(request: IncomingRequest, out: ResponseOutparam, handler: impl FnOnce(Request) -> Response) {
    let response = match read_request(request) {
        Ok(request) => handler(request),
        Err(error) => Response::from(error),
    };
    send(response, out);
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.to_ascii_uppercase(),
    }
}

fn read_request(incoming: IncomingRequest) -> Result<Request, ApiError> {
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".into());
    let mut request = Request::new(&method_name(incoming.method()), &path_with_query);
    for (name, value) in incoming.headers().entries() {
        request.headers.push((name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()));
    }
    request.body = read_body(&incoming)?;
    Ok(request)
}

fn read_body(incoming: &IncomingRequest) -> Result<Vec<u8>, ApiError> {
    let unreadable = || ApiError::bad_request("Could not read the request body");
    let body = incoming.consume().map_err(|_| unreadable())?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|_| unreadable())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_BODY_BYTES {
                        return Err(ApiError::too_large());
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(unreadable()),
            }
        }
    }
    Ok(bytes)
}

fn send(response: Response, out: ResponseOutparam) {
    let headers = Fields::new();
    let _ = headers.append("x-ticketing-build", BUILD.as_bytes());
    for (name, value) in &response.headers {
        // A header the runtime refuses (e.g. forbidden) is dropped rather than failing the reply.
        let _ = headers.append(name, value.as_bytes());
    }
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(response.status);
    let body = outgoing.body().expect("the body of a new response is taken once");
    ResponseOutparam::set(out, Ok(outgoing));
    {
        let stream = body.write().expect("the stream of a new body is taken once");
        for chunk in response.body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                // The client went away; nothing more to do.
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
