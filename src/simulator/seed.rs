//! The worlds the simulator starts with.
//!
//! `empty`: one app and its keys. `demo`: a realistic app — web, ios, android, messenger and
//! whatsapp channels, a bot (custom integration) and the Zendesk agent workspace linked by
//! `next` on an enabled switchboard, twenty users `demo-user-01` … `demo-user-20` on known
//! channels, each with a default conversation and history; users 01 and 02 have more than 100
//! messages, so paging back through history matters.
//!
//! Which user sits on which channel (so a delivery failure can be produced on purpose; the
//! rules are in [`super::delivery`]):
//!
//! | users | primary channel | other clients |
//! | --- | --- | --- |
//! | 01, 06, 11, 16 | web | — |
//! | 02, 07, 12, 17 | ios | web |
//! | 03, 08, 13, 18 | messenger | — |
//! | 04, 09, 14, 19 | whatsapp | — |
//! | 05, 10, 15, 20 | android | messenger |

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::state::{App, Client, ConversationRecord, Key, UserRecord, World};
use crate::secret::Secret;
use crate::sunco::auth::Scope;
use crate::sunco::ids::IdGenerator;
use crate::sunco::ids::format_timestamp;
use crate::sunco::wire::{
    Author, AuthorType, Content, ConversationType, Identity, Integration, Message, Profile, Source,
    Switchboard, SwitchboardIntegration, User, Webhook, event_type,
};

/// Default credentials: stable, so that the README's examples work unchanged.
pub const DEFAULT_APP_ID: &str = "5f0c1e2d3b4a596877889900";
pub const DEFAULT_KEY_ID: &str = "app_5f0c1e2d3b4a596877889901";
pub const DEFAULT_KEY_SECRET: &str = "sim-app-secret";
pub const ACCOUNT_KEY_ID: &str = "act_5f0c1e2d3b4a596877889902";
pub const ACCOUNT_KEY_SECRET: &str = "sim-account-secret";
pub const INTEGRATION_KEY_ID: &str = "int_5f0c1e2d3b4a596877889903";
pub const INTEGRATION_KEY_SECRET: &str = "sim-integration-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Seed {
    Demo,
    Empty,
}

/// What a seed needs to know.
#[derive(Debug, Clone)]
pub(crate) struct SeedParams {
    pub(crate) app_id: String,
    pub(crate) key_id: String,
    pub(crate) key_secret: Secret,
    /// Where the app's webhook integration sends events, with its secret.
    pub(crate) webhook: Option<(String, Secret)>,
}

/// Names of the demo's integrations, for tests and docs.
pub(crate) const CHANNELS: &[(&str, &str)] = &[
    ("web", "Web Messenger"),
    ("ios", "iOS SDK"),
    ("android", "Android SDK"),
    ("messenger", "Facebook Messenger"),
    ("whatsapp", "WhatsApp"),
];

