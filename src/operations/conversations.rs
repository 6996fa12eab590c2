//! Conversations: a user's, by id or externalId, and the ones the webhooks told of; the filters
//! `list_conversations` applies to either.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::actors::delivery::{Tracking, TrackingStatus};
use crate::actors::switchboard::Picture;
use crate::call::Call;
use crate::error::CallError;
use crate::shared::ConversationEntry;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::ids::parse_timestamp;
use crate::sunco::paging::Page;
use crate::sunco::wire::{Conversation, ConversationListResponse};

use super::Operations;

/// Filters on a conversation list, in the API's vocabulary. Times are Unix milliseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConversationQuery {
    /// Who controls it: a switchboard integration's id, name or integrationType.
    pub(crate) active_switchboard_integration: Option<String>,
    /// Who was offered control, likewise.
    pub(crate) pending_switchboard_integration: Option<String>,
    pub(crate) created_after: Option<i64>,
    pub(crate) created_before: Option<i64>,
    /// Last activity (the API's `lastUpdatedAt`, the index's last event) after this.
    pub(crate) updated_after: Option<i64>,
    pub(crate) updated_before: Option<i64>,
    /// The channel of the user's last message (only the index knows it).
    pub(crate) channel: Option<String>,
    /// Whether the last message came from the user (only the index knows it).
    pub(crate) awaiting_reply: Option<bool>,
    /// What the caller gave, for the answer's `filtered.applied`.
    pub(crate) applied: Map<String, Value>,
}

/// What a list's filters did: what was applied, how many conversations were looked at, how many
/// left out, and which could not be decided.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FilterReport {
    /// The filters as given.
    #[schemars(schema_with = "crate::sunco::wire::json_object")]
    pub(crate) applied: Map<String, Value>,
    /// Conversations looked at (this page of the API's, or the whole index).
    pub(crate) examined: usize,
    /// Conversations a filter left out.
    pub(crate) excluded: usize,
    /// Conversations no filter left out but one could not decide: the index has not heard
    /// enough of them (e.g. no message of theirs for awaitingReply). Not listed above; they may
    /// match. The newest 100 at most; `unknownCount` says how many there were.
    pub(crate) unknown: Vec<String>,
    pub(crate) unknown_count: usize,
}

/// The most conversation ids `filtered.unknown` lists.
const UNKNOWN_LISTED: usize = 100;

impl FilterReport {
    fn new(applied: &Map<String, Value>, examined: usize) -> Self {
        Self {
            applied: applied.clone(),
            examined,
            excluded: 0,
            unknown: vec![],
            unknown_count: 0,
        }
    }

    /// Counts one conversation by the verdict on it; `true` when it matched.
    fn count(&mut self, verdict: Verdict, id: impl FnOnce() -> String) -> bool {
        match verdict {
            Verdict::Match => return true,
            Verdict::Excluded => self.excluded += 1,
            Verdict::Unknown => {
                self.unknown_count += 1;
                if self.unknown.len() < UNKNOWN_LISTED {
                    self.unknown.push(id());
                }
            }
        }
        false
    }
}

/// What a filter knows of one conversation; `None` where it cannot tell.
#[derive(Debug, Default)]
struct Facts<'a> {
    active: Option<Option<&'a str>>,
    pending: Option<Option<&'a str>>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    channel: Option<Option<&'a str>>,
    awaiting_reply: Option<bool>,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Match,
    Excluded,
    Unknown,
}

/// Switchboard integration filters resolved to the ids they stand for.
#[derive(Debug, Default)]
struct Resolved {
    active: Option<BTreeSet<String>>,
    pending: Option<BTreeSet<String>>,
}

impl ConversationQuery {
    /// Parses an ISO 8601 time argument (RFC 3339) into Unix milliseconds.
    pub(crate) fn time(field: &str, value: Option<&str>) -> Result<Option<i64>, CallError> {
        let Some(v) = value else { return Ok(None) };
        parse_timestamp(v.trim())
            .map(|t| Some(crate::sunco::ids::unix_ms(t)))
            .ok_or_else(|| {
                CallError::invalid(
                    field,
                    format!("{v:?} is not an ISO 8601 time: give e.g. 2026-11-29T09:00:00Z"),
                )
            })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }

