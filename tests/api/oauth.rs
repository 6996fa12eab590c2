//! `/mcp` as an OAuth 2.1 resource server, against real authorization servers: the npm package
//! oauth2-mock-server (installed by `.ci/run` under `target/oauth`), started by each test on
//! loopback ports by `tests/oauth/server.mjs`.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::oauth::{OAuthSettings, ResourceServer};

use crate::mcp_support::{Recorder, TestServer, call_tool, structured};

/// The two authorization servers; stopped when dropped.
struct AuthServers {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    trusted: String,
    stranger: String,
}

impl Drop for AuthServers {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AuthServers {
    /// `None` (the test skips) when oauth2-mock-server is not installed outside CI.
    fn start() -> Option<Self> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/oauth");
        if !dir.join("node_modules/oauth2-mock-server").is_dir() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs oauth2-mock-server: npm install --prefix target/oauth oauth2-mock-server@8.2.3 (.ci/run does)"
            );
            eprintln!("oauth2-mock-server not installed under target/oauth: skipping");
            return None;
        }
        let script = std::fs::read_to_string(root.join("tests/oauth/server.mjs")).expect("script");
        let mut child = Command::new("node")
            .args(["--input-type=module", "-e", &script])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdout = child.stdout.take().expect("stdout");
        let lines = crate::cli::lines_of(stdout);
        let first: Value = serde_json::from_str(
            &lines
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("the authorization servers start"),
        )
        .expect("json");
        Some(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            trusted: first["trusted"].as_str().expect("trusted").to_owned(),
            stranger: first["stranger"].as_str().expect("stranger").to_owned(),
        })
    }

    /// A client-credentials token from `issuer` with `form` (scope, aud, client_id, ...).
    async fn token(issuer: &str, form: &[(&str, &str)]) -> String {
        let mut form = form.to_vec();
        form.push(("grant_type", "client_credentials"));
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let answer: Value = reqwest::Client::new()
            .post(format!("{issuer}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("json");
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_owned()
    }

    /// A token from the trusted server for `public` with `scope`, for `client`.
    async fn grant(&self, public: &str, scope: &str, client: &str) -> String {
        Self::token(
            &self.trusted,
            &[("scope", scope), ("aud", public), ("client_id", client)],
        )
        .await
    }

    /// Adds a signing key to the trusted server; its id.
    fn rotate(&mut self) -> String {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "rotate").expect("rotate");
        stdin.flush().expect("flush");
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("rotated");
        let v: Value = serde_json::from_str(&line).expect("json");
        v["rotated"].as_str().expect("kid").to_owned()
    }
}

/// The protected-resource metadata at `url`.
async fn metadata(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json")
}

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64");
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    v["kid"].as_str().unwrap_or_default().to_owned()
}

/// The key set is fetched again at most this often in these tests (30 s in production).
const REFRESH_GAP: std::time::Duration = std::time::Duration::from_millis(300);

/// The static token of the test's own client.
const STATIC: &str = "oauth-test-static-token-0123456789";

/// A server whose /mcp trusts `issuer`, with a static token and these tokens-file OAuth rules;
/// and its public URL.
async fn serve(issuer: &str, rules: &str) -> (TestServer, String) {
    serve_at(issuer, rules, "/mcp", &[]).await
}

/// [`serve`], with the public URL's path (`/zendesk/mcp`: behind a proxy's path prefix) and the
/// audiences to accept (none: the public URL).
async fn serve_at(
    issuer: &str,
    rules: &str,
    path: &str,
    audiences: &[&str],
) -> (TestServer, String) {
    let rules = format!("[[tokens]]\nname = \"test\"\ntoken = \"{STATIC}\"\n\n{rules}");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let public = format!(
        "http://127.0.0.1:{}{path}",
        listener.local_addr().expect("addr").port()
    );
    let mut access = crate::mcp_support::access_from_tokens_file(&rules);
    let settings = OAuthSettings::new(issuer, &public)
        .expect("settings")
        .with_audiences(audiences.iter().map(|a| a.to_string()).collect())
        .expect("audiences");
    access.resource_server = Some(std::sync::Arc::new(
        ResourceServer::new(settings).with_refresh_gap(REFRESH_GAP),
    ));
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(access),
        ..Default::default()
    };
    // Static tokens keep working beside OAuth: the test's own client presents one.
    let t = TestServer::start_on(
        listener,
        SupervisorSettings::default(),
        http,
        Some(STATIC),
        |_| {},
    )
    .await;
    (t, public)
}