pub(crate) fn build(seed: Seed, p: &SeedParams) -> World {
    let mut world = World::new();
    let app = App::new(p.app_id.clone(), "Demo App");
    world.keys.insert(
        p.key_id.clone(),
        Key {
            id: p.key_id.clone(),
            secret: p.key_secret.clone(),
            scope: Scope::of_key_id(&p.key_id).unwrap_or(Scope::App),
            app_id: Some(p.app_id.clone()),
            integration_id: None,
        },
    );
    world.keys.insert(
        ACCOUNT_KEY_ID.to_owned(),
        Key {
            id: ACCOUNT_KEY_ID.to_owned(),
            secret: Secret::new(ACCOUNT_KEY_SECRET),
            scope: Scope::Account,
            app_id: None,
            integration_id: None,
        },
    );
    world.apps.insert(p.app_id.clone(), app);
    // The custom integration that carries the webhook (the MCP server's, when wired), with an
    // integration key of its own.
    let hook_integration = add_integration(
        &mut world,
        &p.app_id,
        "custom",
        "MCP server webhooks",
        Map::new(),
    );
    world.keys.insert(
        INTEGRATION_KEY_ID.to_owned(),
        Key {
            id: INTEGRATION_KEY_ID.to_owned(),
            secret: Secret::new(INTEGRATION_KEY_SECRET),
            scope: Scope::Integration,
            app_id: Some(p.app_id.clone()),
            integration_id: Some(hook_integration.clone()),
        },
    );
    // A custom integration always has exactly one webhook. Unwired, it points nowhere useful and
    // subscribes to nothing, so the simulator never calls out.
    let (target, secret, triggers) = match &p.webhook {
        Some((url, secret)) => (
            url.clone(),
            secret.expose().to_owned(),
            // What the server reads.
            event_type::READ_BY_SERVER
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
        ),
        None => (
            "https://mcp.example.com/webhooks/sunco".to_owned(),
            format!("{:032x}", rand::random::<u128>()),
            Vec::new(),
        ),
    };
    let hook_id = world.ids.next();
    if let Some(app) = world.apps.get_mut(&p.app_id) {
        app.webhooks.insert(
            hook_integration.clone(),
            vec![Webhook {
                id: hook_id,
                version: "v2".to_owned(),
                target,
                triggers,
                secret: Some(secret),
                include_full_user: false,
                include_full_source: false,
            }],
        );
    }
    if seed == Seed::Demo {
        demo(&mut world, &p.app_id);
    }
    world
}

fn add_integration(
    world: &mut World,
    app_id: &str,
    kind: &str,
    name: &str,
    extra: Map<String, Value>,
) -> String {
    let id = world.ids.next();
    if let Some(app) = world.apps.get_mut(app_id) {
        app.integrations.insert(
            id.clone(),
            Integration {
                id: id.clone(),
                kind: kind.to_owned(),
                status: "active".to_owned(),
                display_name: Some(name.to_owned()),
                extra,
            },
        );
    }
    id
}

const GIVEN: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
    "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomás",
];
const SURNAMES: &[&str] = &[
    "Silva", "Okafor", "Martin", "Patel", "Eze", "Haddad", "Berg", "Sato", "Petrov", "Wang",
    "Mensah", "Vogel", "Ruiz", "Karimi", "Aziz", "Rao", "Byrne", "Costa", "Lund", "Ortega",
];
const LINES: &[(&str, &str)] = &[
    ("user", "Hi, my order hasn't arrived yet."),
    (
        "business",
        "Sorry to hear that! Could you share your order number?",
    ),
    ("user", "It's #A-10492."),
    (
        "business",
        "Thanks. I can see it left our warehouse yesterday.",
    ),
    ("user", "Can I change the delivery address?"),
    (
        "business",
        "Yes, until it reaches the local depot. What is the new address?",
    ),
    ("user", "Never mind, I'll be home. Thanks!"),
    ("business", "You're welcome. Anything else I can help with?"),
];

