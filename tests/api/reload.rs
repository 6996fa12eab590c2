//! Settings edited without a restart: the settings file and the tokens file re-read when they
//! change and on SIGHUP, through MCP over HTTP and the command line.

use std::process::Stdio;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::live::{Live, Sources};
use zendesk_messaging_mcp::settings::{self, Given};

use crate::mcp_support::{Recorder, TestServer, call_tool, structured};
use crate::support::eventually;

const BOT: &str = "reload-bot-token-0123456789";
const NEW: &str = "reload-new-token-0123456789";

struct Files {
    dir: std::path::PathBuf,
}

impl Files {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zmcp-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` whole (through a rename, as an editor or a ConfigMap update does).
    fn write(&self, name: &str, text: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, self.path(name)).expect("rename");
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The settings' sources for a test server: what is `given`, with the simulator's timeout.
fn sources(given: Given) -> Sources {
    Sources {
        given,
        env: Default::default(),
        fixed_timeout: Some(std::time::Duration::from_secs(30)),
        known_tools: zendesk_messaging_mcp::mcp::ZendeskMcp::tool_names(),
        resource_server: None,
    }
}

fn tokens(bot_access: &str, extra: &str) -> String {
    format!("[[tokens]]\nname = \"bot\"\ntoken = \"{BOT}\"\naccess = \"{bot_access}\"\n{extra}")
}

async fn tool_names(
    client: &rmcp::service::RunningService<rmcp::RoleClient, Recorder>,
) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[tokio::test]
async fn edited_files_apply_to_new_calls_tell_sessions_and_an_invalid_one_changes_nothing() {
    let files = Files::new("live");
    files.write(
        "settings.toml",
        "server_name = \"acme-support\"\ninstructions = \"Escalate refunds over 100 EUR.\"\nrate_limit = \"40:40\"\n",
    );
    files.write("tokens.toml", &tokens("read-only", ""));
    let sources = sources(
        Given::default()
            .with(
                &settings::CONFIG,
                files.path("settings.toml").display().to_string(),
            )
            .with(
                &settings::TOKENS_FILE,
                files.path("tokens.toml").display().to_string(),
            ),
    );
    let (live, pinned) = Live::from_sources(sources).expect("valid settings");
    assert!(pinned.is_empty(), "{pinned:?}");
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: live.get().access.clone(),
        live: Some(live.clone()),
        ..Default::default()
    };
    let mut settings = SupervisorSettings::default();
    settings.limits.rate = live.get().rate.per_second;
    settings.limits.burst = live.get().rate.burst;
    let t = TestServer::start_full(settings, http, Some(BOT), |_| {}).await;
    // What the file says the server is.
    let info = t.client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("acme-support")
    );
    assert!(
        info.instructions.as_deref().is_some_and(
            |i| i.contains("send_message") && i.ends_with("Escalate refunds over 100 EUR.")
        ),
        "{:?}",
        info.instructions
    );
    assert!(
        !tool_names(&t.client)
            .await
            .contains(&"send_message".to_owned())
    );

    // The tokens file changes: the bot may write now, a new token works, the session is told.
    files.write(
        "tokens.toml",
        &tokens(
            "read-write",
            &format!("\n[[tokens]]\nname = \"new\"\ntoken = \"{NEW}\"\n"),
        ),
    );
    eventually("the bot's session hears its tool list changed", || async {
        t.recorder.tool_list_changes.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(
        tool_names(&t.client)
            .await
            .contains(&"send_message".to_owned())
    );
    let newcomer = TestServer::connect_as(&t.server, Recorder::default(), Some(NEW)).await;
    let r = call_tool(&newcomer, "list_switchboards", json!({}), None).await;
    structured("list_switchboards", &r);

    // The settings file changes: the upstream budget follows, for calls from now on.
    files.write(
        "settings.toml",
        "server_name = \"acme-support\"\nrate_limit = \"2:2\"\n",
    );
    eventually("the budget is reshaped", || async {
        t.server.actors.budget.rate() <= 2.0
    })
    .await;
    let renamed = TestServer::connect_as(&t.server, Recorder::default(), Some(BOT)).await;
    let info = renamed.peer_info().expect("server info");
    assert!(
        !info
            .instructions
            .as_deref()
            .unwrap_or_default()
            .contains("Escalate"),
        "the operator's words are gone with the key"
    );

    // An invalid tokens file (a token too short) keeps the settings in force.
    let before = format!("{:?}", live.get().access);
    files.write(
        "tokens.toml",
        "[[tokens]]\nname = \"bot\"\ntoken = \"short\"\n",
    );
    let metrics = format!("http://{}/metrics", t.server.addr);
    let invalid = || async {
        let text = reqwest::get(&metrics)
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find(|l| {
                l.starts_with("mcp_server_config_reloads_total")
                    && l.contains("outcome=\"invalid\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    eventually("the invalid file is counted", || async {
        invalid().await > 0.0
    })
    .await;

    assert_eq!(format!("{:?}", live.get().access), before);
    let r = call_tool(&newcomer, "list_switchboards", json!({}), None).await;
    structured("list_switchboards", &r);
    // Emptying the tokens file would open /mcp to anyone: a reload never does that.
    let refused = invalid().await;
    files.write("tokens.toml", "");
    eventually("the empty tokens file is refused", || async {
        invalid().await > refused
    })
    .await;
    assert!(live.get().access.requires_tokens(), "the tokens stay");
    assert_eq!(format!("{:?}", live.get().access), before);
}

#[test]
fn sighup_rereads_the_files_and_a_flag_pins_what_it_sets() {
    let files = Files::new("cli");
    files.write(
        "settings.toml",
        "read_only = false\nserver_name = \"before\"\n",
    );
    let settings = files.path("settings.toml");
    let args = [
        std::ffi::OsStr::new("--read-only"),
        std::ffi::OsStr::new("--config"),
        settings.as_os_str(),
    ];
    let (mut child, banner, _lines) =
        crate::cli::serve_simulator("127.0.0.1:0", &args, Stdio::piped());
    let url = crate::cli::banner_field(&banner, "MCP endpoint:");
    let stderr = child.stderr.take().expect("stderr");
    let rx = crate::cli::lines_of(stderr);
    let until = |wanted: &str| -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = String::new();
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(wanted) {
                    return seen;
                }
            }
        }
        panic!("never logged {wanted:?}; saw:\n{seen}");
    };
    until("read_only in the settings file is not reloadable: --read-only sets it");
    files.write(
        "settings.toml",
        "read_only = false\nserver_name = \"after\"\n",
    );
    until("settings reloaded");
    crate::cli::signal(child.id(), "HUP");
    let logged = until("nothing changed");
    assert!(logged.contains("SIGHUP"), "{logged}");
    // The flag still bounds every caller after the reloads.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let answer: Value = runtime
        .block_on(crate::mcp_support::post_stateless(
            &url,
            "tools/list",
            None,
            &[],
            crate::mcp_support::stateless_request("tools/list", json!({})),
        ))
        .json();
    let _ = child.kill();
    let _ = child.wait();
    let names = crate::mcp_support::tool_names_of(&answer);
    assert!(
        !names.iter().any(|n| n == "send_message"),
        "--read-only still holds: {names:?}"
    );
}

/// A client that opens a second `GET` stream on its session (a reconnect after a proxy dropped
/// the first without a word, with or without the last event id it saw) gets the live
/// notifications there: the newest stream replaces the old one, which ends.
#[tokio::test]
async fn a_second_stream_on_a_session_replaces_the_first_and_gets_the_notifications() {
    let files = Files::new("streams");
    files.write("tokens.toml", &tokens("read-only", ""));
    let sources = sources(Given::default().with(
        &settings::TOKENS_FILE,
        files.path("tokens.toml").display().to_string(),
    ));
    let (live, _) = Live::from_sources(sources).expect("valid settings");
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: live.get().access.clone(),
        live: Some(live.clone()),
        ..Default::default()
    };
    let t = TestServer::start_full(SupervisorSettings::default(), http, Some(BOT), |_| {}).await;
    let url = t.server.mcp_url();
    let bearer = format!("Bearer {BOT}");
    let session =
        crate::mcp_support::open_session(&url, &[("authorization", bearer.as_str())]).await;
    let headers = [
        ("authorization", bearer.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let stream = |last_event: Option<&str>| {
        let mut req = reqwest::Client::new()
            .get(&url)
            .header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(id) = last_event {
            req = req.header("last-event-id", id);
        }
        req.send()
    };
    let ends = |mut old: reqwest::Response| async move {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while let Ok(Some(_)) = old.chunk().await {}
        })
        .await
        .is_ok()
    };
    let first = stream(None).await.expect("first stream");
    assert_eq!(first.status(), 200);
    let replacing = stream(None).await.expect("second stream");
    assert_eq!(replacing.status(), 200);
    assert!(ends(first).await, "the first stream runs beside the second");
    // A reconnect as an EventSource makes it, with the last event id it saw (the stream's
    // priming event is `0`), replaces the stream too.
    let mut second = stream(Some("0")).await.expect("a reconnect");
    assert_eq!(second.status(), 200);
    assert!(
        ends(replacing).await,
        "the stream runs beside the reconnect"
    );
    // A notification for the session goes to the second.
    files.write("tokens.toml", &tokens("read-write", ""));
    live.reload(&t.server.actors, "test")
        .await
        .expect("reloaded");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut seen = String::new();
        while let Ok(Some(chunk)) = second.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "the second stream hears the notification");
}
