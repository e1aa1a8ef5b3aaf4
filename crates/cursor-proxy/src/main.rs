//! The `cursor-proxy` binary: `cargo run --release -p cursor-proxy`.

use std::process::ExitCode;

use clap::Parser as _;
use cursor_proxy::Proxy;
use cursor_proxy::ops::config::{Cli, Config};
use cursor_proxy::ops::logging::Redactor;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let redactor = Redactor::new();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(redactor.writer(std::io::stderr))
        .init();
    if let Some(command) = &cli.command {
        return match cursor_proxy::ops::cli::run(command, cli.accounts_file.as_deref()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("cursor-proxy: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    for secret in cursor_proxy::ops::secrets(&config) {
        redactor.add(secret.expose());
    }
    if let Some(key) = &cli.redis_key {
        redactor.add(key);
    }
    if let Some(secret) = &cli.instance_secret {
        redactor.add(secret);
    }
    println!("state: {}", config.state.describe());
    let proxy = match Proxy::start(config).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if proxy.state().auth.is_open() {
        println!(
            "cursor-proxy on http://{} (embedded mock backend; no key configured: any key is accepted on this loopback address)",
            proxy.addr()
        );
    } else {
        println!(
            "cursor-proxy on http://{} (upstream: {})",
            proxy.addr(),
            proxy.state().upstream_label
        );
    }
    println!("try:\n  {}", proxy.curl_line());
    // SIGHUP and `POST /admin/v1/reload` read the same sources again; a new secret is
    // registered with the redactor before it can appear anywhere.
    let reload_redactor = redactor.clone();
    proxy.state().ops.set_config_source(Box::new(move || {
        let config = Config::load(&cli).map_err(|e| chain(&e))?;
        for secret in cursor_proxy::ops::secrets(&config) {
            reload_redactor.add(secret.expose());
        }
        Ok(config)
    }));
    match cursor_proxy::ops::lifecycle::run(proxy).await {
        cursor_proxy::ops::lifecycle::Exit::Drained => ExitCode::SUCCESS,
        cursor_proxy::ops::lifecycle::Exit::Failed(e) => fail(&e),
        _ => ExitCode::FAILURE,
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("cursor-proxy: {}", chain(e));
    ExitCode::FAILURE
}