fn demo(world: &mut World, app_id: &str) {
    let channel_ids = channels(world, app_id);
    let bot = add_integration(world, app_id, "custom", "Support bot", Map::new());
    let bot_hook = world.ids.next();
    let ids = &world.ids;
    let Some(app) = world.apps.get_mut(app_id) else {
        return;
    };
    // A custom integration always has one webhook. The bot's points at a host the simulator
    // must never call, so it subscribes to no trigger.
    app.webhooks.insert(
        bot.clone(),
        vec![Webhook {
            id: bot_hook,
            version: "v2".to_owned(),
            target: "https://bot.example.com/sunco".to_owned(),
            triggers: Vec::new(),
            secret: Some("bot-webhook-secret".to_owned()),
            include_full_user: false,
            include_full_source: false,
        }],
    );
    let (sb_bot, sb_agent) = routing(app, ids, bot);
    // The demo world's history is its last day: conversation n starts n hours after this and
    // its messages are three minutes apart, so every message lies between 21 hours and an
    // hour ago, within what the server's index keeps by default (24 hours).
    let start = OffsetDateTime::now_utc() - Duration::hours(22);
    for n in 1..=20usize {
        let at = start + Duration::hours(n as i64);
        let (primary, other): (&str, Option<&str>) = match n % 5 {
            1 => ("web", None),
            2 => ("ios", Some("web")),
            3 => ("messenger", None),
            4 => ("whatsapp", None),
            _ => ("android", Some("messenger")),
        };
        let record = demo_user(ids, n, at, [Some(primary), other], &channel_ids);
        let user_id = record.user.id.clone();
        let name = format!("{} {}", GIVEN[n - 1], SURNAMES[n - 1]);
        app.users.insert(user_id.clone(), record);
        let Some(participant) = app.participant_for(ids, &user_id) else {
            continue;
        };
        let conv_id = ids.id_at(at);
        let mut conv = app.new_conversation(conv_id.clone(), ConversationType::Personal);
        conv.is_default = true;
        conv.created_at = Some(format_timestamp(at));
        // Every third conversation has been handed to the agent workspace already.
        if n % 3 == 0 {
            conv.active_switchboard_integration = Some(sb_agent.as_ref_on_conversation());
        } else {
            conv.active_switchboard_integration = Some(sb_bot.as_ref_on_conversation());
        }
        let count = match n {
            1 => 250,
            2 => 130,
            _ => 4 + (n % 7) * 3,
        };
        let source = Source::of(primary, Some(channel_ids[primary].clone()));
        let messages = demo_messages(ids, at, count, (&user_id, &name), source);
        conv.last_updated_at = messages
            .values()
            .last()
            .map(|m| m.received.clone())
            .or(conv.created_at.clone());
        app.conversations.insert(
            conv_id,
            ConversationRecord {
                conversation: conv,
                participants: vec![participant],
                messages,
                business_typing: false,
            },
        );
    }
}

/// The demo's channel integrations, by type.
fn channels(world: &mut World, app_id: &str) -> BTreeMap<&'static str, String> {
    let mut channel_ids = BTreeMap::new();
    for (kind, name) in CHANNELS {
        let mut extra = Map::new();
        match *kind {
            "web" => {
                extra.insert("brandColor".into(), json!("65758e"));
                extra.insert("businessName".into(), json!("Demo Shop"));
                extra.insert("originWhitelist".into(), json!(null));
            }
            "messenger" => {
                // The spec marks the page access token required but nullable; the simulator
                // never echoes a channel secret.
                extra.insert("pageAccessToken".into(), json!(null));
                extra.insert("appId".into(), json!("1234567890"));
                extra.insert("pageId".into(), json!(10_987_654_321_u64));
                extra.insert("pageName".into(), json!("Demo Shop"));
            }
            "whatsapp" => {
                extra.insert("phoneNumber".into(), json!("+15145550100"));
                extra.insert("hsmFallbackLanguage".into(), json!("en_US"));
            }
            _ => {}
        }
        let id = add_integration(world, app_id, kind, name, extra);
        channel_ids.insert(*kind, id);
    }
    channel_ids
}

/// The switchboard: the bot (the default) hands over to the agent workspace. Returns the bot's
/// switchboard integration and the agent workspace's.
fn routing(
    app: &mut App,
    ids: &IdGenerator,
    bot: String,
) -> (SwitchboardIntegration, SwitchboardIntegration) {
    let agent_ws_integration = ids.next();
    let sb_agent = SwitchboardIntegration {
        id: ids.next(),
        name: "zd-agentWorkspace".to_owned(),
        integration_id: agent_ws_integration,
        integration_type: "zd:agentWorkspace".to_owned(),
        deliver_standby_events: false,
        next_switchboard_integration_id: None,
        message_history_count: None,
    };
    let sb_bot = SwitchboardIntegration {
        id: ids.next(),
        name: "bot".to_owned(),
        integration_id: bot,
        integration_type: "custom".to_owned(),
        deliver_standby_events: false,
        next_switchboard_integration_id: Some(sb_agent.id.clone()),
        message_history_count: Some(10),
    };
    app.switchboard = Some(Switchboard {
        id: ids.next(),
        enabled: true,
        default_switchboard_integration_id: Some(sb_bot.id.clone()),
    });
    app.switchboard_integrations
        .insert(sb_agent.id.clone(), sb_agent.clone());
    app.switchboard_integrations
        .insert(sb_bot.id.clone(), sb_bot.clone());
    (sb_bot, sb_agent)
}

