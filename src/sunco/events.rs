//! Reading the webhook events Sunshine Conversations POSTs to us, accepting every payload the
//! spec allows.
//!
//! The spec requires almost nothing of an event (`eventSubSchema`, `messageWebhook` and
//! `conversationMessageDeliveryPayload` have no `required` list; `authorWebhook` requires only
//! `type`), and fields the spec does not require may be absent. So an event is read field by
//! field: what the server needs to use it (the event's `id` and `type`, and the message or
//! conversation id of its payload) must be there, and everything else has a named default.
//! Optional fields of the wrong JSON type are treated as absent, never as a reason to drop the
//! event. Pure functions: no actor, no I/O.

use serde_json::Value;

use super::wire::event_type;

/// A channel type or error code the event did not give.
pub(crate) const UNKNOWN: &str = "unknown";

/// One event, as far as the server reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The event id (`eventSubSchema.id`, a number taken as its text), used to drop the
    /// repeats of a retried delivery; empty only for an ignored event that had none.
    pub id: String,
    /// The event type (`eventSubSchema.type`).
    pub(crate) kind: String,
    /// `eventSubSchema.createdAt`, when given (the tracker then uses the time it received it).
    pub(crate) created_at: Option<String>,
    pub(crate) reading: Reading,
}

/// What an event says, for the event types the server reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reading {
    /// `conversation:message:delivery:{channel,user,failure}`.
    Delivery(DeliveryReport),
    /// `conversation:message`: a message the server may be asked about later.
    Message(MessageSeen),
    /// What happened to a conversation: `conversation:create`, `conversation:remove`,
    /// `conversation:join`, `conversation:leave`, and the `switchboard:*` control events.
    Conversation(ConversationEvent),
    /// A type the server does not read (it was not among the triggers the server asks for).
    Ignored,
}

/// Which delivery event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub(crate) enum DeliveryKind {
    /// `conversation:message:delivery:channel`: handed to the channel.
    Channel,
    /// `conversation:message:delivery:user`: the user's device has it (the final event).
    User,
    /// `conversation:message:delivery:failure`: the channel refused it.
    Failure,
}

impl DeliveryKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Channel => "channel",
            DeliveryKind::User => "user",
            DeliveryKind::Failure => "failure",
        }
    }
}

/// A failure's reason when the event gave none.
pub(crate) const NO_REASON: &str = "the upstream gave no reason";

/// A delivery event (`conversationMessageDeliveryPayload`), with named defaults for what the
/// payload left out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeliveryReport {
    pub(crate) kind: DeliveryKind,
    /// `payload.message.id`: required to use the event.
    pub(crate) message_id: String,
    /// `payload.conversation.id`, when given.
    pub(crate) conversation_id: Option<String>,
    /// `payload.user.id`, when given.
    pub(crate) user_id: Option<String>,
    /// `payload.destination.type`; [`UNKNOWN`] when absent.
    pub(crate) channel: String,
    /// `payload.destination.integrationId`, when given.
    pub(crate) integration_id: Option<String>,
    /// `payload.isFinalEvent`; when absent, true for a failure and a delivery to the user
    /// (nothing follows them) and false for a hand-over to the channel.
    pub(crate) is_final_event: bool,
    /// `payload.error` of a failure: code [`UNKNOWN`] and [`NO_REASON`] when absent.
    pub(crate) error: Option<(String, String)>,
}

/// A `conversation:message` event's message, kept as the JSON the API sent (`messageWebhook`),
/// with its conversation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MessageSeen {
    pub(crate) conversation_id: String,
    pub(crate) message_id: String,
    /// `payload.message` as received.
    pub(crate) message: Value,
    /// `payload.message.author.type` is `user`.
    pub(crate) from_user: bool,
    /// `payload.message.source.type`: the channel it came through, when given.
    pub(crate) channel: Option<String>,
    /// Who controlled the conversation when the message came (see [`ConversationEvent::control`]).
    pub(crate) control: Option<(Option<String>, Option<String>)>,
}

/// What an event says happened to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConversationEvent {
    /// `payload.conversation.id`: required to use the event.
    pub(crate) conversation_id: String,
    pub(crate) change: ConversationChange,
    /// The control state `payload.conversation` reports beside the change (`conversationTruncated`
    /// omits `activeSwitchboardIntegration` and `pendingSwitchboardIntegration` when there is
    /// none): active and pending switchboard integration ids. `None` for a removal.
    pub(crate) control: Option<(Option<String>, Option<String>)>,
}

