//! `broker`: the reference MQTT 3.1.1 broker.
//!
//! Exit codes: 0 after a graceful shutdown (SIGINT/SIGTERM), 1 when the
//! broker cannot start or fails while running, 2 for bad flags or settings.
//! SIGHUP reloads the password file and the ACL file, as in mosquitto.

use std::io::IsTerminal;
use std::process::ExitCode;

use broker::config::{Config, Flags, ListenerTransport};
use broker::server::Broker;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match Config::from_flags(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("broker: {e}");
            return ExitCode::from(2);
        }
    };
    let default_level = if config.verbose { "debug" } else { "info" };
    let spec = std::env::var("RUST_LOG").ok();
    tracing_subscriber::registry()
        .with(log_filter(spec.as_deref(), default_level).into_layer())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();

    let runtime = match runtime_builder().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("broker: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = error_line(&e);
            tracing::error!("{line}");
            eprintln!("broker: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Which log filter `RUST_LOG` (or the default level) asks for.
#[derive(Debug)]
enum LogFilter {
    /// Targets and levels only (`info`, `warn,broker=debug`): decided once
    /// per call site, nothing done when a span is entered.
    Static(Box<Targets>),
    /// Directives on spans or fields (`[conn{client_id=a}]=debug`), which
    /// only [`EnvFilter`] understands.
    Dynamic(Box<EnvFilter>),
}

impl LogFilter {
    fn into_layer(self) -> Box<dyn Layer<Registry> + Send + Sync> {
        match self {
            LogFilter::Static(t) => t,
            LogFilter::Dynamic(e) => e,
        }
    }
}

/// The filter for `spec` (`RUST_LOG`), or `default_level` without one or
/// with one that does not parse.
///
/// Every connection's task runs in a span (`conn`), entered and left on
/// each poll. [`EnvFilter`] read-locks one broker-wide `RwLock` on every
/// enter and exit, even with no span directives: a lock word written by
/// every core on every turn of every connection, which kept independent
/// connections on different cores from scaling (issue 15). [`Targets`]
/// does no work per span, so it is used whenever it can express `spec`.
fn log_filter(spec: Option<&str>, default_level: &str) -> LogFilter {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return match default_level.parse::<Targets>() {
            Ok(targets) => LogFilter::Static(Box::new(targets)),
            Err(_) => LogFilter::Dynamic(Box::new(EnvFilter::new(default_level))),
        };
    };
    if let Ok(targets) = spec.parse::<Targets>() {
        return LogFilter::Static(Box::new(targets));
    }
    match EnvFilter::try_new(spec) {
        Ok(filter) => LogFilter::Dynamic(Box::new(filter)),
        // As before: a `RUST_LOG` nothing can parse means the default.
        Err(_) => log_filter(None, default_level),
    }
}

/// The error chain on one line, each text once (see
/// [`credentials::describe::error_chain`]).
fn error_line(err: &anyhow::Error) -> String {
    credentials::describe::error_chain(err.chain())
}

/// The async runtime: tokio's multi-threaded scheduler with a worker per
/// CPU the process may use, or, when it may use only one (pinned with
/// `taskset`, a one-CPU container), the current-thread scheduler. With one
/// worker the multi-threaded scheduler brings no parallelism but its
/// LIFO slot and shared injection queue, which starve some tasks while newer
/// ones run: at 10,000 connects on one core the connect p99 was 14–17 ms
/// with it against 2.5 ms with the current-thread scheduler (and 18.7k
/// against 21.6k connects/s).
fn runtime_builder() -> tokio::runtime::Builder {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let broker = Broker::bind(config).await?;
    let plain = broker.plain_addr().map(|a| a.to_string());
    let tls = broker.tls_addr().map(|a| a.to_string());
    let first = |t| broker.addr_of(t).map(|a| a.to_string());
    let ws = first(ListenerTransport::WebSockets);
    let wss = first(ListenerTransport::WebSocketsTls);
    // One stable line that scripts and tests parse for the bound ports (the
    // first listener of each transport).
    tracing::info!(
        plain = %plain.as_deref().unwrap_or("off"),
        tls = %tls.as_deref().unwrap_or("off"),
        ws = %ws.as_deref().unwrap_or("off"),
        wss = %wss.as_deref().unwrap_or("off"),
        "broker ready"
    );
    let shutdown = CancellationToken::new();
    reload_on_sighup(broker.reloader())?;
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    broker.run(shutdown).await?;
    Ok(())
}

/// Reloads the password and ACL files on each SIGHUP, off the runtime's
/// threads (reading files), one reload at a time.
fn reload_on_sighup(reloader: broker::server::Reloader) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the password and ACL files");
            let reloader = reloader.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || reloader.reload()).await {
                tracing::error!(error = %e, "the reload did not finish");
            }
        }
    });
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: plain levels and targets get the filter that does no work
    /// (and takes no shared lock) when a span is entered.
    #[test]
    fn levels_and_targets_get_the_static_log_filter() {
        for spec in [None, Some(""), Some("info"), Some("warn,broker=debug")] {
            assert!(
                matches!(log_filter(spec, "info"), LogFilter::Static(_)),
                "{spec:?}"
            );
        }
        match log_filter(Some("warn,broker=debug"), "info") {
            LogFilter::Static(t) => {
                assert!(t.would_enable("broker::listener", &tracing::Level::DEBUG));
                assert!(!t.would_enable("redb", &tracing::Level::INFO));
            }
            other => panic!("expected a static filter, got {other:?}"),
        }
        assert!(matches!(log_filter(None, "debug"), LogFilter::Static(_)));
    }

    /// Span and field directives still work, through `EnvFilter`; a spec
    /// nothing parses falls back to the default level.
    #[test]
    fn span_directives_get_the_dynamic_log_filter() {
        assert!(matches!(
            log_filter(Some("[conn{client_id=a}]=debug"), "info"),
            LogFilter::Dynamic(_)
        ));
        match log_filter(Some("=no=level="), "debug") {
            LogFilter::Static(t) => assert_eq!(
                t.default_level(),
                Some(tracing_subscriber::filter::LevelFilter::DEBUG)
            ),
            other => panic!("expected the default level, got {other:?}"),
        }
    }

    /// Issue 12: "creating data directory D: No such file or directory (os
    /// error 2): No such file or directory (os error 2)".
    #[test]
    fn an_os_error_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let text = io.to_string();
        let err = anyhow::Error::new(io).context(format!("creating data directory d: {text}"));
        assert_eq!(
            error_line(&err),
            format!("creating data directory d: {text}")
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&err), "outer: inner");
    }
}