/// Demo user `n` (signed up at `at`) with a client on each of `channels`.
fn demo_user(
    ids: &IdGenerator,
    n: usize,
    at: OffsetDateTime,
    channels: [Option<&str>; 2],
    channel_ids: &BTreeMap<&'static str, String>,
) -> UserRecord {
    let client_kind = |ch: &str| {
        match ch {
            "web" | "ios" | "android" => "sdk",
            other => other,
        }
        .to_owned()
    };
    let clients: Vec<Client> = channels
        .into_iter()
        .flatten()
        .map(|ch| Client {
            id: ids.id_at(at),
            kind: client_kind(ch),
            platform: ch.to_owned(),
            integration_id: channel_ids[ch].clone(),
        })
        .collect();
    let given = GIVEN[n - 1];
    let surname = SURNAMES[n - 1];
    let ascii = |s: &str| s.to_lowercase().replace('é', "e").replace('á', "a");
    let email = format!("{}.{}@example.org", ascii(given), ascii(surname));
    let user_id = ids.id_at(at);
    let mut metadata = Map::new();
    metadata.insert(
        "tier".into(),
        json!(if n.is_multiple_of(4) {
            "gold"
        } else {
            "standard"
        }),
    );
    let user = User {
        id: user_id,
        external_id: Some(format!("demo-user-{n:02}")),
        zendesk_id: None,
        brand_id: None,
        authenticated: n.is_multiple_of(2),
        signed_up_at: Some(format_timestamp(at)),
        to_be_retained: None,
        profile: Profile {
            given_name: Some(given.to_owned()),
            surname: Some(surname.to_owned()),
            email: Some(email.clone()),
            avatar_url: None,
            locale: Some(
                if n.is_multiple_of(3) {
                    "fr-CA"
                } else {
                    "en-US"
                }
                .to_owned(),
            ),
        },
        metadata,
        identities: if n.is_multiple_of(2) {
            vec![Identity {
                kind: "email".to_owned(),
                value: email,
                verification: "verified".to_owned(),
            }]
        } else {
            Vec::new()
        },
    };
    UserRecord { user, clients }
}

/// `count` messages from `at` on, three minutes apart: the user (`(id, name)`, writing through
/// `source`) and the bot take turns with [`LINES`].
fn demo_messages(
    ids: &IdGenerator,
    at: OffsetDateTime,
    count: usize,
    (user_id, name): (&str, &str),
    source: Source,
) -> BTreeMap<String, Message> {
    let mut messages = BTreeMap::new();
    for i in 0..count {
        let when = at + Duration::minutes(i as i64 * 3 + 1);
        let (who, text) = LINES[i % LINES.len()];
        let mut author = Author::business();
        if who == "user" {
            author.kind = AuthorType::User;
            author.user_id = Some(user_id.to_owned());
            author.display_name = Some(name.to_owned());
        } else {
            author.display_name = Some("Demo Shop".to_owned());
            author.subtypes = vec!["bot".to_owned()];
        }
        let id = ids.id_at(when);
        messages.insert(
            id.clone(),
            Message {
                id,
                received: format_timestamp(when),
                author,
                content: Content::text(format!("{text} ({})", i + 1)),
                source: if who == "user" {
                    source.clone()
                } else {
                    Source::of("api:conversations", None)
                },
                quoted_message: None,
                metadata: None,
                deleted: None,
            },
        );
    }
    messages
}
