//! Outgoing HTTP through `wasi:http/outgoing-handler` (the host's http-client capability).

use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use crate::wasi::io::streams::StreamError;

/// An answer: status, headers (lowercase names), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request to `base` (`http://host:port`) + `path`; an error means no answer.
pub fn send(method: &str, base: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>, timeout_ms: u64) -> Result<Reply, String> {
    let (scheme, authority) = match base.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest.trim_end_matches('/')),
        Some(("http", rest)) => (Scheme::Http, rest.trim_end_matches('/')),
        _ => return Err(format!("unsupported base URL `{base}`")),
    };
    let fields = Fields::new();
    for (name, value) in headers {
        fields.append(name, value.as_bytes()).map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    request.set_method(&method).map_err(|()| "bad method".to_string())?;
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme".to_string())?;
    request.set_authority(Some(authority)).map_err(|()| "bad authority".to_string())?;
    request.set_path_with_query(Some(path)).map_err(|()| "bad path".to_string())?;
    let outgoing_body = request.body().map_err(|()| "request body taken twice".to_string())?;
    if let Some(bytes) = body {
        let stream = outgoing_body.write().map_err(|()| "request stream taken twice".to_string())?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("writing the request: {e:?}"))?;
        }
    }
    let options = RequestOptions::new();
    let _ = options.set_first_byte_timeout(Some(timeout_ms * 1_000_000));
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("request failed: {e:?}"))?;
    OutgoingBody::finish(outgoing_body, None).map_err(|e| format!("finishing the request: {e:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken twice".to_string())?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| "response body taken twice".to_string())?;
    let mut bytes = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "response stream taken twice".to_string())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(format!("reading the response: {}", e.to_debug_string())),
            }
        }
    }
    Ok(Reply { status, headers, body: bytes })
}
