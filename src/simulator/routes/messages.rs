//! Messages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::control::{ControlAction, transition};
use super::{
    MAX_MESSAGES, Q, app, app_mut, body_json, conversation, conversation_created, created, emit,
    emit_at, empty, ok, page_from, paginate, user_of,
};
use crate::simulator::auth::{ALL_SCOPES, Caller, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::{App, Client, ConversationRecord, World};
use crate::simulator::{Sim, delivery, validate};
use crate::sunco::commands;
use crate::sunco::ids::now_timestamp;
use crate::sunco::paging::MESSAGE_PAGE_SIZE;
use crate::sunco::wire::{
    Author, AuthorType, Content, Conversation, ConversationTruncated, ConversationType,
    DeliveryDestination, DeliveryPayload, DeliveryUser, Message, MessageRef, Source, event_type,
};

pub(super) async fn list_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let page = page_from(&q)?;
    let app = app(&world, &app_id)?;
    let rec = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(ApiError::resource_not_found)?;
    let items: Vec<_> = rec.messages.iter().collect();
    let base = format!(
        "{}/v2/apps/{app_id}/conversations/{conversation_id}/messages",
        sim.public_url()
    );
    // page[size] is ignored: the page is always 100, starting from the newest.
    let (list, meta, links) = paginate(&items, &page, MESSAGE_PAGE_SIZE, true, &base);
    Ok(ok(json!({"messages": list, "meta": meta, "links": links})))
}

/// Converts write-only `markdownText` into `htmlText`, as the API stores it.
pub(super) fn store_content(mut content: Value) -> Value {
    if let Some(o) = content.as_object_mut()
        && let Some(Value::String(md)) = o.remove("markdownText")
    {
        let escaped = md
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        o.insert(
            "htmlText".to_owned(),
            Value::String(format!("<p>{escaped}</p>")),
        );
        if !o.contains_key("text") {
            o.insert("text".to_owned(), Value::String(md));
        }
    }
    content
}

/// `PostMessage`: stores the message, then emits `conversation:message` and, per participant
/// reached, the delivery events the channel's rules decide.
/// `PostActivity`: typing indicators and read receipts. The activity goes to the webhooks as
/// `conversation:typing` or `conversation:read`; the business's typing state is kept until
/// `typing:stop` or its next message (SunCo's channels stop the indicator when the message
/// arrives).
pub(super) async fn post_activity(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::activity_post(&body)?;
    let app_ref = app(&world, &app_id)?;
    let rec = conversation(app_ref, &conversation_id)?;
    let author = app_ref.author_of(rec, &body["author"])?;
    let kind = body["type"].as_str().unwrap_or_default().to_owned();
    let app = app_mut(&mut world, &app_id)?;
    let Some(rec) = app.conversations.get_mut(&conversation_id) else {
        return Err(ApiError::conversation_not_found());
    };
    if author.kind == AuthorType::Business {
        match kind.as_str() {
            "typing:start" => rec.business_typing = true,
            "typing:stop" => rec.business_typing = false,
            _ => {}
        }
    }
    let truncated = ConversationTruncated::from(&rec.conversation);
    let event = if kind == "conversation:read" {
        "conversation:read"
    } else {
        "conversation:typing"
    };
    let world = &*world;
    emit(
        &sim,
        world,
        &world.apps[&app_id],
        event,
        json!({"conversation": truncated, "activity": {"type": kind, "author": author}}),
    );
    Ok(empty())
}

/// Tells every webhook of every app what the seeded world's history would have told it as it
/// happened, in order: each conversation's `conversation:create` and then a
/// `conversation:message` for each of its messages, each event stamped with when it happened.
/// SunCo sends these as they happen; a world that starts with a history (the demo world) has
/// them told once, so a server that starts beside it knows what it would have heard.
pub(crate) fn tell_history(sim: &Sim) {
    let world = sim.world();
    let world = &*world;
    for app in world.apps.values() {
        let mut conversations: Vec<&ConversationRecord> = app.conversations.values().collect();
        conversations.sort_by(|a, b| a.conversation.created_at.cmp(&b.conversation.created_at));
        for rec in conversations {
            let truncated = ConversationTruncated::from(&rec.conversation);
            let mut messages: Vec<&Message> = rec.messages.values().collect();
            messages.sort_by(|a, b| a.received.cmp(&b.received));
            // A conversation a customer's first message opened was created by that message
            // (`creationReason` per the spec's conversation:create event).
            let by_message = messages
                .first()
                .is_some_and(|m| m.author.kind == AuthorType::User);
            let reason = if by_message { "message" } else { "none" };
            let user = rec.participants.first().map(|p| p.user_id.as_str());
            let create = conversation_created(app, &rec.conversation, reason, user);
            let created = (rec.conversation.created_at.clone())
                .or_else(|| messages.first().map(|m| m.received.clone()))
                .unwrap_or_else(now_timestamp);
            emit_at(
                sim,
                world,
                app,
                event_type::CONVERSATION_CREATE,
                create,
                created,
            );
            for message in messages {
                let payload =
                    json!({"conversation": truncated, "message": app.message_webhook(message)});
                let at = message.received.clone();
                emit_at(sim, world, app, event_type::MESSAGE, payload, at);
            }
        }
    }
}

