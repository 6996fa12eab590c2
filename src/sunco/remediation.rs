//! What to do about a delivery failure: one table, read for every failure the server shows.
//!
//! The spec gives a failure's `error` as `{code, message}` and documents one code
//! (`uncategorized_error`, e.g. "Unsupported message type `form`"): the channel's own reason
//! travels in `message`. So a rule matches the channel, and words of the code or the reason
//! (case-insensitive); the first rule that matches gives the next step. A failure no rule
//! knows gets `investigate`: never a blind retry.

use serde::Serialize;

/// What an agent should do next about a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NextAction {
    /// The channel's messaging window has closed: send an approved template.
    SendTemplate,
    /// The user blocked the business or unsubscribed: do not send again on this channel.
    DoNotRetry,
    /// The channel cannot show this kind of message: send it in another form.
    ChangeContent,
    /// The user cannot be reached at this address on this channel.
    FixRecipient,
    /// The channel is throttling: send again later.
    RetryLater,
    /// The channel integration itself is failing: an operator must fix it.
    FixIntegration,
    /// No rule knows this failure: read the reason before doing anything.
    Investigate,
}

/// The next step for one failure: the action, whether sending the same message again can
/// succeed, and what to do in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NextStep {
    pub(crate) action: NextAction,
    /// Whether sending the same message again may succeed.
    pub(crate) retryable: bool,
    pub(crate) advice: &'static str,
}

struct Rule {
    /// Channel types the rule is for; empty: any.
    channels: &'static [&'static str],
    /// Words of the code or the reason; any one matches.
    words: &'static [&'static str],
    step: NextStep,
}

/// Channels where a business may write only within a window after the user's last message.
const WINDOWED: &[&str] = &[
    "whatsapp",
    "twilio",
    "messagebird",
    "messenger",
    "instagram",
];

const RULES: &[Rule] = &[
    Rule {
        channels: WINDOWED,
        words: &[
            "24 hour",
            "24-hour",
            "24h",
            "allowed window",
            "messaging window",
            "customer service window",
            "re-engagement",
            "freeform",
            "free-form",
            "outside the window",
            "outside of the window",
        ],
        step: NextStep {
            action: NextAction::SendTemplate,
            retryable: false,
            advice: "The channel delivers free-form messages only within 24 hours of the user's last message, and that window has closed. On WhatsApp send an approved template (content type template); elsewhere wait until the user writes again.",
        },
    },
    Rule {
        channels: &[],
        words: &[
            "blocked",
            "unsubscribed",
            "opted out",
            "opt-out",
            "opt out",
            "isn't available right now",
            "not available right now",
        ],
        step: NextStep {
            action: NextAction::DoNotRetry,
            retryable: false,
            advice: "The user blocked the business or unsubscribed on this channel. Do not send again here; use another channel only if the user agreed to it.",
        },
    },
    Rule {
        channels: &[],
        words: &[
            "unsupported message type",
            "unsupported content",
            "not supported",
            "cannot render",
            "unsupported",
        ],
        step: NextStep {
            action: NextAction::ChangeContent,
            retryable: false,
            advice: "The channel cannot show this kind of message. Send the same information in a form it supports (text, or an image with a caption), not the same message again.",
        },
    },
    Rule {
        channels: &[],
        words: &[
            "rate limit",
            "rate-limit",
            "too many",
            "throttl",
            "spam rate",
        ],
        step: NextStep {
            action: NextAction::RetryLater,
            retryable: true,
            advice: "The channel is throttling the business. Send again later (minutes, not seconds), with the same idempotencyKey.",
        },
    },
    Rule {
        channels: &[],
        words: &[
            "not a valid",
            "invalid phone",
            "invalid recipient",
            "no whatsapp account",
            "not registered",
            "undeliverable",
            "recipient",
            "user not found",
            "unknown user",
        ],
        step: NextStep {
            action: NextAction::FixRecipient,
            retryable: false,
            advice: "The user cannot be reached at this address on this channel. Check the user's identities (get_user) or reach them on another of their channels (destination).",
        },
    },
    Rule {
        channels: &[],
        words: &[
            "token",
            "expired",
            "permission",
            "unauthorized",
            "forbidden",
            "credential",
            "access denied",
            "integration",
        ],
        step: NextStep {
            action: NextAction::FixIntegration,
            retryable: false,
            advice: "The channel integration itself is failing (credentials, permissions or set-up). Tell an operator (get_integration shows its status); sending again fails the same way until it is fixed.",
        },
    },
];

const UNKNOWN: NextStep = NextStep {
    action: NextAction::Investigate,
    retryable: false,
    advice: "No rule knows this failure. Read the code and reason; do not resend blindly (the user may have received part of it, or the channel may refuse it again). If it persists, check the channel's integration (get_integration).",
};

/// The next step for a failure on `channel` with `code` and `reason`.
pub(crate) fn next_step(channel: &str, code: &str, reason: &str) -> NextStep {
    let channel = channel.to_ascii_lowercase();
    let said = format!("{code} {reason}").to_lowercase();
    RULES
        .iter()
        .find(|r| {
            (r.channels.is_empty() || r.channels.contains(&channel.as_str()))
                && r.words.iter().any(|w| said.contains(w))
        })
        .map_or(UNKNOWN, |r| r.step.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_decides_and_an_unknown_failure_is_investigated() {
        let cases = [
            (
                "whatsapp",
                "uncategorized_error",
                "Message failed to send because more than 24 hours have passed since the customer last replied",
                NextAction::SendTemplate,
            ),
            (
                "web",
                "uncategorized_error",
                "more than 24 hours have passed",
                NextAction::Investigate,
            ),
            (
                "messenger",
                "uncategorized_error",
                "This person isn't available right now.",
                NextAction::DoNotRetry,
            ),
            (
                "messenger",
                "uncategorized_error",
                "Unsupported message type `form`",
                NextAction::ChangeContent,
            ),
            (
                "whatsapp",
                "uncategorized_error",
                "Too many messages sent from this phone number",
                NextAction::RetryLater,
            ),
            (
                "telegram",
                "uncategorized_error",
                "Access token expired",
                NextAction::FixIntegration,
            ),
            (
                "line",
                "uncategorized_error",
                "Something odd",
                NextAction::Investigate,
            ),
        ];
        for (channel, code, reason, want) in cases {
            assert_eq!(next_step(channel, code, reason).action, want, "{reason}");
        }
        assert!(next_step("whatsapp", "x", "too many requests").retryable);
    }
}
