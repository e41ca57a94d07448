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
        ("/conversations/{id}/messages", "get"),
        ("/conversations/{id}/messages", "post"),
        ("/messages/{id}", "patch"),
        ("/messages/{id}", "delete"),
        ("/conversations/{id}/read", "post"),
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