pub(super) async fn post_message(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller = authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::message_post(&body)?;
    let app_ref = app(&world, &app_id)?;
    let rec = conversation(app_ref, &conversation_id)?;
    if rec.messages.len() >= MAX_MESSAGES {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "locked",
            "Message limit of 30000 per conversation reached.",
        ));
    }
    let author = app_ref.author_of(rec, &body["author"])?;
    let deliveries = if author.kind == AuthorType::Business {
        app_ref.delivery_targets(rec, body.get("destination").filter(|d| d.is_object()))?
    } else {
        vec![]
    };
    let content_v = store_content(body["content"].clone());
    let content: Content = serde_json::from_value(content_v).map_err(|e| {
        ApiError::bad_request(format!("content is not a valid message content: {e}"))
    })?;
    let message = Message {
        id: world.ids.next(),
        received: now_timestamp(),
        author,
        content,
        source: Source::of("api:conversations", None),
        quoted_message: None,
        metadata: body["metadata"].as_object().cloned(),
        deleted: None,
    };
    let message_webhook = app_ref.message_webhook(&message);
    let control = if message.author.kind == AuthorType::Business {
        in_band_control(app_ref, rec, &body["content"]["text"], &caller)
    } else {
        Vec::new()
    };
    let app = app_mut(&mut world, &app_id)?;
    let Some(rec) = app.conversations.get_mut(&conversation_id) else {
        return Err(ApiError::conversation_not_found());
    };
    rec.messages.insert(message.id.clone(), message.clone());
    rec.conversation.last_updated_at = Some(message.received.clone());
    let before = rec.conversation.clone();
    if let Some((conv, _)) = control.last() {
        rec.conversation.active_switchboard_integration =
            conv.active_switchboard_integration.clone();
        rec.conversation.pending_switchboard_integration =
            conv.pending_switchboard_integration.clone();
    }
    if message.author.kind == AuthorType::Business {
        rec.business_typing = false;
    }
    let truncated = ConversationTruncated::from(&before);
    let world = &*world;
    let app = &world.apps[&app_id];
    emit(
        &sim,
        world,
        app,
        event_type::MESSAGE,
        json!({"conversation": truncated, "message": message_webhook}),
    );
    for (conv, kind) in &control {
        let payload = json!({"conversation": ConversationTruncated::from(conv)});
        emit(&sim, world, app, kind, payload);
    }
    for (user, client) in deliveries {
        if let Some((channel, integration_id)) = client {
            let delivery = Delivery {
                user,
                conversation: &truncated,
                message: &message,
                channel,
                integration_id,
            };
            delivery.emit(&sim, world, app);
        }
    }
    Ok(created(json!({ "messages": [message] })))
}

/// The switchboard commands in a business message's text, executed as SunCo does
/// ([`commands`]): each one's conversation afterwards and its webhook event. SunCo documents
/// the command as it sends it (`%((switchboard:passControl:NAME))%`), not what a command that
/// cannot run does: such a command is skipped, and the message is kept as sent either way.
fn in_band_control(
    app: &App,
    rec: &ConversationRecord,
    text: &Value,
    caller: &Caller,
) -> Vec<(Conversation, &'static str)> {
    let mut done = Vec::new();
    let mut conv = rec.conversation.clone();
    for command in commands::commands(text.as_str().unwrap_or_default()) {
        let action = match command.switchboard() {
            Some(("passControl", _)) => ControlAction::Pass,
            Some(("offerControl", _)) => ControlAction::Offer,
            Some(("acceptControl", _)) => ControlAction::Accept,
            Some(("releaseControl", _)) => ControlAction::Release,
            _ => continue,
        };
        let target = command.switchboard().and_then(|(_, t)| t);
        let mut next = conv.clone();
        if let Ok(kind) = transition(app, &mut next, action, target, caller) {
            conv = next;
            done.push((conv.clone(), kind));
        }
    }
    done
}

/// Where one participant's copy of a message went: the user, and the client's channel type and
/// integration (none for a silent message).
type Target = (DeliveryUser, Option<(String, String)>);

