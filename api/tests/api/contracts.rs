//! The checked-in contracts match the code: `openapi.yaml` and `schema.graphql` at the repo
//! root are what `syncchat openapi` / `syncchat graphql-schema` print. Regenerate with
//! `cargo run -p syncchat-api -- openapi > openapi.yaml` (and `graphql-schema > schema.graphql`).

use std::path::PathBuf;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn openapi_yaml_matches_the_code() {
    assert!(
        repo_file("openapi.yaml") == syncchat_api::cli::openapi_yaml(),
        "openapi.yaml is stale: run `cargo run -q -p syncchat-api -- openapi > openapi.yaml`"
    );
}

#[test]
fn schema_graphql_matches_the_code() {
    assert!(
        repo_file("schema.graphql") == syncchat_api::cli::graphql_sdl(),
        "schema.graphql is stale: run `cargo run -q -p syncchat-api -- graphql-schema > schema.graphql`"
    );
}

#[test]
fn openapi_names_the_design_routes() {
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&syncchat_api::cli::openapi_yaml()).expect("valid yaml");
    let paths = spec["paths"].as_mapping().expect("paths");
    for (path, method) in [
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/users/me", "get"),
        ("/users", "get"),
        ("/conversations", "get"),
        ("/conversations", "post"),
        ("/conversations/{id}", "get"),
        ("/conversations/{id}", "patch"),
        ("/conversations/{id}/messages", "get"),
        ("/conversations/{id}/messages", "post"),
        ("/messages/{id}", "patch"),
        ("/messages/{id}", "delete"),
        ("/conversations/{id}/read", "post"),
        ("/apps", "post"),
        ("/apps", "get"),
        ("/apps/{id}", "get"),
        ("/apps/{id}", "patch"),
        ("/apps/{id}", "delete"),
        ("/apps/{id}/keys", "post"),
        ("/apps/{id}/keys/{keyId}", "delete"),
        ("/webhooks", "post"),
        ("/webhooks", "get"),
        ("/webhooks/{id}", "get"),
        ("/webhooks/{id}", "patch"),
        ("/webhooks/{id}", "delete"),
        ("/webhooks/{id}/rotate-secret", "post"),
        ("/webhooks/{id}/deliveries", "get"),
        ("/webhooks/{id}/replay", "post"),
        ("/events", "get"),
    ] {
        let entry = paths.get(path).unwrap_or_else(|| panic!("spec lacks {path}"));
        assert!(entry.get(method).is_some(), "spec lacks {method} {path}");
    }
}

#[tokio::test]
async fn the_served_spec_and_docs_are_up() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.expect("app");
    let spec = app.client.get(app.url("/api/openapi.yaml")).send().await.expect("spec");
    assert_eq!(spec.status(), 200);
    assert!(spec.text().await.unwrap_or_default().contains("/conversations/{id}/messages"));
    let docs = app.client.get(app.url("/api/docs")).send().await.expect("docs");
    assert_eq!(docs.status(), 200);
    let graphiql = app.client.get(app.url("/graphql")).send().await.expect("graphiql");
    assert!(graphiql.text().await.unwrap_or_default().to_lowercase().contains("graphiql"));
}

/// What generated clients and schemathesis rely on: every optional field is nullable (the
/// server sends `null`), every JSON body operation documents 415, enforced limits are in the
/// spec, and the served spec is the checked-in one.
#[tokio::test]
async fn the_spec_describes_what_the_server_answers() {
    let spec: serde_json::Value = serde_yaml_ng::from_str(&syncchat_api::cli::openapi_yaml()).expect("valid yaml");
    let message = &spec["components"]["schemas"]["MessageView"];
    assert_eq!(message["properties"]["editedAt"]["nullable"], true, "{message}");
    let required: Vec<&str> = message["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for (name, property) in message["properties"].as_object().unwrap() {
        assert!(
            required.contains(&name.as_str()) || property["nullable"] == true,
            "MessageView.{name} is optional but not nullable"
        );
    }
    let create = &spec["paths"]["/conversations"]["post"]["responses"];
    assert!(create.get("415").is_some(), "415 is documented: {create}");
    let limit = spec["paths"]["/conversations/{id}/messages"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .cloned()
        .unwrap();
    assert_eq!((limit["schema"]["minimum"].as_f64(), limit["schema"]["maximum"].as_f64()), (Some(1.0), Some(200.0)));

    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.expect("app");
    let served = app.client.get(app.url("/api/openapi.yaml")).send().await.expect("spec").text().await.unwrap();
    assert_eq!(served, repo_file("openapi.yaml"), "the served spec is the checked-in one");
    // A 405 says which methods the route has (RFC 9110), and bodies of another type are 415.
    let ann = app.register("ann").await;
    let trace = app
        .client
        .request(reqwest::Method::TRACE, app.url("/api/v1/conversations"))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 405);
    assert_eq!(trace.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST"));
    let text = app
        .client
        .post(app.url("/api/v1/conversations"))
        .bearer_auth(&ann.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let (status, problem) = app.rest("GET", "/conversations?limit=0", Some(&ann.token), None).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("BAD_USER_INPUT")));
    assert!(problem["detail"].as_str().unwrap().contains("limit"), "{problem}");
}
