//! `wasmcloud-host`: a thin launcher for the wasmCloud v1.9.2 host.
//!
//! The upstream host binary is not published on crates.io, only the library behind it
//! (`wasmcloud-host` 0.27.1). This launcher maps the usual flags and `WASMCLOUD_*`
//! environment variables onto `WasmbusHostConfig`, so it can be started by our `up`
//! script or by `wash up --host-path`, and several of them can join one lattice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{ArgAction, Parser};
use tracing_subscriber::util::SubscriberInitExt as _;
use nkeys::KeyPair;
use url::Url;
use wasmcloud_core::logging::Level as LogLevel;
use wasmcloud_core::{OtelConfig, OtelProtocol};
use wasmcloud_host::wasmbus::{Features, Host, HostConfig};
use wasmcloud_host::OciConfig;

/// The wasmCloud release that `wasmcloud-host` 0.27.1 is.
const HOST_VERSION: &str = "1.9.2";

#[derive(Parser, Debug)]
#[command(name = "wasmcloud-host", version = "1.9.2", about = "wasmCloud v1 host")]
struct Args {
    /// Lattice this host joins.
    #[arg(long = "lattice", short = 'x', env = "WASMCLOUD_LATTICE", default_value = "default")]
    lattice: String,
    /// NATS host used for both control and RPC connections unless overridden.
    #[arg(long = "nats-host", env = "WASMCLOUD_NATS_HOST", default_value = "127.0.0.1")]
    nats_host: String,
    #[arg(long = "nats-port", env = "WASMCLOUD_NATS_PORT", default_value_t = 4222)]
    nats_port: u16,
    #[arg(long = "nats-jwt", env = "WASMCLOUD_NATS_JWT", requires = "nats_seed")]
    nats_jwt: Option<String>,
    #[arg(long = "nats-seed", env = "WASMCLOUD_NATS_SEED", requires = "nats_jwt")]
    nats_seed: Option<String>,

    #[arg(long = "ctl-host", env = "WASMCLOUD_CTL_HOST")]
    ctl_host: Option<String>,
    #[arg(long = "ctl-port", env = "WASMCLOUD_CTL_PORT")]
    ctl_port: Option<u16>,
    #[arg(long = "ctl-jwt", env = "WASMCLOUD_CTL_JWT", requires = "ctl_seed")]
    ctl_jwt: Option<String>,
    #[arg(long = "ctl-seed", env = "WASMCLOUD_CTL_SEED", requires = "ctl_jwt")]
    ctl_seed: Option<String>,
    #[arg(long = "ctl-tls", env = "WASMCLOUD_CTL_TLS", action = ArgAction::Set, default_value_t = false)]
    ctl_tls: bool,
    #[arg(long = "ctl-topic-prefix", env = "WASMCLOUD_CTL_TOPIC_PREFIX", default_value = "wasmbus.ctl")]
    ctl_topic_prefix: String,

    #[arg(long = "rpc-host", env = "WASMCLOUD_RPC_HOST")]
    rpc_host: Option<String>,
    #[arg(long = "rpc-port", env = "WASMCLOUD_RPC_PORT")]
    rpc_port: Option<u16>,
    #[arg(long = "rpc-jwt", env = "WASMCLOUD_RPC_JWT", requires = "rpc_seed")]
    rpc_jwt: Option<String>,
    #[arg(long = "rpc-seed", env = "WASMCLOUD_RPC_SEED", requires = "rpc_jwt")]
    rpc_seed: Option<String>,
    #[arg(long = "rpc-tls", env = "WASMCLOUD_RPC_TLS", action = ArgAction::Set, default_value_t = false)]
    rpc_tls: bool,
    /// Timeout of one wRPC invocation (component ↔ component, component ↔ provider).
    #[arg(long = "rpc-timeout-ms", env = "WASMCLOUD_RPC_TIMEOUT_MS", default_value_t = 2000)]
    rpc_timeout_ms: u64,

    /// JetStream domain of the lattice's NATS, if any.
    #[arg(long = "js-domain", env = "WASMCLOUD_JS_DOMAIN")]
    js_domain: Option<String>,
    /// Seed of the host's server key; a fresh one is generated when absent.
    #[arg(long = "host-seed", env = "WASMCLOUD_HOST_SEED")]
    host_seed: Option<String>,
    /// Host label `key=value`; may be repeated. `WASMCLOUD_LABEL_<key>=<value>` works too.
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,

    /// Allow `file://` component and provider references (local development).
    #[arg(long = "allow-file-load", env = "WASMCLOUD_ALLOW_FILE_LOAD", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    allow_file_load: bool,
    #[arg(long = "oci-allow-latest", env = "WASMCLOUD_OCI_ALLOW_LATEST", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    oci_allow_latest: bool,
    #[arg(long = "oci-allowed-insecure", env = "WASMCLOUD_OCI_ALLOWED_INSECURE", value_delimiter = ',')]
    oci_allowed_insecure: Vec<String>,

