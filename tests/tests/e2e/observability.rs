//! The operator's view, proven with real tools: `promtool` on live `/metrics` and on the alert
//! rules, every dashboard and alert expression parsed and checked against the metrics the
//! server exports, and a real Prometheus scraping two nodes under load answering every panel.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Api, Cluster, JsSubscriber, which, ws_url};
use crate::process::free_port;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every PromQL expression of the dashboards and alert rules, with where it comes from.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = repo().join("grafana/dashboards");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("dashboards").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("dashboard json");
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let title = panel["title"].as_str().unwrap_or_default();
                    out.push((
                        format!("{} / {title}", file.file_name().unwrap_or_default().to_string_lossy()),
                        expr.to_owned(),
                    ));
                }
            }
        }
    }
    let alerts = std::fs::read_to_string(repo().join("grafana/alerts.yml")).expect("alerts.yml");
    for line in alerts.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr: ") {
            out.push(("alerts.yml".to_owned(), expr.to_owned()));
        }
    }
    assert!(out.len() > 30, "expected the dashboards and alerts, found {}", out.len());
    out
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("syncchat_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.insert(expr[start..end].to_owned());
        i = end;
    }
    names
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus)");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("promtool output");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn require_tools() -> bool {
    if which("promtool").is_some() && which("prometheus").is_some() {
        return true;
    }
    syncchat_test_support::skip_or_fail(
        "the Prometheus checks",
        "promtool/prometheus are not installed (Debian package prometheus)",
    );
    false
}

#[test]
fn alert_rules_and_every_dashboard_expression_parse() {
    if !require_tools() {
        return;
    }
    let (ok, out) = promtool(&["check", "rules", &repo().join("grafana/alerts.yml").display().to_string()], None);
    assert!(ok, "promtool check rules grafana/alerts.yml:\n{out}");
    // promtool parses PromQL when checking rules: make each expression a recording rule.
    let mut rules = String::from("groups:\n  - name: every-expression\n    rules:\n");
    for (i, (_, expr)) in expressions().iter().enumerate() {
        rules.push_str(&format!(
            "      - record: syncchat_check:expr_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap_or_default()
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("exprs.yml");
    std::fs::write(&file, rules).expect("write");
    let (ok, out) = promtool(&["check", "rules", &file.display().to_string()], None);
    assert!(ok, "an expression does not parse:\n{out}");
}

struct Prometheus {
    child: Child,
    base: String,
}

impl Prometheus {
    fn start(dir: &std::path::Path, targets: &[u16]) -> Prometheus {
        let port = free_port();
        let targets: Vec<String> = targets.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: syncchat\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus.yml");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, base: format!("http://127.0.0.1:{port}") }
    }

    async fn query(&self, expr: &str) -> Value {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("query prometheus");
        resp.json().await.expect("json")
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", self.base)).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("prometheus did not become ready");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_answers_every_panel_for_two_nodes_under_load() {
    if !require_tools() {
        return;
    }
    let Some(cluster) = Cluster::new() else { return };
    let (a, b) = (cluster.node("a", &[]).await, cluster.node("b", &[]).await);
    let prometheus = Prometheus::start(cluster.dir.path(), &[a.port(), b.port()]);
    prometheus.wait_ready().await;
    // Let it scrape the idle nodes first, so rates have a baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let api = Api { client: reqwest::Client::new() };
    let (ann_id, ann) = api.register(&a.base, "ann").await;
    let (_, ben) = api.register(&b.base, "ben").await;
    let conv = api.conversation(&b.base, &ben, &ann_id).await;
    const SENT: usize = 24;
    let sub = JsSubscriber::start(SENT, &ann, &conv, 0, &[ws_url(&a)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.send_alternating([&a.base, &b.base], &ben, &conv, 0, SENT).await;
    let (ok, _) = sub.finish(Duration::from_secs(20)).await;
    assert!(ok, "the subscriber got every message");
    // A file goes through too, so the file panels have something to show.
    let part = reqwest::multipart::Part::bytes(b"minutes of the meeting\n".to_vec()).file_name("minutes.txt");
    let uploaded = api
        .client
        .post(format!("{}/api/v1/files", b.base))
        .bearer_auth(&ben)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), 200);

    // Live /metrics of a node that did all of that passes promtool's checks.
    let live = reqwest::get(format!("{}/metrics", a.base)).await.expect("metrics").text().await.expect("text");
    let (ok, out) = promtool(&["check", "metrics"], Some(&live));
    assert!(ok, "promtool check metrics:\n{out}");
    let exported: String =
        [live, reqwest::get(format!("{}/metrics", b.base)).await.expect("metrics").text().await.expect("text")]
            .concat();
    for (source, expr) in expressions() {
        for name in metric_names(&expr) {
            let found = exported
                .lines()
                .any(|l| l.starts_with(&name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' ')));
            assert!(found, "{source} uses {name}, which the server does not export");
        }
    }

    // Wait for scrapes after the load, then ask Prometheus every panel's question.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent = prometheus.query(r#"sum(syncchat_messages_total{kind="sent"})"#).await;
    let value = sent["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
    assert_eq!(value, Some(SENT as f64), "Prometheus counts exactly the messages sent: {sent}");
    let nodes = prometheus.query("count(count by (node) (syncchat_build_info))").await;
    assert_eq!(nodes["data"]["result"][0]["value"][1], "2", "both nodes are told apart: {nodes}");
    let delivered = prometheus.query("sum(syncchat_deliveries_total)").await;
    assert_eq!(delivered["data"]["result"][0]["value"][1], SENT.to_string(), "{delivered}");

    for (source, expr) in expressions() {
        if source == "alerts.yml" {
            continue; // alert conditions are meant to be empty while all is well
        }
        let answer = prometheus.query(&expr).await;
        assert_eq!(answer["status"], "success", "{source}: {expr}: {answer}");
        let result = answer["data"]["result"].as_array().cloned().unwrap_or_default();
        assert!(!result.is_empty(), "{source} returns no data: {expr}");
    }
}