    /// Whether a filter needs what only the index knows.
    pub(crate) fn needs_index(&self) -> bool {
        self.channel.is_some() || self.awaiting_reply.is_some()
    }

    fn resolve(&self, picture: &Picture) -> Result<Resolved, CallError> {
        let ids = |field: &str, given: &Option<String>| -> Result<_, CallError> {
            let Some(given) = given else { return Ok(None) };
            let set: BTreeSet<String> = picture
                .switchboard_integrations
                .iter()
                .filter(|s| s.id == *given || s.name == *given || s.integration_type == *given)
                .map(|s| s.id.clone())
                .collect();
            if set.is_empty() {
                let valid: Vec<String> = picture
                    .switchboard_integrations
                    .iter()
                    .map(|s| format!("{} ({}, {})", s.name, s.integration_type, s.id))
                    .collect();
                return Err(CallError::invalid(
                    field,
                    if valid.is_empty() {
                        "the app has no switchboard integrations to filter by".to_owned()
                    } else {
                        format!(
                            "no switchboard integration has the id, name or integrationType {given:?}; the app's are: {}",
                            valid.join(", ")
                        )
                    },
                ));
            }
            Ok(Some(set))
        };
        Ok(Resolved {
            active: ids(
                "activeSwitchboardIntegration",
                &self.active_switchboard_integration,
            )?,
            pending: ids(
                "pendingSwitchboardIntegration",
                &self.pending_switchboard_integration,
            )?,
        })
    }

    fn judge(&self, resolved: &Resolved, facts: &Facts<'_>) -> Verdict {
        let mut unknown = false;
        let mut check = |known: Option<bool>| match known {
            Some(false) => false,
            Some(true) => true,
            None => {
                unknown = true;
                true
            }
        };
        let member = |set: &Option<BTreeSet<String>>, who: Option<Option<&str>>| {
            set.as_ref()
                .map(|set| who.map(|w| w.is_some_and(|w| set.contains(w))))
        };
        let time = |at: Option<i64>, after: Option<i64>, before: Option<i64>| {
            if after.is_none() && before.is_none() {
                return Some(true);
            }
            at.map(|at| after.is_none_or(|a| at > a) && before.is_none_or(|b| at < b))
        };
        let checks = [
            member(&resolved.active, facts.active).unwrap_or(Some(true)),
            member(&resolved.pending, facts.pending).unwrap_or(Some(true)),
            time(facts.created_at, self.created_after, self.created_before),
            time(facts.updated_at, self.updated_after, self.updated_before),
            self.channel.as_ref().map_or(Some(true), |want| {
                facts.channel.map(|c| c == Some(want.as_str()))
            }),
            self.awaiting_reply
                .map_or(Some(true), |want| facts.awaiting_reply.map(|a| a == want)),
        ];
        let mut all = true;
        for known in checks {
            all &= check(known);
        }
        match (all, unknown) {
            (false, _) => Verdict::Excluded,
            (true, true) => Verdict::Unknown,
            (true, false) => Verdict::Match,
        }
    }
}

impl<'a> Facts<'a> {
    fn of_entry(e: &'a ConversationEntry) -> Self {
        let control_known = e.control_at != i64::MIN;
        // A conversation seen created and without a message since awaits no reply.
        let message_known = e.last_message_at != i64::MIN || e.created_at.is_some();
        Facts {
            active: control_known.then_some(e.active_switchboard_integration.as_deref()),
            pending: control_known.then_some(e.pending_switchboard_integration.as_deref()),
            created_at: e.created_at,
            updated_at: Some(e.last_activity_at),
            channel: e.last_user_channel.as_deref().map(Some),
            awaiting_reply: message_known.then_some(e.awaiting_reply),
        }
    }

    fn of_conversation(c: &'a Conversation, entry: Option<&'a ConversationEntry>) -> Self {
        let at = |s: &Option<String>| {
            s.as_deref()
                .and_then(parse_timestamp)
                .map(crate::sunco::ids::unix_ms)
        };
        let indexed = entry.map(Facts::of_entry).unwrap_or_default();
        Facts {
            active: Some(
                c.active_switchboard_integration
                    .as_ref()
                    .map(|s| s.id.as_str()),
            ),
            pending: Some(
                c.pending_switchboard_integration
                    .as_ref()
                    .map(|s| s.id.as_str()),
            ),
            created_at: at(&c.created_at),
            updated_at: at(&c.last_updated_at).or(indexed.updated_at),
            channel: indexed.channel,
            awaiting_reply: indexed.awaiting_reply,
        }
    }
}

