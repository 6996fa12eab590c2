//! The user tools: create, get (by id or externalId), update.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, content, id_arg};
use crate::call::Call;
use crate::error::CallError;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::wire::{
    Metadata, Profile, User, UserCreate, UserListResponse, UserResponse, UserUpdate,
};

#[tool_router(router = user_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "Create a user with your system's externalId (unique in the app), optional profile (givenName, surname, email, avatarUrl, locale) and metadata. Create users before conversations for them. Not idempotent: a second call with the same externalId fails with a conflict.",
        annotations(
            title = "Create a user",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_user(
        &self,
        call: Call,
        Parameters(a): Parameters<CreateUserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let external_id = id_arg("externalId", &a.external_id)?;
        content::check_metadata("metadata", &a.metadata)?;
        content::check_timestamp("signedUpAt", &a.signed_up_at)?;
        let body = UserCreate {
            external_id: Some(external_id),
            profile: a.profile,
            metadata: a.metadata,
            signed_up_at: a.signed_up_at,
            ..Default::default()
        };
        let answer: UserResponse = self.ops.request(&call, &Endpoint::CreateUser(body)).await?;
        Ok(Json(UserOut { user: answer.user }))
    }

    #[tool(
        description = "Get a user by Sunshine Conversations id or by externalId (the id is tried first): profile, identities, metadata.",
        annotations(
            title = "Get a user",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_user(
        &self,
        call: Call,
        Parameters(a): Parameters<UserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let user = id_arg("userId", &a.user_id)?;
        let answer: UserResponse = self.ops.request(&call, &Endpoint::GetUser { user }).await?;
        Ok(Json(UserOut { user: answer.user }))
    }

    #[tool(
        description = "Find users by email: the users whose identities include this email address (the API does not match profile.email). Use a user's id or externalId with get_user or list_conversations.",
        annotations(
            title = "Find users by email",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn find_users(
        &self,
        call: Call,
        Parameters(a): Parameters<FindUsersArgs>,
    ) -> Result<Json<UsersFound>, ToolError> {
        let email = a.email.trim();
        // The shape of an address, not its deliverability: one @ with text on both sides.
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        }) && email.len() <= 320
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(CallError::invalid(
                "email",
                "must be an email address such as sue@example.org",
            )
            .into());
        }
        let answer: UserListResponse = self
            .ops
            .request(
                &call,
                &Endpoint::ListUsersByEmail {
                    email: email.to_owned(),
                },
            )
            .await?;
        Ok(Json(UsersFound {
            email: email.to_owned(),
            users: answer.users,
        }))
    }

    #[tool(
        description = "Update a user's profile, metadata or signedUpAt; fields left out are kept. userId is the id or the externalId. Repeating the same update leaves the same result.",
        annotations(
            title = "Update a user",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn update_user(
        &self,
        call: Call,
        Parameters(a): Parameters<UpdateUserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let user = id_arg("userId", &a.user_id)?;
        content::check_metadata("metadata", &a.metadata)?;
        content::check_timestamp("signedUpAt", &a.signed_up_at)?;
        if a.profile.is_none() && a.metadata.is_none() && a.signed_up_at.is_none() {
            return Err(CallError::invalid(
                "profile",
                "nothing to update: give profile, metadata or signedUpAt",
            )
            .into());
        }
        let body = UserUpdate {
            profile: a.profile,
            metadata: a.metadata,
            signed_up_at: a.signed_up_at,
            ..Default::default()
        };
        let answer: UserResponse = self
            .ops
            .request(&call, &Endpoint::UpdateUser { user, body })
            .await?;
        Ok(Json(UserOut { user: answer.user }))
    }
}

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateUserArgs {
    /// Your system's id for the user (unique in the app); lets you address the user later
    /// without knowing the Sunshine Conversations id.
    pub(crate) external_id: String,
    /// Name, email, avatar and locale.
    #[serde(default)]
    pub(crate) profile: Option<Profile>,
    /// Flat key/value data, at most 4 KB.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
    /// When the user signed up in your system (ISO 8601).
    #[serde(default)]
    pub(crate) signed_up_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UserArgs {
    /// The user's Sunshine Conversations id or externalId (the id is tried first).
    pub(crate) user_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FindUsersArgs {
    /// The email address to look for among the users' identities, e.g. sue@example.org.
    pub(crate) email: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateUserArgs {
    /// The user's Sunshine Conversations id or externalId (the id is tried first).
    pub(crate) user_id: String,
    /// Profile fields to set; fields left out are kept.
    #[serde(default)]
    pub(crate) profile: Option<Profile>,
    /// Metadata to set (replaces the user's metadata), at most 4 KB.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
    /// When the user signed up in your system (ISO 8601).
    #[serde(default)]
    pub(crate) signed_up_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserOut {
    pub(crate) user: User,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsersFound {
    /// The email looked for.
    pub(crate) email: String,
    /// The users with that email among their identities (none is an empty list).
    pub(crate) users: Vec<User>,
}
