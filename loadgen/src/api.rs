//! The public API as a frontend uses it: register, create conversations, send, read.

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
}

impl Api {
    pub fn new() -> Api {
        Api { http: reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap_or_default() }
    }

    pub async fn post(&self, url: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        Ok(body)
    }

    pub async fn get(&self, url: &str, token: &str) -> anyhow::Result<Value> {
        let resp = self.http.get(url).bearer_auth(token).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        Ok(body)
    }

    /// Registers `name`; returns (user id, access token).
    pub async fn register(&self, base: &str, name: &str) -> anyhow::Result<(String, String)> {
        let body = json!({"username": name, "email": format!("{name}@loadgen.test"), "password": "loadgen-password-1"});
        let user = self.post(&format!("{base}/api/v1/auth/register"), None, body).await?;
        Ok((
            user["user"]["id"].as_str().context("id")?.to_owned(),
            user["accessToken"].as_str().context("token")?.to_owned(),
        ))
    }

    /// A group conversation of `owner` with `members` (added 100 at a time).
    pub async fn group(&self, base: &str, owner: &str, members: &[String], title: &str) -> anyhow::Result<String> {
        let mut chunks = members.chunks(100);
        let first = chunks.next().unwrap_or_default();
        let conv = self
            .post(
                &format!("{base}/api/v1/conversations"),
                Some(owner),
                json!({"participantIds": first, "title": title}),
            )
            .await?;
        let id = conv["id"].as_str().context("conversation id")?.to_owned();
        for chunk in chunks {
            self.post(
                &format!("{base}/api/v1/conversations/{id}/participants"),
                Some(owner),
                json!({"userIds": chunk}),
            )
            .await?;
        }
        Ok(id)
    }

    pub async fn send(&self, base: &str, token: &str, conversation: &str, body: String) -> anyhow::Result<Value> {
        self.post(&format!("{base}/api/v1/conversations/{conversation}/messages"), Some(token), json!({"body": body}))
            .await
    }
}