/// A list from the index, filtered.
#[derive(Debug)]
pub(crate) struct IndexedList {
    pub(crate) entries: Vec<ConversationEntry>,
    /// Until when each entry's conversation is claimed (Unix ms), if it is.
    pub(crate) claimed_until: Vec<Option<i64>>,
    /// The claims could not be read: no `claimed_until` says nothing.
    pub(crate) claims_unknown: bool,
    pub(crate) has_more: bool,
    /// The index's reach: since when it holds every conversation it heard of (Unix ms).
    pub(crate) reach: Option<i64>,
    pub(crate) tracking: Tracking,
    pub(crate) filtered: Option<FilterReport>,
}

/// A page of a user's conversations, filtered.
#[derive(Debug)]
pub(crate) struct UserList {
    pub(crate) answer: ConversationListResponse,
    /// The id of the API page's last conversation, filtered out or not (the page's cursor).
    pub(crate) last_id: Option<String>,
    /// Set when the filters needed the index.
    pub(crate) index: Option<(Option<i64>, Tracking)>,
    pub(crate) filtered: Option<FilterReport>,
}

impl Operations {
    /// One page of a user's conversations (`ListConversations`). A `UserId` filter also takes an
    /// externalId, as `GetUser` does: the id is tried first, then the externalId on a 404.
    pub(crate) async fn list_conversations(
        &self,
        call: &Call,
        filter: ConversationFilter,
        page: Page,
    ) -> Result<ConversationListResponse, CallError> {
        let dispatcher = &self.actors.dispatcher;
        let first = dispatcher
            .call_json::<ConversationListResponse>(
                call,
                &Endpoint::ListConversations {
                    filter: filter.clone(),
                    page: page.clone(),
                },
            )
            .await;
        match (first, filter) {
            (Err(CallError::Upstream { status: 404, .. }), ConversationFilter::UserId(id)) => {
                dispatcher
                    .call_json(
                        call,
                        &Endpoint::ListConversations {
                            filter: ConversationFilter::UserExternalId(id),
                            page,
                        },
                    )
                    .await
            }
            (other, _) => other,
        }
    }

    /// The routing picture, when a switchboard filter needs it.
    async fn picture_for(&self, query: &ConversationQuery) -> Result<Option<Resolved>, CallError> {
        if query.active_switchboard_integration.is_none()
            && query.pending_switchboard_integration.is_none()
        {
            return Ok(None);
        }
        let (_, resolved) = self.on_fresh_picture(|p| query.resolve(p)).await?;
        resolved.map(Some)
    }

    /// A user's conversations, one page of the API's, filtered. Filters only the index can
    /// decide are decided from it; conversations it has not heard enough of are reported in
    /// `filtered.unknown`, not dropped silently.
    pub(crate) async fn list_user_conversations(
        &self,
        call: &Call,
        filter: ConversationFilter,
        page: Page,
        query: &ConversationQuery,
    ) -> Result<UserList, CallError> {
        let resolved = self.picture_for(query).await?.unwrap_or_default();
        let mut answer = self.list_conversations(call, filter, page).await?;
        let last_id = answer.conversations.last().map(|c| c.id.clone());
        if query.is_empty() {
            return Ok(UserList {
                answer,
                last_id,
                index: None,
                filtered: None,
            });
        }
        let tracker = &self.actors.tracker;
        let mut index = None;
        if query.needs_index() {
            let tracking = tracker.tracking().await;
            if tracking.status == TrackingStatus::Off {
                return Err(CallError::invalid(
                    if query.awaiting_reply.is_some() {
                        "awaitingReply"
                    } else {
                        "channel"
                    },
                    "only the webhooks tell who wrote last and through which channel, and the server has none (no SUNCO_WEBHOOK_SECRET): leave this filter out and read list_messages",
                ));
            }
            index = Some((tracker.index_reach().await?, tracking));
        }
        let mut report = FilterReport::new(&query.applied, answer.conversations.len());
        let mut kept = Vec::with_capacity(answer.conversations.len());
        for c in std::mem::take(&mut answer.conversations) {
            let entry = if query.needs_index() {
                tracker.conversation(&c.id).await?
            } else {
                None
            };
            let verdict = query.judge(&resolved, &Facts::of_conversation(&c, entry.as_ref()));
            if report.count(verdict, || c.id.clone()) {
                kept.push(c);
            }
        }
        answer.conversations = kept;
        Ok(UserList {
            answer,
            last_id,
            index,
            filtered: Some(report),
        })
    }