/// A stateless request with `token`: the HTTP status, the `WWW-Authenticate` header, the body.
async fn post(url: &str, token: &str, method: &str, params: Value) -> (u16, String, Value) {
    let bearer = format!("Bearer {token}");
    let name = params["name"].as_str().map(str::to_owned);
    let a = crate::mcp_support::post_stateless(
        url,
        method,
        name.as_deref(),
        &[("authorization", bearer.as_str())],
        crate::mcp_support::stateless_request(method, params),
    )
    .await;
    let challenge = a
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_str(&a.body).unwrap_or(Value::String(a.body.clone()));
    (a.status, challenge, body)
}

#[tokio::test]
async fn tokens_for_this_resource_are_accepted_within_their_scopes_and_others_are_refused() {
    let Some(mut auth) = AuthServers::start() else {
        return;
    };
    let rules = "[[oauth.clients]]\nclient_id = \"rehearsal\"\nmode = \"dry-run\"\n\n\
        [[oauth.clients]]\nclient_id = \"throttled\"\nrate_limit = \"0.01:1\"\n";
    let (t, public) = serve(&auth.trusted, rules).await;
    let url = t.server.mcp_url();

    // Discovery: the metadata, at both well-known paths, names this resource and its server.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let meta = metadata(&format!("http://{}{path}", t.server.addr)).await;
        assert_eq!(meta["resource"], public.as_str(), "{meta}");
        assert_eq!(
            meta["authorization_servers"][0],
            auth.trusted.as_str(),
            "{meta}"
        );
    }
    let (status, challenge, _) = post(&url, "", "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("resource_metadata=\"http://127.0.0.1:")
            && challenge.contains("/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );

    // A reading client: it sees and calls only the read tools; a send is refused at the HTTP
    // level with the scope it would need.
    let reader = auth.grant(&public, "messaging:read", "reporting").await;
    let (status, _, listed) = post(&url, &reader, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{listed}");
    let names = crate::mcp_support::tool_names_of(&listed);
    assert!(
        names.iter().any(|n| n == "list_conversations")
            && !names.iter().any(|n| n == "send_message"),
        "{names:?}"
    );
    let conv = t.conversation_of("demo-user-01").await;
    let send = json!({"name": "send_message", "arguments": {"conversationId": conv,
        "content": {"type": "text", "text": "from an OAuth client"}}});
    let before = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    let (status, challenge, body) = post(&url, &reader, "tools/call", send.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"messaging:send\""),
        "{challenge}"
    );

    // Tokens that must not pass: for another resource, expired, unsigned, signed by a key the
    // issuer does not publish, or from another issuer. Nothing reaches the upstream.
    let other_aud = AuthServers::token(
        &auth.trusted,
        &[
            ("scope", "messaging:read messaging:send"),
            ("aud", "https://elsewhere.example.com/mcp"),
        ],
    )
    .await;
    let expired = AuthServers::token(
        &auth.trusted,
        &[
            ("scope", "messaging:read"),
            ("aud", &public),
            ("expires_in_s", "-120"),
        ],
    )
    .await;
    let foreign_key = AuthServers::token(
        &auth.stranger,
        &[
            ("scope", "messaging:read"),
            ("aud", &public),
            ("iss", &auth.trusted),
        ],
    )
    .await;
    let wrong_issuer = AuthServers::token(
        &auth.trusted,
        &[
            ("scope", "messaging:read"),
            ("aud", &public),
            ("iss", &auth.stranger),
        ],
    )
    .await;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(
            json!({"iss": auth.trusted, "aud": public, "scope": "messaging:read",
            "exp": 4_102_444_800_u64})
        )
    );
    let anonymous = AuthServers::token(
        &auth.trusted,
        &[("scope", "messaging:read"), ("aud", &public)],
    )
    .await;
    for (what, token) in [
        ("naming neither client nor subject", &anonymous),
        ("another audience", &other_aud),
        ("expired", &expired),
        ("a key the issuer does not publish", &foreign_key),
        ("another issuer", &wrong_issuer),
        ("unsigned", &unsigned),
    ] {
        let (status, challenge, body) = post(&url, token, "tools/call", send.clone()).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    let after = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    assert_eq!(
        before["POST /v2/apps/{appId}/conversations/{conversationId}/messages"],
        after["POST /v2/apps/{appId}/conversations/{conversationId}/messages"],
        "no refused call sent anything"
    );

    // A sending client (a machine token, client credentials) sends, through an MCP client.
    let sender = auth
        .grant(
            &public,
            "messaging:read messaging:write messaging:send",
            "support-bot",
        )
        .await;
    let client = TestServer::connect_as(&t.server, Recorder::default(), Some(&sender)).await;
    let sent = structured(
        "send_message",
        &call_tool(&client, "send_message", send["arguments"].clone(), None).await,
    );
    assert_eq!(sent["replayed"], false, "{sent}");

    // A client's rule in the tokens file gives it the rest of a profile: here, dry runs.
    let rehearsal = auth.grant(&public, "messaging:send", "rehearsal").await;
    let (status, _, body) = post(&url, &rehearsal, "tools/call", send.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["dryRun"], true,
        "{body}"
    );

    // Per-client limits key on client_id: any token of the client shares them.
    for n in 0..2 {
        let token = auth.grant(&public, "messaging:read", "throttled").await;
        let (status, _, _) = post(&url, &token, "tools/list", json!({})).await;
        assert_eq!(status, if n == 0 { 200 } else { 429 }, "request {n}");
    }

    // A key rotation at the authorization server: tokens signed by the new key are accepted
    // (the key set is fetched again for an unknown key).
    let new_kid = auth.rotate();
    let mut rotated = None;
    for _ in 0..10 {
        let token = auth.grant(&public, "messaging:read", "reporting").await;
        if kid(&token) == new_kid {
            rotated = Some(token);
            break;
        }
    }
    let rotated = rotated.expect("a token signed by the new key");
    // Past the bound on fetches (the foreign key made one), the key set is fetched again and
    // the new key verifies it.
    tokio::time::sleep(REFRESH_GAP).await;
    let (status, _, body) = post(&url, &rotated, "tools/list", json!({})).await;
    assert_eq!(
        status,
        200,
        "{}",
        body.to_string().chars().take(300).collect::<String>()
    );
}

