//! SunCo's in-band commands: text that SunCo executes rather than shows.
//!
//! A business message whose text holds `%((switchboard:passControl:<name>))%` moves the
//! conversation's control to the switchboard integration `<name>` (Zendesk's switchboard bot
//! samples send exactly that; agent tools keep it as a macro). Any `%((…))%` is SunCo's command
//! syntax, so the server treats the whole form as a command, whatever it names: text an LLM
//! writes (perhaps echoing a customer's prompt injection) must not move control around the send
//! guard. The simulator executes the switchboard commands as SunCo does; the server refuses the
//! syntax in what a tool sends ([`find_in`]).

use serde_json::Value;

/// Where a command starts and ends.
const OPEN: &str = "%((";
const CLOSE: &str = "))%";

/// One command found in a text: what sits between `%((` and `))%`, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub body: &'a str,
}

impl<'a> Command<'a> {
    /// A switchboard command's action and target: `switchboard:passControl:agent` is
    /// `("passControl", Some("agent"))`; `None` for any other command.
    pub fn switchboard(&self) -> Option<(&'a str, Option<&'a str>)> {
        let rest = self.body.strip_prefix("switchboard:")?;
        Some(match rest.split_once(':') {
            Some((action, target)) => (action.trim(), Some(target.trim())),
            None => (rest.trim(), None),
        })
    }
}

/// The commands in `text`, in order.
pub fn commands(text: &str) -> Vec<Command<'_>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            break;
        };
        found.push(Command {
            body: after[..end].trim(),
        });
        rest = &after[end + CLOSE.len()..];
    }
    found
}

/// The first string in `value` (any depth) that holds a command, as the path of its field
/// below `at` (`content.items[0].actions[1].text`; `at` empty: from the top).
pub fn find_in(at: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(s) => (!commands(s).is_empty()).then(|| at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_in(&format!("{at}[{i}]"), v)),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| match at {
            "" => find_in(k, v),
            _ => find_in(&format!("{at}.{k}"), v),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_each_command_and_its_switchboard_target() {
        let found = commands("Sure! %((switchboard:passControl:agent))% then %(( other ))%");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].switchboard(), Some(("passControl", Some("agent"))));
        assert_eq!(found[1].body, "other");
        assert_eq!(found[1].switchboard(), None);
        assert!(commands("100% ((not)) a command %(( unclosed").is_empty());
    }

    #[test]
    fn names_the_field_that_holds_one() {
        let content = json!({"type": "carousel", "items": [
            {"title": "A", "actions": [{"type": "reply", "text": "ok", "payload": "p"}]},
            {"title": "B", "actions": [{"type": "reply", "text": "x %((switchboard:releaseControl))%", "payload": "p"}]}
        ]});
        assert_eq!(
            find_in("content", &content).as_deref(),
            Some("content.items[1].actions[0].text")
        );
        assert_eq!(find_in("content", &json!({"text": "plain"})), None);
        assert_eq!(
            find_in("", &json!({"author": {"displayName": "%((x))%"}})).as_deref(),
            Some("author.displayName")
        );
    }
}
