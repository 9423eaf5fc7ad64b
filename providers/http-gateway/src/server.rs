//! The HTTP side: accept a request, find its component, forward it, answer.
//!
//! Request and response bodies are buffered (bounded by `max_body_bytes`): our APIs and
//! pages are small, and buffering turns every failure of the call into one clean JSON
//! error instead of a response cut off half way.
//!
//! Each call runs in a task of its own, so a client that hangs up mid-request does not
//! abandon the call half way: it runs to its end and the component's instance is free
//! again at once (an abandoned wRPC call holds its instance until the host's execution
//! timeout, and enough of them freeze the component).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST};
use http::Uri;
use http_body_util::{BodyExt as _, Full};
use ticketing_common::ApiError;
use ticketing_provider_support::backoff::Doubling;
use ticketing_provider_support::wrpc::is_no_responders;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use wrpc_interface_http::InvokeIncomingHandler as _;

use crate::client_addr::client_address;
use crate::config::Settings;
use crate::target::{SharedRoutes, Target};

#[derive(Clone)]
struct AppState {
    settings: Arc<Settings>,
    routes: SharedRoutes,
}

/// Binds the listener now (so a taken port fails the provider's start) and serves in the background.
pub async fn spawn(settings: Settings, routes: SharedRoutes) -> Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(settings.address)
        .await
        .with_context(|| format!("cannot listen on {}", settings.address))?;
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(AppState { settings: Arc::new(settings), routes });
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            warn!(error = %e, "http server stopped");
        }
    }))
}

async fn handle(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    // Spawned, so that the call finishes even when the client leaves and this future is dropped.
    let call = tokio::spawn(async move {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let response = forward(&state, peer, request).await.unwrap_or_else(error_response);
        debug!(%method, %path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
        response
    });
    call.await.unwrap_or_else(|e| {
        warn!(error = %e, "request task failed");
        error_response(ApiError::new(500, "Something went wrong"))
    })
}

fn error_response(error: ApiError) -> Response {
    Response::builder()
        .status(error.status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(error.body()))
        .expect("a status and a static header always build")
}

async fn forward(state: &AppState, peer: SocketAddr, request: Request) -> Result<Response, ApiError> {
    let target = state.routes.read().await.lookup(request.uri().path()).ok_or_else(ApiError::not_found)?;
    let (mut parts, body) = request.into_parts();
    let forwarded = parts.headers.get("x-forwarded-for").and_then(|h| h.to_str().ok());
    let client = client_address(peer.ip(), forwarded, &state.settings.trusted_proxies);
    let client = HeaderValue::from_str(&client.to_string()).expect("an IP address is a valid header value");
    parts.headers.insert("x-forwarded-for", client);
    let body = axum::body::to_bytes(body, state.settings.max_body_bytes)
        .await
        .map_err(|_| ApiError::new(413, "Request body is too large"))?;

    // Components see an absolute URI, as wasi:http requests carry scheme and authority.
    let authority = parts.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .build()
        .map_err(|_| ApiError::bad_request("Invalid request URI"))?;
    let request = || {
        let mut outgoing = http::Request::new(Full::new(body.clone()));
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = uri.clone();
        *outgoing.headers_mut() = parts.headers.clone();
        outgoing
    };

    match tokio::time::timeout(state.settings.timeout, call_until_taken(&target, request)).await {
        Err(_) => {
            warn!(component = %target.component, "component did not answer in time");
            Err(ApiError::new(504, "The service did not answer in time"))
        }
        Ok(Err(e)) => {
            warn!(component = %target.component, error = format!("{e:#}"), "invocation failed");
            Err(ApiError::new(503, "Service unavailable"))
        }
        Ok(Ok(response)) => Ok(response),
    }
}

/// Calls the component, again while no instance is there to take the call (it is starting
/// or being replaced): such a call never reached it, so repeating it is safe for any
/// method. The caller's timeout bounds the wait.
async fn call_until_taken(target: &Target, request: impl Fn() -> http::Request<Full<Bytes>>) -> Result<Response> {
    let mut pauses = Doubling::new(Duration::from_millis(20), Duration::from_millis(250));
    loop {
        match call(target, request()).await {
            Err(e) if is_no_responders(e.as_ref()) => {
                let pause = pauses.next_pause();
                debug!(component = %target.component, ?pause, "no instance took the call; trying again");
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

async fn call(target: &Target, request: http::Request<Full<Bytes>>) -> Result<Response> {
    let (response, _body_errors, io) = target.client.invoke_handle_http(None, request).await?;
    // The I/O future streams the request body out; it must run while we read the answer.
    let io = io.map(tokio::spawn);
    let response = response.map_err(|code| anyhow!("component returned error code {code:?}"))?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.context("failed to read the response body");
    if let Some(io) = io {
        io.abort();
    }
    Ok(Response::from_parts(parts, Body::from(collected?.to_bytes())))
}