impl App {
    /// The author of a posted message (`messagePost.author`); a user author must be a
    /// participant of the conversation.
    fn author_of(&self, rec: &ConversationRecord, author_v: &Value) -> ApiResult<Author> {
        let mut author = Author::business();
        if author_v["type"] == "user" {
            author.kind = AuthorType::User;
        }
        author.subtypes = author_v["subtypes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        author.display_name = author_v["displayName"].as_str().map(str::to_owned);
        author.avatar_url = author_v["avatarUrl"].as_str().map(str::to_owned);
        if author.kind == AuthorType::User {
            let key = author_v["userId"]
                .as_str()
                .or_else(|| author_v["userExternalId"].as_str())
                .unwrap_or_default();
            let user = user_of(self, key)?;
            if !rec.participants.iter().any(|p| p.user_id == user.user.id) {
                return Err(ApiError::bad_request(
                    "author: the user is not a participant of this conversation",
                ));
            }
            author.user_id = Some(user.user.id.clone());
        }
        Ok(author)
    }

    /// Where a business message goes: an explicit `destination`, or each participant's primary
    /// client (the first client association).
    fn delivery_targets(
        &self,
        rec: &ConversationRecord,
        destination: Option<&Value>,
    ) -> ApiResult<Vec<Target>> {
        if destination.is_some() && rec.conversation.kind != ConversationType::Personal {
            return Err(ApiError::bad_request(
                "destination applies only to personal conversations",
            ));
        }
        let mut targets = Vec::new();
        for p in &rec.participants {
            let Some(user) = self.users.get(&p.user_id) else {
                continue;
            };
            let client: Option<&Client> = match destination {
                Some(d) if d["integrationType"] == "none" => None,
                Some(d) => {
                    let found = user.clients.iter().find(|c| {
                        d["integrationId"].as_str() == Some(c.integration_id.as_str())
                            || d["integrationType"].as_str().is_some_and(|t| {
                                self.integrations
                                    .get(&c.integration_id)
                                    .is_some_and(|i| i.kind == t)
                            })
                    });
                    if found.is_none() {
                        return Err(ApiError::bad_request(
                            "destination: the user has no client for that integration in this conversation",
                        ));
                    }
                    found
                }
                None => p
                    .client_associations
                    .first()
                    .and_then(|a| user.clients.iter().find(|c| c.id == a.client_id)),
            };
            targets.push((
                DeliveryUser {
                    id: user.user.id.clone(),
                    external_id: user.user.external_id.clone(),
                    authenticated: user.user.authenticated,
                },
                client.map(|c| (c.platform.clone(), c.integration_id.clone())),
            ));
        }
        Ok(targets)
    }

    /// The message as `conversation:message` carries it (`messageWebhook`).
    fn message_webhook(&self, message: &Message) -> Value {
        let mut author = json!({"type": message.author.kind});
        if let Some(uid) = &message.author.user_id {
            author["userId"] = json!(uid);
            if let Some(u) = self.users.get(uid) {
                author["user"] = json!({"id": u.user.id, "externalId": u.user.external_id,
                    "authenticated": u.user.authenticated});
            }
        }
        let mut webhook = json!({
            "id": message.id,
            "received": message.received,
            "author": author,
            "content": message.content,
            "source": message.source,
        });
        if let Some(m) = &message.metadata {
            webhook["metadata"] = json!(m);
        }
        webhook
    }
}

/// One participant's copy of a message on its way to a channel.
struct Delivery<'a> {
    user: DeliveryUser,
    conversation: &'a ConversationTruncated,
    message: &'a Message,
    channel: String,
    integration_id: String,
}

impl Delivery<'_> {
    fn payload(
        &self,
        error: Option<crate::sunco::wire::DeliveryError>,
        is_final: bool,
    ) -> DeliveryPayload {
        DeliveryPayload {
            user: self.user.clone(),
            conversation: self.conversation.clone(),
            message: MessageRef {
                id: self.message.id.clone(),
            },
            destination: DeliveryDestination {
                kind: self.channel.clone(),
                integration_id: Some(self.integration_id.clone()),
            },
            external_messages: None,
            is_final_event: is_final,
            error,
        }
    }

    /// The channel's verdict as events: delivered (`channel` then `user`, the final one), or
    /// `failure`.
    fn emit(&self, sim: &Sim, world: &World, app: &App) {
        match delivery::deliver(&self.channel, self.message.content.type_name()) {
            Ok(()) => {
                let channel = json!(self.payload(None, false));
                emit(sim, world, app, event_type::DELIVERY_CHANNEL, channel);
                let user = json!(self.payload(None, true));
                emit(sim, world, app, event_type::DELIVERY_USER, user);
            }
            Err(e) => {
                let failure = json!(self.payload(Some(e), true));
                emit(sim, world, app, event_type::DELIVERY_FAILURE, failure);
            }
        }
    }
}

pub(super) async fn delete_all_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = app
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    rec.messages.clear();
    Ok(empty())
}

pub(super) async fn delete_message(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id, message_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = app
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    rec.messages
        .remove(&message_id)
        .ok_or_else(|| ApiError::not_found("message_not_found", "Message not found"))?;
    Ok(empty())
}
