//! The sending side of a fault scenario: accounts and conversations, sends that retry with the
//! same `clientMessageId` until acked (REST and GraphQL `sendMessage`), and the history read
//! back afterwards.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Wall-clock milliseconds: the fleet (Node) stamps its events the same way on this machine.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// One acknowledged send.
#[derive(Clone, Debug)]
pub struct Ack {
    pub conv: String,
    pub client_id: String,
    pub seq: i64,
    /// When the first attempt started.
    pub first_try: i64,
    /// When the attempt that was acked started: the commit happened after this.
    pub attempt_start: i64,
    pub acked: i64,
    pub attempts: u32,
}

/// What the senders did, shared by all their tasks.
#[derive(Default)]
pub struct Sends {
    pub acks: Vec<Ack>,
    /// (conversation, clientMessageId) of sends that were never acked before giving up.
    pub gave_up: Vec<(String, String)>,
    /// Failed attempts by what they got: an HTTP status, "timeout", "connect", ...
    pub failures: std::collections::BTreeMap<String, u64>,
}

pub type SharedSends = Arc<Mutex<Sends>>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Characters added to every message body (big frames for the slow consumer).
    pad: usize,
}

/// How long a sender keeps retrying one message before it records it as never acked.
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);
/// A single attempt's bound: generous on a loaded 2-core machine, but a hang is an error.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    pub fn new() -> Client {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        Client { http, pad: 0 }
    }

    pub fn with_padding(mut self, pad: usize) -> Client {
        self.pad = pad;
        self
    }

    async fn post(&self, url: String, token: Option<&str>, body: &Value) -> Result<(u16, Value), String> {
        self.post_with_retry_after(url, token, body).await.map(|(status, v, _)| (status, v))
    }

    /// The status, the JSON body, and whether the answer said when to retry.
    async fn post_with_retry_after(
        &self,
        url: String,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value, bool), String> {
        let mut req = self.http.post(url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key(reqwest::header::RETRY_AFTER);
        Ok((status, resp.json().await.unwrap_or(Value::Null), retry_after))
    }

    /// Registers `name` (retrying while the cluster warms up); (user id, access token).
    pub async fn register(&self, base: &str, name: &str) -> (String, String) {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse battery"});
        let mut last = String::new();
        for _ in 0..20 {
            match self.post(format!("{base}/api/v1/auth/register"), None, &body).await {
                Ok((200, user)) => {
                    return (
                        user["user"]["id"].as_str().unwrap_or_default().to_owned(),
                        user["accessToken"].as_str().unwrap_or_default().to_owned(),
                    );
                }
                Ok((status, v)) => last = format!("{status} {v}"),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("register {name}: {last}");
    }

    /// A group conversation of `token`'s user and `others`.
    pub async fn group(&self, base: &str, token: &str, others: &[String], title: &str) -> String {
        let body = json!({"participantIds": others, "title": title});
        let (status, conv) =
            self.post(format!("{base}/api/v1/conversations"), Some(token), &body).await.expect("create conversation");
        assert_eq!(status, 200, "create conversation: {conv}");
        conv["id"].as_str().unwrap_or_default().to_owned()
    }

    /// One attempt; the stored seq on success, or what went wrong and whether it may be
    /// retried (a refusal of the request itself, such as 404, will not change by retrying;
    /// 401 is retried because a database outage shows as UNAUTHENTICATED on main today).
    async fn attempt(
        &self,
        base: &str,
        token: &str,
        conv: &str,
        client_id: &str,
        graphql: bool,
    ) -> Result<i64, (String, bool)> {
        self.attempt_once(base, token, conv, client_id, graphql).await.map_err(|why| {
            let permanent =
                ["400", "403", "404", "409", "413", "422", "BAD_USER_INPUT", "FORBIDDEN", "NOT_FOUND", "CONFLICT"];
            let retry = !permanent.iter().any(|p| why.split(' ').any(|w| w == *p));
            (why, retry)
        })
    }

    async fn attempt_once(
        &self,
        base: &str,
        token: &str,
        conv: &str,
        client_id: &str,
        graphql: bool,
    ) -> Result<i64, String> {
        let body = format!("fault-suite {client_id} {}", "x".repeat(self.pad));
        let (status, v) = if graphql {
            let q = json!({
                "query": "mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq } }",
                "variables": {"i": {"conversationId": conv, "body": body, "clientMessageId": client_id}},
            });
            self.post(format!("{base}/graphql"), Some(token), &q).await?
        } else {
            let b = json!({"body": body, "clientMessageId": client_id});
            let url = format!("{base}/api/v1/conversations/{conv}/messages");
            let (status, v, retry_after) = self.post_with_retry_after(url, Some(token), &b).await?;
            if status == 503 && !retry_after {
                return Err(format!("rest 503 {} without Retry-After", v["code"].as_str().unwrap_or_default()));
            }
            (status, v)
        };
        if graphql {
            if let Some(seq) = v["data"]["sendMessage"]["seq"].as_i64() {
                return Ok(seq);
            }
            let code = v["errors"][0]["extensions"]["code"].as_str().unwrap_or("no code");
            return Err(format!("graphql {status} {code}"));
        }
        match (status, v["seq"].as_i64()) {
            (200, Some(seq)) => Ok(seq),
            _ => Err(format!("rest {status} {}", v["code"].as_str().unwrap_or_default())),
        }
    }

    /// Sends one message, retrying on any error or timeout with the same `clientMessageId`
    /// (the server stores it once) and moving to the next node, until it is acked.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        bases: &[String],
        first: usize,
        token: &str,
        conv: &str,
        client_id: &str,
        graphql: bool,
        sends: &SharedSends,
    ) -> Option<Ack> {
        let first_try = now_ms();
        let mut attempts = 0;
        let mut node = first;
        loop {
            attempts += 1;
            let attempt_start = now_ms();
            match self.attempt(&bases[node % bases.len()], token, conv, client_id, graphql).await {
                Ok(seq) => {
                    let ack = Ack {
                        conv: conv.to_owned(),
                        client_id: client_id.to_owned(),
                        seq,
                        first_try,
                        attempt_start,
                        acked: now_ms(),
                        attempts,
                    };
                    if let Ok(mut s) = sends.lock() {
                        s.acks.push(ack.clone());
                    }
                    return Some(ack);
                }
                Err((why, retry)) => {
                    if let Ok(mut s) = sends.lock() {
                        *s.failures.entry(why).or_default() += 1;
                    }
                    if !retry {
                        if let Ok(mut s) = sends.lock() {
                            s.gave_up.push((conv.to_owned(), client_id.to_owned()));
                        }
                        return None;
                    }
                }
            }
            if now_ms() - first_try > i64::try_from(GIVE_UP_AFTER.as_millis()).unwrap_or(i64::MAX) {
                if let Ok(mut s) = sends.lock() {
                    s.gave_up.push((conv.to_owned(), client_id.to_owned()));
                }
                return None;
            }
            node += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The whole stored history of a conversation: (seq, clientMessageId), ascending, read
    /// forward by seq from whichever node answers.
    pub async fn history(&self, bases: &[String], token: &str, conv: &str) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        let mut after = 0;
        let mut errors = 0;
        loop {
            let base = &bases[errors % bases.len()];
            let url = format!("{base}/api/v1/conversations/{conv}/messages?after={after}&limit=200");
            let page: Result<Value, String> = async {
                let resp = self.http.get(url).bearer_auth(token).send().await.map_err(classify)?;
                if !resp.status().is_success() {
                    return Err(format!("history {}", resp.status()));
                }
                resp.json::<Value>().await.map_err(|e| e.to_string())
            }
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    errors += 1;
                    assert!(errors < 50, "reading history of {conv}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            for m in &items {
                let seq = m["seq"].as_i64().unwrap_or_default();
                out.push((seq, m["clientMessageId"].as_str().unwrap_or_default().to_owned()));
                after = after.max(seq);
            }
            if items.len() < 200 {
                return out;
            }
        }
    }
}

fn classify(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}
