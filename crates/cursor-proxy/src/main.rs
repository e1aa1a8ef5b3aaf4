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
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    for key in &config.api_keys {
        redactor.add(key.expose());
    }
    if let Some(key) = &cli.redis_key {
        redactor.add(key);
    }
    if let Some(secret) = &cli.instance_secret {
        redactor.add(secret);
    }
    for (account, token) in &config.accounts {
        redactor.add(token.expose());
        for extra in [&account.refresh_token, &account.cursor_api_key]
            .into_iter()
            .flatten()
        {
            redactor.add(extra.expose());
        }
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
    tokio::select! {
        r = proxy.wait() => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    eprintln!("cursor-proxy: {msg}");
    ExitCode::FAILURE
}
