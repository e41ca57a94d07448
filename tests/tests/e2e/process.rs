//! Starting and stopping the real `syncchat` binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/syncchat`, next to this test's own executable in `target/<profile>/deps/`.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("syncchat");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p syncchat-api`) first",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Runs `syncchat` with no configuration but the port, in `dir`: the embedded defaults.
    pub async fn start_default(dir: &Path) -> Server {
        Self::start(dir, &[]).await
    }

    /// Runs `syncchat` in `dir` with only the port and `env` set.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_on(dir, free_port(), env).await
    }

    /// As `start`, on a given port: a node restarted after a crash comes back where its
    /// clients and the load balancer expect it.
    pub async fn start_on(dir: &Path, port: u16, env: &[(&str, &str)]) -> Server {
        let log = dir.join(format!("server-{port}.log"));
        // Appended: a node restarted on its port keeps the log of the run before.
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(binary())
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SYNCCHAT_BIND", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn syncchat");
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(resp) = client.get(format!("{}/healthz", self.base)).send().await
                && resp.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not become healthy; log:\n{}", self.output());
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_default()
    }

    /// SIGKILL: the node dies without closing anything, as in a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status once it has drained.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