/// Authorization servers shape tokens their own way: Entra ID sends `scp` as one string and
/// names the API (not its URL) in `aud`; Spring Authorization Server, Duende and UAA send
/// `scope` as a list. Behind a path prefix the metadata sits where RFC 9728 §3.1 puts it.
#[tokio::test]
async fn tokens_shaped_as_authorization_servers_shape_them_are_accepted() {
    let Some(auth) = AuthServers::start() else {
        return;
    };
    const API: &str = "api://zendesk-messaging-mcp";
    let (t, public) = serve_at(&auth.trusted, "", "/zendesk/mcp", &[API]).await;
    let url = t.server.mcp_url();
    let origin = format!("http://{}", t.server.addr);

    // The metadata at the well-known path built from the public URL's path.
    let meta_url = format!("{origin}/.well-known/oauth-protected-resource/zendesk/mcp");
    let meta = metadata(&meta_url).await;
    assert_eq!(meta["resource"], public.as_str(), "{meta}");
    let elsewhere = reqwest::get(format!(
        "{origin}/.well-known/oauth-protected-resource/other"
    ))
    .await
    .expect("answer");
    assert_eq!(elsewhere.status(), 404);

    // Without credentials: the challenge names that metadata and the scopes, and no error code.
    let (status, challenge, _) = post(&url, "", "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{meta_url}\""))
            && challenge.contains("scope=\"messaging:read messaging:write messaging:send\"")
            && !challenge.contains("error="),
        "{challenge}"
    );

    let token = |scope: &'static str, extra: &'static [(&'static str, &'static str)]| {
        let trusted = auth.trusted.clone();
        async move {
            let mut form = vec![("scope", scope), ("aud", API), ("client_id", "shapes")];
            form.extend_from_slice(extra);
            AuthServers::token(&trusted, &form).await
        }
    };
    let listed = |token: String| {
        let url = url.clone();
        async move {
            let (status, _, body) = post(&url, &token, "tools/list", json!({})).await;
            assert_eq!(status, 200, "{body}");
            crate::mcp_support::tool_names_of(&body)
        }
    };
    let sends = |names: &[String]| names.iter().any(|n| n == "send_message");
    let reads = |names: &[String]| names.iter().any(|n| n == "list_conversations");
    // Entra ID: `scp`, one space-separated string.
    let entra =
        listed(token("messaging:read messaging:send", &[("scope_claim", "scp")]).await).await;
    assert!(reads(&entra) && sends(&entra), "{entra:?}");
    // Spring, Duende, UAA: `scope` as a list.
    let spring = listed(token("messaging:read", &[("scope_form", "list")]).await).await;
    assert!(reads(&spring) && !sends(&spring), "{spring:?}");
    // Both at once: `scp` as a list.
    let both = listed(
        token(
            "messaging:send",
            &[("scope_claim", "scp"), ("scope_form", "list")],
        )
        .await,
    )
    .await;
    assert!(sends(&both) && !reads(&both), "{both:?}");

    // Only the audiences named are accepted: the public URL is not one of them here.
    let by_url = auth.grant(&public, "messaging:read", "shapes").await;
    let (status, challenge, body) = post(&url, &by_url, "tools/list", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(body.to_string().contains(API), "{body}");
}