/// The kinds of [`ConversationEvent`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConversationChange {
    Created,
    Removed,
    /// A participant joined or left: activity.
    Activity,
    /// A `switchboard:*` event: the control state it reports (`payload.conversation`'s active
    /// and pending switchboard integration ids; absent is none).
    Control {
        active: Option<String>,
        pending: Option<String>,
    },
}

/// Why an event cannot be used, whatever is retried: it lacks what the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// The event id, when the event has one.
    pub id: Option<String>,
    /// The event type, or [`UNKNOWN`].
    pub(crate) kind: String,
    /// What is missing, e.g. `payload.message.id`.
    pub(crate) missing: &'static str,
}

/// The string at `path` below `v`, if it is a non-empty string.
fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The event's id: a non-empty string, or a number taken as its text.
fn event_id(event: &Value) -> Option<String> {
    match event.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one event of a webhook envelope's `events`.
pub(crate) fn read(event: &Value) -> Result<Inbound, Unusable> {
    let kind = text(event, &["type"]).unwrap_or(UNKNOWN).to_owned();
    let id = event_id(event);
    let unusable = |missing| Unusable {
        id: id.clone(),
        kind: kind.clone(),
        missing,
    };
    let created_at = text(event, &["createdAt"]).map(str::to_owned);
    // A type the server does not read is ignored, whatever else it lacks.
    if kind != UNKNOWN && !event_type::READ_BY_SERVER.contains(&kind.as_str()) {
        return Ok(Inbound {
            id: id.clone().unwrap_or_default(),
            kind,
            created_at,
            reading: Reading::Ignored,
        });
    }
    let Some(id) = id.clone() else {
        return Err(unusable("id"));
    };
    if kind == UNKNOWN {
        return Err(unusable("type"));
    }
    let payload = event.get("payload").unwrap_or(&Value::Null);
    let delivery = match kind.as_str() {
        event_type::DELIVERY_CHANNEL => Some(DeliveryKind::Channel),
        event_type::DELIVERY_USER => Some(DeliveryKind::User),
        event_type::DELIVERY_FAILURE => Some(DeliveryKind::Failure),
        _ => None,
    };
    let reading = match delivery {
        Some(delivery) => Reading::Delivery(delivery_report(delivery, payload, &unusable)?),
        // Every other type the server reads is about one conversation.
        None => conversation_reading(&kind, payload, &unusable)?,
    };
    Ok(Inbound {
        id,
        kind,
        created_at,
        reading,
    })
}

/// A delivery event's report; `unusable` names what it lacks.
fn delivery_report(
    delivery: DeliveryKind,
    payload: &Value,
    unusable: &dyn Fn(&'static str) -> Unusable,
) -> Result<DeliveryReport, Unusable> {
    let message_id =
        text(payload, &["message", "id"]).ok_or_else(|| unusable("payload.message.id"))?;
    let failure = delivery == DeliveryKind::Failure;
    Ok(DeliveryReport {
        kind: delivery,
        message_id: message_id.to_owned(),
        conversation_id: text(payload, &["conversation", "id"]).map(str::to_owned),
        user_id: text(payload, &["user", "id"]).map(str::to_owned),
        channel: text(payload, &["destination", "type"])
            .unwrap_or(UNKNOWN)
            .to_owned(),
        integration_id: text(payload, &["destination", "integrationId"]).map(str::to_owned),
        is_final_event: payload
            .get("isFinalEvent")
            .and_then(Value::as_bool)
            .unwrap_or(delivery != DeliveryKind::Channel),
        error: failure.then(|| {
            (
                text(payload, &["error", "code"])
                    .unwrap_or(UNKNOWN)
                    .to_owned(),
                text(payload, &["error", "message"])
                    .unwrap_or(NO_REASON)
                    .to_owned(),
            )
        }),
    })
}

/// What an event about one conversation (of type `kind`) says: a message, or a change of the
/// conversation; `unusable` names what it lacks.
fn conversation_reading(
    kind: &str,
    payload: &Value,
    unusable: &dyn Fn(&'static str) -> Unusable,
) -> Result<Reading, Unusable> {
    let conversation_id = text(payload, &["conversation", "id"])
        .ok_or_else(|| unusable("payload.conversation.id"))?
        .to_owned();
    let integration =
        |which: &str| text(payload, &["conversation", which, "id"]).map(str::to_owned);
    let control = (
        integration("activeSwitchboardIntegration"),
        integration("pendingSwitchboardIntegration"),
    );
    let change = match kind {
        event_type::MESSAGE => None,
        event_type::CONVERSATION_CREATE => Some(ConversationChange::Created),
        event_type::CONVERSATION_REMOVE => Some(ConversationChange::Removed),
        event_type::CONVERSATION_JOIN | event_type::CONVERSATION_LEAVE => {
            Some(ConversationChange::Activity)
        }
        _ => Some(ConversationChange::Control {
            active: control.0.clone(),
            pending: control.1.clone(),
        }),
    };
    if let Some(change) = change {
        return Ok(Reading::Conversation(ConversationEvent {
            conversation_id,
            control: matches!(
                change,
                ConversationChange::Created | ConversationChange::Activity
            )
            .then_some(control),
            change,
        }));
    }
    let message_id =
        text(payload, &["message", "id"]).ok_or_else(|| unusable("payload.message.id"))?;
    Ok(Reading::Message(MessageSeen {
        conversation_id,
        message_id: message_id.to_owned(),
        message: payload["message"].clone(),
        from_user: text(payload, &["message", "author", "type"]) == Some("user"),
        channel: text(payload, &["message", "source", "type"]).map(str::to_owned),
        control: Some(control),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_without_optional_fields_gets_named_defaults() {
        let e = read(
            &json!({"id": "e1", "type": "conversation:message:delivery:failure",
            "payload": {"message": {"id": "m1"}}}),
        )
        .unwrap();
        let Reading::Delivery(d) = e.reading else {
            panic!("{e:?}")
        };
        assert_eq!(d.channel, UNKNOWN);
        assert!(d.is_final_event);
        assert_eq!(d.error, Some((UNKNOWN.into(), NO_REASON.into())));
        assert_eq!(d.conversation_id, None);
    }

    #[test]
    fn wrong_types_of_optional_fields_count_as_absent() {
        let e = read(
            &json!({"id": "e1", "type": "conversation:message:delivery:user",
            "createdAt": 5, "payload": {"message": {"id": "m1"}, "isFinalEvent": "yes",
            "user": {"id": 7}, "destination": ["web"]}}),
        )
        .unwrap();
        assert_eq!(e.created_at, None);
        let Reading::Delivery(d) = e.reading else {
            panic!("{e:?}")
        };
        assert!(d.is_final_event, "the default of a delivery to the user");
        assert_eq!((d.user_id, d.channel.as_str()), (None, UNKNOWN));
    }

    #[test]
    fn what_cannot_be_used_says_what_is_missing() {
        let cases = [
            (json!({"type": "conversation:message"}), "id"),
            (json!({"id": "e", "payload": {}}), "type"),
            (
                json!({"id": [], "type": "conversation:message:delivery:user"}),
                "id",
            ),
            (
                json!({"id": "e", "type": "conversation:message:delivery:channel"}),
                "payload.message.id",
            ),
            (
                json!({"id": "e", "type": "conversation:message", "payload": {"message": {"id": "m"}}}),
                "payload.conversation.id",
            ),
        ];
        for (event, missing) in cases {
            assert_eq!(read(&event).unwrap_err().missing, missing, "{event}");
        }
    }

    #[test]
    fn types_the_server_does_not_read_are_ignored_not_unusable() {
        let e = read(&json!({"id": "e", "type": "conversation:typing"})).unwrap();
        assert_eq!(e.reading, Reading::Ignored);
        let e = read(&json!({"type": "conversation:read"})).unwrap();
        assert_eq!(e.reading, Reading::Ignored);
    }

    #[test]
    fn numeric_ids_are_ids_and_a_user_delivery_is_final() {
        let e = read(
            &json!({"id": 42, "type": "conversation:message:delivery:user",
            "payload": {"message": {"id": "m"}}}),
        )
        .unwrap();
        assert_eq!(e.id, "42");
        let Reading::Delivery(d) = e.reading else {
            panic!("{e:?}")
        };
        assert!(d.is_final_event);
    }
}
