//! Every simulator endpoint: a success case and its error cases, pagination and auth.

use serde_json::{Value, json};

use super::support::{APP, Auth, TestSim};

fn app(rest: &str) -> String {
    TestSim::app(rest)
}

#[tokio::test]
async fn conversations_list_create_get_update_delete() {
    let sim = TestSim::demo().await;
    // List needs exactly one user filter; unknown users are 404.
    let r = sim.get(&app("/conversations")).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = sim
        .get(&app(
            "/conversations?filter[userId]=a&filter[userExternalId]=b",
        ))
        .await;
    assert_eq!(r.status, 400);
    let r = sim
        .get(&app("/conversations?filter[userExternalId]=nobody"))
        .await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    let r = sim
        .get(&app("/conversations?filter[userExternalId]=demo-user-05"))
        .await;
    assert_eq!(r.status, 200);
    let conv = &r.body["conversations"][0];
    assert_eq!(conv["isDefault"], true);
    assert_eq!(conv["activeSwitchboardIntegration"]["name"], "bot");

    // Create: personal with one participant; the user's second personal one is not default.
    let r = sim
        .post(&app("/conversations"), json!({"type": "personal", "participants": [{"userExternalId": "demo-user-05"}], "displayName": "Returns", "metadata": {"topic": "returns"}}))
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["conversation"]["isDefault"], false);
    assert_eq!(r.body["conversation"]["displayName"], "Returns");
    let r = sim
        .post(
            &app("/conversations"),
            json!({"type": "personal", "participants": []}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.title(),
        "participants must have exactly 1 item for a personal conversation"
    );
    let r = sim
        .post(&app("/conversations"), json!({"type": "group"}))
        .await;
    assert_eq!(r.title(), "type must be one of: personal, sdkGroup");
    let r = sim
        .post(
            &app("/conversations"),
            json!({"type": "personal", "participants": [{"userId": "5f748c1a2b5315fc007e7977"}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    let r = sim
        .post(&app("/conversations"), json!({"type": "sdkGroup"}))
        .await;
    assert_eq!(r.status, 201, "an sdkGroup may have no participants");

    // Get and update.
    let r = sim.get(&app(&format!("/conversations/{id}"))).await;
    assert_eq!(r.body["conversation"]["metadata"]["topic"], "returns");
    let r = sim
        .patch(
            &app(&format!("/conversations/{id}")),
            json!({"displayName": null, "description": "Refund"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["conversation"].get("displayName").is_none());
    assert_eq!(r.body["conversation"]["description"], "Refund");
    let r = sim
        .patch(
            &app(&format!("/conversations/{id}")),
            json!({"iconUrl": "not a url"}),
        )
        .await;
    assert_eq!(r.title(), "iconUrl must be an absolute http or https URI");
    let r = sim
        .get(&app("/conversations/5f748c1a2b5315fc007e7977"))
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));

    // Delete: the default conversation cannot go; another can.
    let default = sim.conversation_of("demo-user-05").await;
    let r = sim.delete(&app(&format!("/conversations/{default}"))).await;
    assert_eq!(r.status, 400);
    assert!(
        r.title()
            .contains("cannot be deleted because it is the default")
    );
    let r = sim.delete(&app(&format!("/conversations/{id}"))).await;
    assert_eq!((r.status, &r.body), (200, &json!({})));
    let r = sim.get(&app(&format!("/conversations/{id}"))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn participants_and_conversation_pagination() {
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-02").await;
    let r = sim
        .get(&app(&format!("/conversations/{conv}/participants")))
        .await;
    assert_eq!(r.status, 200);
    let p = &r.body["participants"][0];
    assert_eq!(p["userExternalId"], "demo-user-02");
    assert_eq!(
        p["clientAssociations"].as_array().unwrap().len(),
        2,
        "ios and web clients"
    );
    let r = sim
        .get(&app("/conversations/5f748c1a2b5315fc007e7977/participants"))
        .await;
    assert_eq!(r.status, 404);

    // Three conversations for one user, paged one at a time both ways.
    for _ in 0..2 {
        let r = sim
            .post(
                &app("/conversations"),
                json!({"type": "personal", "participants": [{"userExternalId": "demo-user-07"}]}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let list = |q: String| {
        let sim = &sim;
        async move {
            sim.get(&app(&format!(
                "/conversations?filter[userExternalId]=demo-user-07{q}"
            )))
            .await
        }
    };
    let all = list(String::new()).await;
    let ids: Vec<String> = all.body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(all.body["meta"], json!({"hasMore": false}));
    let first = list("&page[size]=1".into()).await;
    assert_eq!(first.body["conversations"][0]["id"], ids[0]);
    assert_eq!(first.body["meta"]["hasMore"], true);
    assert_eq!(first.body["meta"]["afterCursor"], ids[0]);
    assert!(first.body["meta"].get("beforeCursor").is_none());
    let next_link = first.body["links"]["next"].as_str().unwrap();
    assert!(
        next_link.ends_with(&format!("page[after]={}", ids[0])),
        "{next_link}"
    );
    let second = list(format!("&page[size]=1&page[after]={}", ids[0])).await;
    assert_eq!(second.body["conversations"][0]["id"], ids[1]);
    assert_eq!(second.body["meta"]["beforeCursor"], ids[1]);
    let back = list(format!("&page[size]=2&page[before]={}", ids[2])).await;
    let got: Vec<&str> = back.body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(
        back.body["meta"]["hasMore"], false,
        "nothing before the first"
    );
    // The API's page rules.
    for bad in [
        format!("&page[after]={0}&page[before]={0}", ids[0]),
        "&page[after]=short".to_owned(),
        "&page[size]=0".to_owned(),
        "&page[size]=101".to_owned(),
    ] {
        let r = list(bad.clone()).await;
        assert_eq!(
            (r.status, r.title()),
            (400, "Invalid page query parameters"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn messages_page_backwards_from_the_newest_in_hundreds() {
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-01").await;
    let path = app(&format!("/conversations/{conv}/messages"));
    let newest = sim.get(&format!("{path}?page[size]=5")).await;
    let page = newest.body["messages"].as_array().unwrap();
    assert_eq!(page.len(), 100, "page[size] is ignored: pages are 100");
    assert_eq!(
        page[99]["content"]["text"].as_str().unwrap(),
        "Sorry to hear that! Could you share your order number? (250)"
    );
    assert_eq!(newest.body["meta"]["hasMore"], true);
    assert!(newest.body["meta"].get("afterCursor").is_none());
    let before = newest.body["meta"]["beforeCursor"].as_str().unwrap();
    assert_eq!(before, page[0]["id"]);
    assert!(
        newest.body["links"]["prev"]
            .as_str()
            .unwrap()
            .ends_with(&format!("page[before]={before}"))
    );
    let mut seen = page.len();
    let mut cursor = before.to_owned();
    loop {
        let r = sim.get(&format!("{path}?page[before]={cursor}")).await;
        let msgs = r.body["messages"].as_array().unwrap();
        seen += msgs.len();
        assert!(
            r.body["meta"]["afterCursor"].is_string(),
            "newer messages exist"
        );
        if r.body["meta"]["hasMore"] == false {
            assert_eq!(
                msgs[0]["content"]["text"],
                "Hi, my order hasn't arrived yet. (1)"
            );
            break;
        }
        cursor = r.body["meta"]["beforeCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, 250);
    // Forward from the oldest page.
    let r = sim
        .get(&format!(
            "{path}?page[after]={}",
            page[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 99);
    assert_eq!(r.body["meta"]["hasMore"], false);
    let r = sim
        .get(&app("/conversations/5f748c1a2b5315fc007e7977/messages"))
        .await;
    assert_eq!(
        (r.status, r.code(), r.title()),
        (404, "not_found", "Resource not found")
    );
}

#[tokio::test]
async fn messages_post_and_delete() {
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-06").await;
    let path = app(&format!("/conversations/{conv}/messages"));
    let r = sim.post(&path, json!({"author": {"type": "business", "subtypes": ["AI"]}, "content": {"type": "text", "markdownText": "**Hi**"}, "metadata": {"k": 1}})).await;
    assert_eq!(r.status, 201);
    let m = &r.body["messages"][0];
    assert_eq!(m["source"]["type"], "api:conversations");
    assert!(
        m["content"].get("markdownText").is_none(),
        "markdownText is write-only"
    );
    assert!(
        m["content"]["htmlText"]
            .as_str()
            .unwrap()
            .contains("**Hi**")
    );
    assert_eq!(m["metadata"]["k"], 1);
    let id = m["id"].as_str().unwrap().to_owned();
    // A user message, authored by the participant's externalId.
    let r = sim.post(&path, json!({"author": {"type": "user", "userExternalId": "demo-user-06"}, "content": {"type": "text", "text": "hello"}})).await;
    assert_eq!(r.status, 201);
    assert!(r.body["messages"][0]["author"]["userId"].is_string());
    assert!(
        r.body["messages"][0]["author"]
            .get("userExternalId")
            .is_none()
    );
    let r = sim.post(&path, json!({"author": {"type": "user", "userExternalId": "demo-user-07"}, "content": {"type": "text", "text": "x"}})).await;
    assert_eq!(r.status, 400, "only participants author user messages");
    // Validation names the fields.
    let r = sim
        .post(
            &path,
            json!({"author": {"type": "business"}, "content": {"type": "image"}}),
        )
        .await;
    assert_eq!(r.titles(), vec!["content.mediaUrl is required"]);
    let r = sim
        .post(
            &path,
            json!({"content": {"type": "formResponse", "fields": []}}),
        )
        .await;
    assert_eq!(
        r.titles(),
        vec![
            "author is required",
            "content.type formResponse cannot be sent through the API"
        ]
    );
    let r = sim.post(&path, json!({"author": {"type": "business"}, "content": {"type": "template", "template": {}}})).await;
    assert_eq!(
        r.titles(),
        vec!["schema must be whatsapp for template content"]
    );
    let r = sim.post(&path, json!({"author": {"type": "business"}, "content": {"type": "text", "text": "x"}, "destination": {"integrationType": "whatsapp"}})).await;
    assert_eq!(r.status, 400, "demo-user-06 has no whatsapp client");
    let r = sim
        .post(
            &app("/conversations/5f748c1a2b5315fc007e7977/messages"),
            json!({"author": {"type": "business"}, "content": {"type": "text", "text": "x"}}),
        )
        .await;
    assert_eq!(r.code(), "conversation_not_found");
    // Wrong content type and broken JSON.
    let r = sim
        .send(
            Auth::AppBasic,
            "POST",
            &path,
            Some(b"{}".to_vec()),
            "text/plain",
        )
        .await;
    assert_eq!(r.title(), "Content-Type must be application/json");
    let r = sim
        .send(
            Auth::AppBasic,
            "POST",
            &path,
            Some(b"{nope".to_vec()),
            "application/json",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.title().starts_with("The request body is not valid JSON"));

    // Delete one, then all.
    let r = sim.delete(&format!("{path}/{id}")).await;
    assert_eq!((r.status, &r.body), (200, &json!({})));
    let r = sim.delete(&format!("{path}/{id}")).await;
    assert_eq!(r.status, 404);
    let r = sim.delete(&path).await;
    assert_eq!(r.status, 200);
    let r = sim.get(&path).await;
    assert_eq!(r.body["messages"], json!([]));
}

#[tokio::test]
async fn message_limit_is_423_and_body_limit_is_413() {
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-04").await;
    let path = app(&format!("/conversations/{conv}/messages"));
    let before = sim.get(&path).await.body["messages"]
        .as_array()
        .unwrap()
        .len();
    let filled = sim
        .admin(
            "POST",
            &format!("/_sim/apps/{APP}/conversations/{conv}/fill"),
            Some(json!({"count": 29_999 - before})),
        )
        .await;
    assert_eq!(filled["messageCount"], 29_999);
    let text =
        json!({"author": {"type": "business"}, "content": {"type": "text", "text": "last one"}});
    assert_eq!(sim.post(&path, text.clone()).await.status, 201);
    let r = sim.post(&path, text).await;
    assert_eq!(
        (r.status, r.code(), r.title()),
        (
            423,
            "locked",
            "Message limit of 30000 per conversation reached."
        )
    );

    let big = json!({"author": {"type": "business"}, "content": {"type": "text", "text": "x"}, "metadata": {"pad": "y".repeat(101 * 1024)}});
    let r = sim
        .post(
            &app(&format!(
                "/conversations/{}/messages",
                sim.conversation_of("demo-user-01").await
            )),
            big,
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
}

#[tokio::test]
async fn users_create_get_update_delete_and_list_by_email() {
    let sim = TestSim::demo().await;
    let r = sim.post(&app("/users"), json!({"externalId": "new-1", "profile": {"givenName": "Nia", "email": "nia@example.org"}, "metadata": {"plan": "pro"}})).await;
    assert_eq!(r.status, 201);
    let id = r.body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["user"]["authenticated"], false);
    let r = sim
        .post(&app("/users"), json!({"externalId": "new-1"}))
        .await;
    assert_eq!(
        (r.status, r.code(), r.title()),
        (409, "conflict", "User already exists")
    );
    let r = sim
        .post(
            &app("/users"),
            json!({"profile": {"email": "not-an-email"}, "signedUpAt": "yesterday"}),
        )
        .await;
    assert_eq!(
        r.titles(),
        vec![
            "signedUpAt must be an ISO-8601 date-time such as 2020-09-30T13:46:02.733Z",
            "profile.email must be an email address",
        ]
    );
    assert_eq!(
        sim.post(&app("/users"), json!({})).await.status,
        201,
        "externalId is optional since 17.11"
    );
    // By id and by externalId.
    for key in [id.as_str(), "new-1"] {
        let r = sim.get(&app(&format!("/users/{key}"))).await;
        assert_eq!(r.body["user"]["profile"]["givenName"], "Nia");
    }
    let r = sim.get(&app("/users/nobody")).await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    // Hostile ids stay in their segment.
    let r = sim.get(&app("/users/..%2F..%2Fswitchboards")).await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    let r = sim
        .patch(
            &app("/users/new-1"),
            json!({"profile": {"surname": "Obi", "givenName": null}, "metadata": {"plan": "free"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["user"]["profile"],
        json!({"surname": "Obi", "email": "nia@example.org"})
    );
    assert_eq!(r.body["user"]["metadata"], json!({"plan": "free"}));
    let r = sim
        .patch(&app("/users/new-1"), json!({"externalId": "other"}))
        .await;
    assert_eq!(r.titles(), vec!["externalId cannot be changed"]);
    let r = sim.patch(&app("/users/nobody"), json!({})).await;
    assert_eq!(r.status, 404);
    // List by email identity (required filter; profile.email does not count).
    let r = sim.get(&app("/users")).await;
    assert_eq!(r.status, 400);
    let r = sim
        .get(&app(
            "/users?filter[identities.email]=ben.okafor@example.org",
        ))
        .await;
    assert_eq!(r.body["users"][0]["externalId"], "demo-user-02");
    let r = sim
        .get(&app("/users?filter[identities.email]=nia@example.org"))
        .await;
    assert_eq!(r.body["users"], json!([]));
    // Delete takes the user's personal conversations along.
    let conv = sim.conversation_of("demo-user-09").await;
    assert_eq!(sim.delete(&app("/users/demo-user-09")).await.status, 200);
    assert_eq!(sim.get(&app("/users/demo-user-09")).await.status, 404);
    assert_eq!(
        sim.get(&app(&format!("/conversations/{conv}")))
            .await
            .status,
        404
    );
    assert_eq!(sim.delete(&app("/users/demo-user-09")).await.status, 404);
}

async fn switchboard_ids(sim: &TestSim) -> (String, Vec<Value>) {
    let r = sim.get(&app("/switchboards")).await;
    let sb = r.body["switchboards"][0]["id"].as_str().unwrap().to_owned();
    let r = sim
        .get(&app(&format!("/switchboards/{sb}/switchboardIntegrations")))
        .await;
    (
        sb,
        r.body["switchboardIntegrations"]
            .as_array()
            .unwrap()
            .clone(),
    )
}

#[tokio::test]
async fn switchboards_and_switchboard_integrations() {
    let sim = TestSim::demo().await;
    let (sb, sbis) = switchboard_ids(&sim).await;
    assert_eq!(sbis.len(), 2);
    let r = sim
        .call(Auth::AppBasic, "POST", &app("/switchboards"), None)
        .await;
    assert_eq!(
        (r.status, r.title()),
        (400, "Only one switchboard can be created per app")
    );
    let r = sim
        .patch(
            &app(&format!("/switchboards/{sb}")),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.body["switchboard"]["enabled"], false);
    let r = sim
        .patch(
            &app(&format!("/switchboards/{sb}")),
            json!({"defaultSwitchboardIntegrationId": "5f748c1a2b5315fc007e7977"}),
        )
        .await;
    assert_eq!(r.code(), "switchboard_integration_not_found");
    let r = sim
        .patch(
            &app("/switchboards/5f748c1a2b5315fc007e7977"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "switchboard_not_found"));

    let integrations = sim.get(&app("/integrations?filter[types]=web")).await;
    let web = integrations.body["integrations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = app(&format!("/switchboards/{sb}/switchboardIntegrations"));
    let r = sim
        .post(
            &path,
            json!({"name": "web-greeter", "integrationId": web, "deliverStandbyEvents": false}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["switchboardIntegration"]["integrationType"], "web");
    let new_id = r.body["switchboardIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = sim
        .post(
            &path,
            json!({"name": "web-greeter", "integrationType": "custom"}),
        )
        .await;
    assert_eq!(
        r.status, 409,
        "names pick control targets, so they are unique"
    );
    let r = sim
        .post(
            &path,
            json!({"name": "bad name!", "integrationType": "custom"}),
        )
        .await;
    assert_eq!(
        r.titles(),
        vec!["name may contain only letters, digits, _ and -"]
    );
    let r = sim.post(&path, json!({"name": "x"})).await;
    assert_eq!(
        r.titles(),
        vec!["integrationId or integrationType is required"]
    );
    for i in 0..7 {
        assert_eq!(
            sim.post(
                &path,
                json!({"name": format!("extra-{i}"), "integrationType": format!("oauth:{i}")})
            )
            .await
            .status,
            201
        );
    }
    let r = sim
        .post(
            &path,
            json!({"name": "eleventh", "integrationType": "oauth:x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "too_many_switchboard_integrations")
    );
    let r = sim
        .patch(
            &format!("{path}/{new_id}"),
            json!({"messageHistoryCount": 11}),
        )
        .await;
    assert_eq!(r.titles(), vec!["messageHistoryCount must be from 1 to 10"]);
    let r = sim
        .patch(
            &format!("{path}/{new_id}"),
            json!({"nextSwitchboardIntegrationId": sbis[0]["id"], "messageHistoryCount": 3}),
        )
        .await;
    assert_eq!(
        r.body["switchboardIntegration"]["nextSwitchboardIntegrationId"],
        sbis[0]["id"]
    );
    let r = sim.delete(&format!("{path}/{new_id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        sim.delete(&format!("{path}/{new_id}")).await.code(),
        "switchboard_integration_not_found"
    );
    // Deleting the switchboard clears control everywhere; then one can be created again.
    assert_eq!(
        sim.delete(&app(&format!("/switchboards/{sb}")))
            .await
            .status,
        200
    );
    let conv = sim.conversation_of("demo-user-01").await;
    let c = sim.get(&app(&format!("/conversations/{conv}"))).await;
    assert!(
        c.body["conversation"]
            .get("activeSwitchboardIntegration")
            .is_none()
    );
    let r = sim
        .call(Auth::AppBasic, "POST", &app("/switchboards"), None)
        .await;
    assert_eq!(
        (r.status, r.body["switchboard"]["enabled"].clone()),
        (201, json!(false))
    );
}

#[tokio::test]
async fn control_pass_offer_accept_release() {
    let sim = TestSim::demo().await;
    let (_, sbis) = switchboard_ids(&sim).await;
    let agent = sbis
        .iter()
        .find(|s| s["name"] == "zd-agentWorkspace")
        .unwrap()
        .clone();
    let conv = sim.conversation_of("demo-user-01").await;
    async fn current(sim: &TestSim, conv: &str) -> Value {
        sim.get(&app(&format!("/conversations/{conv}"))).await.body["conversation"].clone()
    }
    let c = |sim| current(sim, &conv);
    let action = |a: &str| app(&format!("/conversations/{conv}/{a}"));
    // Unknown and ambiguous targets are refused and change nothing.
    let r = sim
        .post(
            &action("passControl"),
            json!({"switchboardIntegration": "nobody"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(c(&sim).await["activeSwitchboardIntegration"]["name"], "bot");
    let r = sim.post(&action("passControl"), json!({})).await;
    assert_eq!(r.titles(), vec!["switchboardIntegration is required"]);
    // `next` from the bot is the agent workspace; then by name, id and integrationType.
    let r = sim
        .post(
            &action("passControl"),
            json!({"switchboardIntegration": "next", "metadata": {"reason": "human"}}),
        )
        .await;
    assert_eq!((r.status, &r.body), (200, &json!({})));
    assert_eq!(
        c(&sim).await["activeSwitchboardIntegration"]["id"],
        agent["id"]
    );
    for target in ["bot", "zd:agentWorkspace"] {
        assert_eq!(
            sim.post(
                &action("passControl"),
                json!({"switchboardIntegration": target})
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(
        c(&sim).await["activeSwitchboardIntegration"]["integrationType"],
        "zd:agentWorkspace"
    );
    // Offer to the bot, which then accepts.
    let r = sim
        .post(
            &action("offerControl"),
            json!({"switchboardIntegration": agent["id"]}),
        )
        .await;
    assert_eq!(r.status, 400, "cannot offer to the active integration");
    assert_eq!(
        sim.post(
            &action("offerControl"),
            json!({"switchboardIntegration": "bot"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        c(&sim).await["pendingSwitchboardIntegration"]["name"],
        "bot"
    );
    // The integration key belongs to another custom integration: not the pending one.
    let r = sim
        .call(
            Auth::IntegrationBasic,
            "POST",
            &action("acceptControl"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert_eq!(
        sim.call(Auth::AppBasic, "POST", &action("acceptControl"), None)
            .await
            .status,
        200
    );
    let now = c(&sim).await;
    assert_eq!(now["activeSwitchboardIntegration"]["name"], "bot");
    assert!(now.get("pendingSwitchboardIntegration").is_none());
    assert_eq!(
        sim.call(Auth::AppBasic, "POST", &action("acceptControl"), None)
            .await
            .status,
        400
    );
    // Release: integration scope must be the active one.
    let r = sim
        .call(
            Auth::IntegrationBasic,
            "POST",
            &action("releaseControl"),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        sim.call(
            Auth::AppBasic,
            "POST",
            &action("releaseControl"),
            Some(json!({"metadata": {"a": "b"}}))
        )
        .await
        .status,
        200
    );
    assert!(c(&sim).await.get("activeSwitchboardIntegration").is_none());
    let r = sim
        .post(
            &app("/conversations/5f748c1a2b5315fc007e7977/passControl"),
            json!({"switchboardIntegration": "bot"}),
        )
        .await;
    assert_eq!(r.code(), "conversation_not_found");
}

#[tokio::test]
async fn integrations_list_filter_page_and_get() {
    let sim = TestSim::demo().await;
    let r = sim.get(&app("/integrations")).await;
    let all = r.body["integrations"].as_array().unwrap();
    let kinds: Vec<&str> = all.iter().map(|i| i["type"].as_str().unwrap()).collect();
    for k in ["web", "ios", "android", "messenger", "whatsapp", "custom"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let messenger = all.iter().find(|i| i["type"] == "messenger").unwrap();
    assert_eq!(
        messenger["pageAccessToken"],
        Value::Null,
        "channel secrets are never echoed"
    );
    let r = sim
        .get(&app("/integrations?filter[types]=ios,android"))
        .await;
    assert_eq!(r.body["integrations"].as_array().unwrap().len(), 2);
    let r = sim
        .get(&app("/integrations?filter[types]=carrier-pigeon"))
        .await;
    assert_eq!((r.status, r.title()), (400, "Invalid query parameters"));
    let r = sim.get(&app("/integrations?page[size]=2")).await;
    assert_eq!(r.body["integrations"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["meta"]["hasMore"], true);
    let id = all[1]["id"].as_str().unwrap();
    let r = sim.get(&app(&format!("/integrations/{id}"))).await;
    assert_eq!(r.body["integration"]["id"], id);
    let r = sim
        .get(&app("/integrations/5f748c1a2b5315fc007e7977"))
        .await;
    assert_eq!((r.status, r.code()), (404, "integration_not_found"));
}

#[tokio::test]
async fn custom_integration_webhooks_crud() {
    let sim = TestSim::demo().await;
    let r = sim.get(&app("/integrations?filter[types]=custom")).await;
    let custom = r.body["integrations"][0]["id"].as_str().unwrap().to_owned();
    let path = app(&format!("/integrations/{custom}/webhooks"));
    let r = sim.get(&path).await;
    assert_eq!(r.body["webhooks"].as_array().unwrap().len(), 1);
    let r = sim
        .post(
            &path,
            json!({"target": "https://example.org/hook", "triggers": ["conversation:message"]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let hook = r.body["webhook"].clone();
    assert_eq!(hook["version"], "v2");
    assert!(hook["secret"].as_str().unwrap().len() >= 32);
    let id = hook["id"].as_str().unwrap();
    let r = sim
        .patch(&format!("{path}/{id}"), json!({"includeFullUser": true}))
        .await;
    assert_eq!(r.body["webhook"]["includeFullUser"], true);
    let r = sim
        .post(
            &path,
            json!({"target": "ftp://x", "triggers": ["conversation:nap"]}),
        )
        .await;
    assert_eq!(
        r.titles(),
        vec![
            "target must be an absolute http or https URI",
            "triggers[0] is not a known trigger"
        ]
    );
    // An integration key manages its own webhooks through `me`.
    let me = app("/integrations/me/webhooks");
    let r = sim.call(Auth::IntegrationBasic, "GET", &me, None).await;
    assert_eq!(r.body["webhooks"].as_array().unwrap().len(), 2);
    let r = sim.call(Auth::AppBasic, "GET", &me, None).await;
    assert_eq!(r.status, 400);
    let web = sim.get(&app("/integrations?filter[types]=web")).await.body["integrations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sim.get(&app(&format!("/integrations/{web}/webhooks")))
            .await
            .status,
        400
    );
    assert_eq!(sim.get(&format!("{path}/{id}")).await.status, 200);
    assert_eq!(sim.delete(&format!("{path}/{id}")).await.status, 200);
    assert_eq!(sim.get(&format!("{path}/{id}")).await.status, 404);
}

#[tokio::test]
async fn auth_schemes_and_scopes() {
    let sim = TestSim::demo().await;
    let conv_path = app("/conversations?filter[userExternalId]=demo-user-01");
    // Both schemes, all three scopes, on a route every scope may call.
    for auth in [
        Auth::AppBasic,
        Auth::AppJwt,
        Auth::AccountBasic,
        Auth::AccountJwt,
        Auth::IntegrationBasic,
        Auth::IntegrationJwt,
    ] {
        assert_eq!(
            sim.call(auth.clone(), "GET", &conv_path, None).await.status,
            200,
            "{auth:?}"
        );
    }
    // Integration keys cannot read switchboards or integrations.
    for path in [app("/switchboards"), app("/integrations")] {
        for auth in [Auth::IntegrationBasic, Auth::IntegrationJwt] {
            let r = sim.call(auth, "GET", &path, None).await;
            assert_eq!((r.status, r.code()), (403, "forbidden"), "{path}");
        }
        assert_eq!(
            sim.call(Auth::AccountJwt, "GET", &path, None).await.status,
            200
        );
    }
    // Wrong or missing credentials: 401 with the error body.
    let r = sim.call(Auth::None, "GET", &conv_path, None).await;
    assert_eq!(
        (r.status, r.code(), r.title()),
        (401, "unauthorized", "Authorization is required")
    );
    let wrong = zendesk_messaging_mcp::sunco::auth::basic_header(
        zendesk_messaging_mcp::simulator::seed::DEFAULT_KEY_ID,
        &zendesk_messaging_mcp::secret::Secret::new("wrong"),
    );
    assert_eq!(
        sim.call(
            Auth::Raw(wrong.expose().to_owned()),
            "GET",
            &conv_path,
            None
        )
        .await
        .status,
        401
    );
    // A JWT without kid, with the wrong scope, signed with the wrong secret, or expired.
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let key = zendesk_messaging_mcp::simulator::seed::DEFAULT_KEY_ID;
    let secret = zendesk_messaging_mcp::simulator::seed::DEFAULT_KEY_SECRET.as_bytes();
    let token = |kid: Option<&str>, claims: Value, secret: &[u8]| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = kid.map(str::to_owned);
        format!(
            "Bearer {}",
            encode(&h, &claims, &EncodingKey::from_secret(secret)).unwrap()
        )
    };
    let cases = [
        (
            token(None, json!({"scope": "app"}), secret),
            "Invalid JWT header. Missing key id (kid)",
        ),
        (
            token(Some(key), json!({"scope": "account"}), secret),
            "Invalid JWT: scope must be \"app\" for this key",
        ),
        (
            token(Some(key), json!({"scope": "app"}), b"nope"),
            "Invalid JWT",
        ),
        (
            token(Some(key), json!({"scope": "app", "exp": 1_000_000}), secret),
            "Invalid JWT: the token has expired",
        ),
        ("Bearer not.a.jwt".to_owned(), "Invalid JWT"),
        (
            "Digest abc".to_owned(),
            "Unsupported authorization scheme: use Basic or Bearer",
        ),
    ];
    for (header, title) in cases {
        let r = sim.call(Auth::Raw(header), "GET", &conv_path, None).await;
        assert_eq!((r.status, r.title()), (401, title));
    }
    // An app key reaches only its own app; an account key gets 404 for an unknown app.
    let other =
        "/v2/apps/5f748c1a2b5315fc007e7977/conversations?filter[userExternalId]=demo-user-01";
    assert_eq!(
        sim.call(Auth::AppBasic, "GET", other, None).await.status,
        403
    );
    let r = sim.call(Auth::AccountBasic, "GET", other, None).await;
    assert_eq!((r.status, r.code()), (404, "app_not_found"));
}