/// Scopes named by the tokens file (`[oauth.scopes]`, as an Entra ID app registration names
/// them) are the ones the challenge and the metadata tell clients to ask for.
#[tokio::test]
async fn the_scopes_a_tokens_file_maps_are_the_ones_clients_are_told_to_ask_for() {
    let Some(auth) = AuthServers::start() else {
        return;
    };
    let rules = "[oauth.scopes]\n\"Messaging.Read\" = [\"list_conversations\"]\n";
    let (t, public) = serve(&auth.trusted, rules).await;
    let url = t.server.mcp_url();
    let (status, challenge, _) = post(&url, "", "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("scope=\"Messaging.Read\""),
        "{challenge}"
    );
    let meta = metadata(&format!(
        "http://{}/.well-known/oauth-protected-resource",
        t.server.addr
    ))
    .await;
    assert_eq!(
        meta["scopes_supported"],
        json!(["Messaging.Read"]),
        "{meta}"
    );
    let token = AuthServers::token(
        &auth.trusted,
        &[
            ("scope", "Messaging.Read"),
            ("aud", &public),
            ("client_id", "entra-app"),
            ("scope_claim", "scp"),
        ],
    )
    .await;
    let (status, _, body) = post(&url, &token, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        crate::mcp_support::tool_names_of(&body),
        vec!["list_conversations".to_owned()]
    );
}

/// Opens a 2025-11-25 session with `token`; its `Mcp-Session-Id`.
async fn open_session(url: &str, token: &str) -> String {
    let bearer = format!("Bearer {token}");
    crate::mcp_support::open_session(url, &[("authorization", bearer.as_str())]).await
}

#[tokio::test]
async fn a_session_answers_only_the_caller_that_opened_it() {
    let Some(auth) = AuthServers::start() else {
        return;
    };
    let (t, public) = serve(&auth.trusted, "").await;
    let url = t.server.mcp_url();
    let alice = auth.grant(&public, "messaging:read", "alice").await;
    let bob = auth.grant(&public, "messaging:read", "bob").await;
    let session = open_session(&url, &alice).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}).to_string();
    for (who, bearer, status) in [("bob", &bob, 403), ("alice", &alice, 200)] {
        let auth_header = format!("Bearer {bearer}");
        let a = crate::mcp_support::post_json(
            &url,
            Some("application/json, text/event-stream"),
            &[
                ("authorization", auth_header.as_str()),
                ("mcp-session-id", session.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            list.clone(),
        )
        .await;
        // Alice's own request passes the check (the transport may still want the
        // initialized notification first); Bob's never reaches it.
        if status == 403 {
            assert_eq!(a.status, 403, "{who}: {}", a.body);
            assert!(a.body.contains("another caller"), "{}", a.body);
        } else {
            assert_ne!(a.status, 403, "{who}: {}", a.body);
        }
    }
}

#[tokio::test]
async fn an_unreachable_authorization_server_is_the_servers_fault_not_the_callers() {
    let Some(auth) = AuthServers::start() else {
        return;
    };
    // A port nothing listens on, as the issuer.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port())
    };
    let (t, public) = serve(&closed, "").await;
    let token = auth.grant(&public, "messaging:read", "reporting").await;
    let (status, _, body) = post(&t.server.mcp_url(), &token, "tools/list", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.to_string().contains(&closed),
        "the authorization server's address stays in the log: {body}"
    );
}