    #[arg(long = "log-level", env = "WASMCLOUD_LOG_LEVEL", default_value = "info")]
    log_level: String,
    #[arg(long = "enable-structured-logging", env = "WASMCLOUD_STRUCTURED_LOGGING_ENABLED", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    structured_logging: bool,

    /// OpenTelemetry (OTLP) traces, metrics and logs from the host and the providers it
    /// starts (they get this configuration with their host data). Upstream's flags.
    #[arg(long = "enable-observability", env = "WASMCLOUD_OBSERVABILITY_ENABLED", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    enable_observability: bool,
    /// One signal only, instead of all three.
    #[arg(long = "enable-traces", env = "WASMCLOUD_TRACES_ENABLED")]
    enable_traces: Option<bool>,
    #[arg(long = "enable-metrics", env = "WASMCLOUD_METRICS_ENABLED")]
    enable_metrics: Option<bool>,
    #[arg(long = "enable-logs", env = "WASMCLOUD_LOGS_ENABLED")]
    enable_logs: Option<bool>,
    /// Where the OTLP collector is (default http://127.0.0.1:4318, or :4317 for gRPC).
    #[arg(long = "override-observability-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    observability_endpoint: Option<String>,
    #[arg(long = "override-traces-endpoint", env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    traces_endpoint: Option<String>,
    #[arg(long = "override-metrics-endpoint", env = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")]
    metrics_endpoint: Option<String>,
    #[arg(long = "override-logs-endpoint", env = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")]
    logs_endpoint: Option<String>,
    /// `http` (protobuf over HTTP, the default) or `grpc`.
    #[arg(long = "observability-protocol", env = "WASMCLOUD_OBSERVABILITY_PROTOCOL", default_value = "http")]
    observability_protocol: String,
    /// Most detailed level of the spans exported.
    #[arg(long = "trace-level", env = "WASMCLOUD_TRACE_LEVEL", default_value = "info")]
    trace_level: String,

    /// Delay between asking a provider to stop and killing it.
    #[arg(long = "provider-shutdown-delay-ms", env = "WASMCLOUD_PROV_SHUTDOWN_DELAY_MS", default_value_t = 300)]
    provider_shutdown_delay_ms: u64,
    /// Longest time one component invocation may run.
    #[arg(long = "max-execution-time-ms", env = "WASMCLOUD_MAX_EXECUTION_TIME_MS", default_value_t = 600_000)]
    max_execution_time_ms: u64,
    #[arg(long = "heartbeat-interval-seconds", env = "WASMCLOUD_HEARTBEAT_INTERVAL")]
    heartbeat_interval_seconds: Option<u64>,

    #[arg(long = "config-service-enabled", env = "WASMCLOUD_CONFIG_SERVICE", action = ArgAction::Set, default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    config_service_enabled: bool,
    /// Subject prefix of a secrets backend (e.g. `wasmcloud.secrets`).
    #[arg(long = "secrets-topic", env = "WASMCLOUD_SECRETS_TOPIC")]
    secrets_topic: Option<String>,
    #[arg(long = "policy-topic", env = "WASMCLOUD_POLICY_TOPIC")]
    policy_topic: Option<String>,

    /// Experimental features, e.g. `builtin-http-server`; comma separated or repeated.
    #[arg(long = "feature", env = "WASMCLOUD_EXPERIMENTAL_FEATURES", value_delimiter = ',')]
    features: Vec<String>,
}

fn nats_url(host: &str, port: u16) -> Result<Url> {
    Url::parse(&format!("nats://{host}:{port}")).with_context(|| format!("bad NATS address {host}:{port}"))
}

fn key_from_seed(seed: Option<&str>, what: &str) -> Result<Option<Arc<KeyPair>>> {
    seed.map(|s| KeyPair::from_seed(s).map(Arc::new).with_context(|| format!("invalid {what} seed")))
        .transpose()
}

