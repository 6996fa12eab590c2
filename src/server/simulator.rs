//! `--simulator`: the server wired to an embedded simulator with the demo world.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{HttpOptions, RunningServer, WEBHOOK_PATH, serve_with};
use crate::actors::SupervisorSettings;
use crate::config::Config;
use crate::error::CallError;
use crate::secret::Secret;
use crate::sunco::auth::Scope;

/// A server wired to an embedded simulator (the `--simulator` flag).
pub struct WithSimulator {
    pub server: RunningServer,
    pub simulator: crate::simulator::RunningSimulator,
    pub config: Config,
}

/// The configuration that points the server at a simulator at `api_url` with the demo keys.
pub fn simulator_config(api_url: &str) -> Result<Config, CallError> {
    use crate::simulator::seed;
    let api_url = crate::config::parse_api_url(api_url, "")
        .map_err(|e| CallError::Internal(e.to_string()))?;
    Ok(Config {
        app_id: seed::DEFAULT_APP_ID.to_owned(),
        key_id: seed::DEFAULT_KEY_ID.to_owned(),
        key_secret: Secret::new(seed::DEFAULT_KEY_SECRET),
        key_secret_file: None,
        scope: Scope::App,
        auth: crate::config::AuthMode::Jwt,
        api_url,
        webhook_secret: Some(Secret::new(SIMULATOR_WEBHOOK_SECRET)),
        timeout: Duration::from_secs(crate::config::DEFAULT_TIMEOUT_SECS),
        jwt_lifetime: Duration::from_secs(crate::config::DEFAULT_JWT_LIFETIME_SECS),
    })
}

/// The webhook secret shared by the server and its embedded simulator.
pub const SIMULATOR_WEBHOOK_SECRET: &str = "sim-webhook-secret";

/// Binds `listener` for the server, starts the demo simulator on another loopback port with its
/// webhooks aimed at the server's webhook route, and serves.
pub async fn serve_with_simulator(
    listener: TcpListener,
    settings: SupervisorSettings,
    deadline: Option<Duration>,
    http: HttpOptions,
) -> Result<WithSimulator, CallError> {
    use crate::simulator::{self, SimConfig, seed::Seed};
    let addr = listener
        .local_addr()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let mut sim_config = SimConfig::local(Seed::Demo);
    sim_config.webhook_url = Some(format!("http://{host}{WEBHOOK_PATH}"));
    sim_config.webhook_secret = Secret::new(SIMULATOR_WEBHOOK_SECRET);
    let simulator = simulator::start(sim_config)
        .await
        .map_err(|e| CallError::Internal(format!("cannot start the simulator: {e}")))?;
    let mut config = simulator_config(&simulator.base_url())?;
    if let Some(d) = deadline {
        config.timeout = d;
    }
    let server = serve_with(listener, &config, settings, http).await?;
    // The server listens: the demo world's history reaches it as SunCo would have told it, so
    // the index and the work queue know the customers waiting for a reply from the start.
    simulator.tell_history();
    Ok(WithSimulator {
        server,
        simulator,
        config,
    })
}
