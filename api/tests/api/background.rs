//! Background work has an owner: a stopped server leaves none of its loops running, so a
//! restarted one (same flags) starts with its own and does not share the process with the
//! old ones.

use crate::helpers::{Backend, TestApp, spawn_app_with, spawn_cluster};

/// What every server runs beside its requests.
const ALWAYS: [&str; 6] =
    ["business_gauges", "control_listener", "file_collector", "housekeeping", "presence_sweeper", "stats_sampler"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn assert_runs(app: &TestApp, names: &[&str]) {
    let running = app.background.running();
    for name in names {
        assert!(running.contains(name), "{name} is not running: {running:?}");
    }
}

/// Restarts `app` and checks that everything the old server ran has stopped, none of it by
/// being aborted.
async fn restart_and_check_the_old_work_stopped(app: TestApp) -> TestApp {
    let old = app.background.clone();
    assert_eq!(old.unstopped(), None, "not shut down yet");
    let app = app.restart().await;
    assert_eq!(old.running(), Vec::<&str>::new(), "the old server's loops outlived it");
    assert_eq!(old.unstopped(), Some(vec![]), "every loop stopped when asked");
    assert!(old.is_stopping());
    app
}

/// The metrics listener's port is free again once the server stopped: the restarted server,
/// with the same `--metrics-bind`, binds it. Sends on Postgres start the send batcher, which
/// stops too.
async fn background_work_stops_with_the_server(backend: Backend) {
    let bind = format!("127.0.0.1:{}", free_port());
    let Some(app) = spawn_app_with(backend, &["--metrics-bind", &bind]).await else { return };
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    app.send(&ann, &conv, "before").await;
    assert_runs(&app, &ALWAYS);
    assert_runs(&app, &["metrics_listener"]);
    if backend == Backend::Postgres {
        assert_runs(&app, &["db_watcher", "send_batcher"]);
    }

    let app = restart_and_check_the_old_work_stopped(app).await;
    assert_runs(&app, &ALWAYS);
    assert_runs(&app, &["metrics_listener"]);
    let metrics = app.client.get(format!("http://{bind}/metrics")).send().await.expect("the same metrics port");
    assert_eq!(metrics.status(), 200);
    app.send(&ann, &conv, "after").await;
    if backend == Backend::Postgres {
        assert_runs(&app, &["db_watcher", "send_batcher"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_stops_with_the_server_on_sqlite() {
    background_work_stops_with_the_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_stops_with_the_server_on_postgres() {
    background_work_stops_with_the_server(Backend::Postgres).await;
}

/// A node of a cluster also runs the healer and the Redis fan-out's two halves; they stop
/// with it, and the restarted node (same Redis, same cluster) runs its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_stops_its_healer_and_fanout() {
    let Some(mut nodes) = spawn_cluster(1, &[]).await else { return };
    let node = nodes.remove(0);
    let cluster = ["healer", "redis_publisher", "redis_receiver"];
    assert_runs(&node, &ALWAYS);
    assert_runs(&node, &cluster);
    let node = restart_and_check_the_old_work_stopped(node).await;
    assert_runs(&node, &ALWAYS);
    assert_runs(&node, &cluster);
}