/// Labels from `--label k=v` plus every `WASMCLOUD_LABEL_<k>=<v>` variable.
fn collect_labels(flags: &[String]) -> Result<HashMap<String, String>> {
    let mut labels = HashMap::new();
    for (key, value) in std::env::vars() {
        if let Some(name) = key.strip_prefix("WASMCLOUD_LABEL_") {
            labels.insert(name.to_lowercase(), value);
        }
    }
    for flag in flags {
        let (k, v) = flag
            .split_once('=')
            .with_context(|| format!("label `{flag}` is not of the form key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

fn parse_log_level(level: &str) -> LogLevel {
    match level.to_ascii_lowercase().as_str() {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "warn" | "warning" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "critical" => LogLevel::Critical,
        _ => LogLevel::Info,
    }
}

fn otel_config(args: &Args) -> OtelConfig {
    OtelConfig {
        enable_observability: args.enable_observability,
        enable_traces: args.enable_traces,
        enable_metrics: args.enable_metrics,
        enable_logs: args.enable_logs,
        observability_endpoint: args.observability_endpoint.clone(),
        traces_endpoint: args.traces_endpoint.clone(),
        metrics_endpoint: args.metrics_endpoint.clone(),
        logs_endpoint: args.logs_endpoint.clone(),
        protocol: if args.observability_protocol.eq_ignore_ascii_case("grpc") { OtelProtocol::Grpc } else { OtelProtocol::Http },
        trace_level: parse_log_level(&args.trace_level),
        ..Default::default()
    }
}

/// Logs to stderr; with OpenTelemetry on, also exports spans (and metrics and logs) over
/// OTLP. The returned guard flushes the exporters when dropped.
fn init_logging(args: &Args, otel: &OtelConfig) -> Result<Option<wasmcloud_tracing::FlushGuard>> {
    if otel.traces_enabled() || otel.metrics_enabled() || otel.logs_enabled() {
        let log_level = parse_log_level(&args.log_level);
        let (dispatch, guard) = wasmcloud_tracing::configure_observability(
            "wasmcloud-host",
            otel,
            args.structured_logging,
            None::<&str>,
            Some(&log_level),
            Some(&otel.trace_level),
        )
        .context("failed to configure OpenTelemetry")?;
        dispatch.try_init().context("failed to start logging")?;
        return Ok(Some(guard));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Keep dependency chatter down; the host's own crates log at the chosen level.
        tracing_subscriber::EnvFilter::new(format!(
            "warn,wasmcloud_host={0},wasmcloud_runtime={0},wasmcloud_provider_sdk={0}",
            args.log_level.to_ascii_lowercase()
        ))
    });
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    if args.structured_logging {
        fmt.json().init();
    } else {
        fmt.init();
    }
    Ok(None)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let otel = otel_config(&args);
    let _flush = init_logging(&args, &otel)?;

    let ctl_url = nats_url(args.ctl_host.as_deref().unwrap_or(&args.nats_host), args.ctl_port.unwrap_or(args.nats_port))?;
    let rpc_url = nats_url(args.rpc_host.as_deref().unwrap_or(&args.nats_host), args.rpc_port.unwrap_or(args.nats_port))?;
    let features: Features = args.features.iter().map(|f| Features::from(f.trim())).sum();

    let config = HostConfig {
        ctl_nats_url: ctl_url,
        ctl_jwt: args.ctl_jwt.clone().or_else(|| args.nats_jwt.clone()),
        ctl_key: key_from_seed(args.ctl_seed.as_deref().or(args.nats_seed.as_deref()), "control NATS")?,
        ctl_tls: args.ctl_tls,
        ctl_topic_prefix: args.ctl_topic_prefix.clone(),
        rpc_nats_url: rpc_url,
        rpc_timeout: Duration::from_millis(args.rpc_timeout_ms),
        rpc_jwt: args.rpc_jwt.clone().or_else(|| args.nats_jwt.clone()),
        rpc_key: key_from_seed(args.rpc_seed.as_deref().or(args.nats_seed.as_deref()), "RPC NATS")?,
        rpc_tls: args.rpc_tls,
        lattice: Arc::from(args.lattice.as_str()),
        js_domain: args.js_domain.clone(),
        labels: collect_labels(&args.labels)?,
        host_key: key_from_seed(args.host_seed.as_deref(), "host")?,
        provider_shutdown_delay: Some(Duration::from_millis(args.provider_shutdown_delay_ms)),
        oci_opts: OciConfig {
            allow_latest: args.oci_allow_latest,
            allowed_insecure: args.oci_allowed_insecure.clone(),
            ..Default::default()
        },
        allow_file_load: args.allow_file_load,
        enable_structured_logging: args.structured_logging,
        otel_config: otel,
        log_level: parse_log_level(&args.log_level),
        config_service_enabled: args.config_service_enabled,
        secrets_topic_prefix: args.secrets_topic.clone(),
        policy_service_config: wasmcloud_host::wasmbus::host_config::PolicyService {
            policy_topic: args.policy_topic.clone(),
            ..Default::default()
        },
        max_execution_time: Duration::from_millis(args.max_execution_time_ms),
        heartbeat_interval: args.heartbeat_interval_seconds.map(Duration::from_secs),
        experimental_features: features,
        // Report the upstream release this library version ships as (wash shows it).
        version: HOST_VERSION.to_string(),
        ..Default::default()
    };

    let (host, shutdown) = Host::new(config).await.context("failed to start the host")?;
    tracing::info!(lattice = %args.lattice, "host started");

    tokio::select! {
        stopped = host.stopped() => { stopped.context("host stopped with an error")?; }
        _ = shutdown_signal() => { tracing::info!("signal received, stopping the host"); }
    }
    shutdown.await.context("host did not shut down cleanly")?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, so `down` (which sends SIGTERM) stops providers too.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
