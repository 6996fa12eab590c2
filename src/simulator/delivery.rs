//! Which content each channel can render, and so which delivery events a business message
//! produces.
//!
//! The rules (documented in the README so a reader can produce a failure on purpose):
//!
//! | channel | renders | fails on |
//! | --- | --- | --- |
//! | web | text, image, file, carousel, list, location, form | template |
//! | ios, android | text, image, file, carousel, list, location, form | template |
//! | messenger | text, image, file, carousel, list, location | form, template |
//! | whatsapp | text, image, file, list, location, template | carousel, form |
//!
//! A message that renders produces `delivery:channel` (the channel accepted it) and then
//! `delivery:user` (the channel confirmed it reached the user, the final event). One that does
//! not renders `delivery:failure` with `uncategorized_error` and a message naming the type, the
//! final event for that channel.

use crate::sunco::wire::DeliveryError;

/// Outcome of handing one message to one channel.
pub(crate) fn deliver(channel: &str, content_type: &str) -> Result<(), DeliveryError> {
    let unsupported: &[&str] = match channel {
        "web" | "ios" | "android" => &["template"],
        "messenger" => &["form", "template"],
        "whatsapp" => &["carousel", "form"],
        _ => &["form", "template"],
    };
    if unsupported.contains(&content_type) {
        Err(DeliveryError {
            code: "uncategorized_error".to_owned(),
            message: format!("Unsupported message type `{content_type}`"),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_fail_on_messenger_but_not_on_web() {
        assert!(deliver("web", "form").is_ok());
        let e = deliver("messenger", "form").unwrap_err();
        assert_eq!(e.message, "Unsupported message type `form`");
        assert!(deliver("whatsapp", "template").is_ok());
        assert!(deliver("web", "template").is_err());
    }
}
