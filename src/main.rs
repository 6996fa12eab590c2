//! The command line: parse, load configuration, run one subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use zendesk_messaging_mcp::config::{Config, ConfigFlags};
use zendesk_messaging_mcp::simulator::{self, SimConfig, SimulatorArgs};

/// An MCP server for Zendesk Messaging (Sunshine Conversations API v2), with a spec-faithful
/// simulator of that API.
#[derive(Debug, Parser)]
#[command(name = "zendesk-messaging-mcp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Sunshine Conversations simulator
    Simulator(SimulatorArgs),
    /// Check the configuration and print it, secrets redacted
    Config(ConfigFlags),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Config(flags) => match Config::load(flags) {
            Ok(config) => {
                println!("{config}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Simulator(args) => {
            let config = match SimConfig::try_from(args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("simulator: {e}");
                    return ExitCode::from(2);
                }
            };
            let running = match simulator::start(config.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("simulator: cannot listen on {}: {e}", config.bind);
                    return ExitCode::from(1);
                }
            };
            println!("{}", simulator::banner(&running, &config));
            if tokio::signal::ctrl_c().await.is_err() {
                eprintln!("simulator: cannot wait for Ctrl-C; stopping");
            }
            running.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