    /// The newest `limit` conversations the webhooks told of that pass the filters. Refused
    /// (naming `userId`) when no webhook can arrive.
    pub(crate) async fn list_indexed_conversations(
        &self,
        limit: usize,
        query: &ConversationQuery,
    ) -> Result<IndexedList, CallError> {
        let tracker = &self.actors.tracker;
        let tracking = tracker.tracking().await;
        if tracking.status == TrackingStatus::Off {
            return Err(CallError::invalid(
                "userId",
                "without webhooks (no SUNCO_WEBHOOK_SECRET) the server hears of no conversation, so it cannot list them without a user: give userId or userExternalId",
            ));
        }
        let resolved = self.picture_for(query).await?.unwrap_or_default();
        let want = if query.is_empty() {
            limit + 1
        } else {
            usize::MAX
        };
        let (recent, reach) = tracker.recent_conversations(want).await?;
        let mut report = FilterReport::new(&query.applied, recent.len());
        let mut entries = Vec::new();
        for e in recent {
            let verdict = query.judge(&resolved, &Facts::of_entry(&e));
            if report.count(verdict, || e.conversation_id.clone()) {
                entries.push(e);
            }
        }
        let has_more = entries.len() > limit;
        entries.truncate(limit);
        let ids: Vec<String> = entries.iter().map(|e| e.conversation_id.clone()).collect();
        // The claims are shown when the store answers; a list is still useful without them.
        let (claimed_until, claims_unknown) = match self.actors.stores.claims.holds(&ids).await {
            Ok(held) => (held, false),
            Err(e) => {
                tracing::debug!("cannot read the claims for a list: {e}");
                (vec![None; ids.len()], true)
            }
        };
        Ok(IndexedList {
            entries,
            claimed_until,
            claims_unknown,
            has_more,
            reach,
            tracking,
            filtered: (!query.is_empty()).then_some(report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> ConversationQuery {
        ConversationQuery {
            awaiting_reply: Some(true),
            updated_after: Some(100),
            ..ConversationQuery::default()
        }
    }

    #[test]
    fn a_filter_that_cannot_tell_leaves_the_conversation_unknown_unless_another_excludes_it() {
        let q = query();
        let r = Resolved::default();
        let unknown_reply = Facts {
            updated_at: Some(200),
            ..Facts::default()
        };
        assert_eq!(q.judge(&r, &unknown_reply), Verdict::Unknown);
        let too_old = Facts {
            updated_at: Some(50),
            ..Facts::default()
        };
        assert_eq!(q.judge(&r, &too_old), Verdict::Excluded);
        let waiting = Facts {
            updated_at: Some(200),
            awaiting_reply: Some(true),
            ..Facts::default()
        };
        assert_eq!(q.judge(&r, &waiting), Verdict::Match);
        let answered = Facts {
            updated_at: Some(200),
            awaiting_reply: Some(false),
            ..Facts::default()
        };
        assert_eq!(q.judge(&r, &answered), Verdict::Excluded);
    }

    #[test]
    fn switchboard_filters_match_the_resolved_ids_and_none_matches_no_one() {
        let q = ConversationQuery {
            active_switchboard_integration: Some("bot".into()),
            ..ConversationQuery::default()
        };
        let r = Resolved {
            active: Some(BTreeSet::from(["sb-bot".to_owned()])),
            pending: None,
        };
        let with = |active| Facts {
            active,
            ..Facts::default()
        };
        assert_eq!(q.judge(&r, &with(Some(Some("sb-bot")))), Verdict::Match);
        assert_eq!(
            q.judge(&r, &with(Some(Some("sb-agents")))),
            Verdict::Excluded
        );
        assert_eq!(q.judge(&r, &with(Some(None))), Verdict::Excluded);
        assert_eq!(q.judge(&r, &with(None)), Verdict::Unknown);
    }
}
