//! `cargo run -p cursor-mock -- [--listen 127.0.0.1:4000] [--tls] [--scenario NAME]`: serves the
//! mock Cursor backend until interrupted.

use std::net::SocketAddr;
use std::process::ExitCode;

use cursor_mock::{MockServer, Scenario, names};

const USAGE: &str = "usage: cursor-mock [--listen ADDR] [--tls] [--scenario NAME]

  --listen ADDR     address to bind (default 127.0.0.1:4000; port 0 picks a free one)
  --tls             serve TLS with a generated test CA (its PEM is printed) instead of h2c
  --scenario NAME   default scenario for requests that select none (default mock-default)

Clients select a scenario per request with the x-mock-scenario header or by using its name as
the model id.";

struct Args {
    listen: SocketAddr,
    tls: bool,
    scenario: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
        tls: false,
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
        let mock = match MockServer::builder()
            .scenario(scenario)
            .listen(args.listen)
            .tls(args.tls)
            .start()
            .await
        {
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
        assert!(!default.tls);
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--what"]).is_err());
        assert_eq!(args(&["--help"]).err().as_deref(), Some(""));
    }
}
