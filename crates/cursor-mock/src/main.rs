//! `cargo run -p cursor-mock -- [--listen 127.0.0.1:4000] [--tls] [--http1-only]
//! [--http2-config VALUE] [--scenario NAME]`: serves the mock Cursor backend until interrupted.

use std::net::SocketAddr;
use std::process::ExitCode;

use cursor_mock::{MockServer, Scenario, names};
use cursor_proto::aiserver::v1::Http2Config;

const USAGE: &str =
    "usage: cursor-mock [--listen ADDR] [--tls] [--http1-only] [--http2-config VALUE]
                   [--scenario NAME]

  --listen ADDR         address to bind (default 127.0.0.1:4000; port 0 picks a free one)
  --tls                 serve TLS with a generated test CA (its PEM is printed) instead of h2c
  --http1-only          serve HTTP/1.1 only (no h2 in ALPN, no h2c); the server config then
                        says force-all-disabled unless --http2-config says otherwise
  --http2-config VALUE  what GetServerConfig answers in http2_config: unspecified,
                        force-all-disabled, force-all-enabled (the default),
                        force-bidi-disabled or force-bidi-enabled
  --scenario NAME       default scenario for requests that select none (default mock-default)

Clients select a scenario per request with the x-mock-scenario header or by using its name as
the model id.";

struct Args {
    listen: SocketAddr,
    tls: bool,
    http1_only: bool,
    http2_config: Option<Http2Config>,
    scenario: String,
}

/// An `Http2Config` from its flag spelling (the enum name in kebab case).
fn http2_config(value: &str) -> Result<Http2Config, String> {
    let name = format!(
        "HTTP2_CONFIG_{}",
        value.to_ascii_uppercase().replace('-', "_")
    );
    Http2Config::from_str_name(&name).ok_or_else(|| format!("unknown --http2-config {value:?}"))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
        tls: false,
        http1_only: false,
        http2_config: None,
        scenario: names::DEFAULT.to_owned(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                parsed.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value:?}: {e}"))?;
            }
            "--tls" => parsed.tls = true,
            "--http1-only" => parsed.http1_only = true,
            "--http2-config" => {
                let value = args.next().ok_or("--http2-config needs a value")?;
                parsed.http2_config = Some(http2_config(&value)?);
            }
            "--scenario" => parsed.scenario = args.next().ok_or("--scenario needs a name")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(scenario) = Scenario::named(&args.scenario) else {
        eprintln!(
            "error: unknown scenario {:?}; known: {}",
            args.scenario,
            names::ALL.join(", ")
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut builder = MockServer::builder()
            .scenario(scenario)
            .listen(args.listen)
            .tls(args.tls)
            .http1_only(args.http1_only);
        if let Some(config) = args.http2_config {
            builder = builder.http2_config(config);
        }
        let mock = match builder.start().await {
            Ok(mock) => mock,
            Err(e) => {
                eprintln!("error: cannot start on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        println!("cursor-mock serving on {}", mock.url());
        if let Some(pem) = mock.ca_certificate_pem() {
            println!("test CA certificate:\n{pem}");
        }
        println!("scenarios: {}", names::ALL.join(", "));
        match tokio::signal::ctrl_c().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: waiting for ctrl-c: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_parse() {
        let parsed = args(&[
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--scenario",
            "mock-flood",
        ])
        .expect("ok");
        assert_eq!(parsed.listen.port(), 0);
        assert!(parsed.tls);
        assert_eq!(parsed.scenario, "mock-flood");
        let default = args(&[]).expect("ok");
        assert_eq!(default.listen.port(), 4000);
        assert!(!default.tls && !default.http1_only && default.http2_config.is_none());
        let h1 = args(&["--http1-only", "--http2-config", "force-bidi-disabled"]).expect("ok");
        assert!(h1.http1_only);
        assert_eq!(h1.http2_config, Some(Http2Config::ForceBidiDisabled));
        let unspecified = args(&["--http2-config", "unspecified"]).expect("ok");
        assert_eq!(unspecified.http2_config, Some(Http2Config::Unspecified));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--what"]).is_err());
        assert!(args(&["--http2-config"]).is_err());
        assert!(args(&["--http2-config", "sometimes"]).is_err());
        assert_eq!(args(&["--help"]).err().as_deref(), Some(""));
    }
}
