//! Private Postgres and Redis instances that a fault scenario owns: started on free ports in
//! temp folders, and hurt only by their own PIDs (never the shared 5432/6379 ones).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// What the suite needs from the machine, or why it cannot run.
pub fn missing_tools() -> Option<String> {
    if !Path::new(PG_BIN).join("initdb").exists() {
        return Some(format!("Postgres binaries are missing ({PG_BIN}/initdb)"));
    }
    if crate::cluster::which("redis-server").is_none() {
        return Some("redis-server is not installed".into());
    }
    if crate::cluster::which("runuser").is_none() {
        return Some("runuser is missing (Postgres runs as the postgres OS user)".into());
    }
    if Command::new("id").arg("postgres").stdout(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
        return Some("there is no `postgres` OS user to run Postgres as".into());
    }
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/node_modules/graphql-ws");
    if !js.exists() {
        return Some("tests/js has no node_modules: run `npm ci --prefix tests/js`".into());
    }
    None
}

/// A Postgres 15 cluster run as the `postgres` user, durable as in production (`fsync=on`,
/// `synchronous_commit=on`) so that a crash proves what a crash would.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        chown_postgres(dir.path());
        let data = dir.path().join("data");
        let initdb = as_postgres(&format!("{PG_BIN}/initdb"))
            .args(["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres", "--no-sync"])
            .stdout(Stdio::null())
            .status();
        assert!(initdb.is_ok_and(|s| s.success()), "initdb");
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nshared_buffers = 16MB\n\
             max_connections = 120\nlog_min_messages = warning\n",
            dir.path().display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).expect("postgresql.conf");
        let pg = Postgres { dir, port };
        pg.ctl(&["-w", "start"]);
        let created = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-qc", "CREATE DATABASE syncchat"])
            .status();
        assert!(created.is_ok_and(|s| s.success()), "CREATE DATABASE");
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/syncchat", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn ctl(&self, args: &[&str]) -> bool {
        let log = self.dir.path().join("postgres.log").display().to_string();
        as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .args(["-D", &self.data(), "-l", &log])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl restart -m fast`: clients are disconnected, the server is back at once.
    pub fn fast_restart(&self) {
        assert!(self.ctl(&["-w", "-m", "fast", "restart"]), "pg_ctl restart");
    }

    pub fn stop(&self) {
        assert!(self.ctl(&["-w", "-m", "fast", "stop"]), "pg_ctl stop");
    }

    /// Starts again, retrying while the old cluster's backends are still exiting (after a
    /// crash they notice the postmaster is gone within a moment).
    pub fn start_again(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ctl(&["-w", "-t", "20", "start"]) {
            assert!(Instant::now() < deadline, "Postgres did not start again:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL to the postmaster by its PID: what a crash looks like; the next start runs
    /// crash recovery from the WAL.
    pub fn crash(&self) {
        let pid_file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).expect("postmaster.pid");
        let pid = pid_file.lines().next().unwrap_or_default().trim().to_owned();
        assert!(!pid.is_empty(), "postmaster.pid names a PID");
        let killed = Command::new("kill").args(["-KILL", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "stop"]);
    }
}

fn as_postgres(program: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", program]);
    cmd
}

fn chown_postgres(dir: &Path) {
    let owned = Command::new("chown").args(["postgres:postgres", &dir.display().to_string()]).status();
    assert!(owned.is_ok_and(|s| s.success()), "chown {}", dir.display());
}

/// `redis-server` as a child without persistence: a restart comes back empty, as a crashed
/// cache without AOF does.
pub struct Redis {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis { child: None, dir: tempfile::tempdir().expect("tempdir"), port: free_port() };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL by PID: every connection drops and everything in memory is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty Redis on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
