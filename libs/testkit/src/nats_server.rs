//! A nats-server of the test's own, for outage tests.

use std::time::Duration;

use uuid::Uuid;

/// A nats-server of the test's own, for outage tests: the shared server is never stopped.
pub struct NatsServer {
    pub port: u16,
    store: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl NatsServer {
    /// Starts a JetStream server on a free port with its own store directory.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = std::env::temp_dir().join(format!("orderflow-nats-{}", Uuid::new_v4().simple()));
        let mut server = Self { port, store, child: None };
        server.resume().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as an outage would); its store survives for [`NatsServer::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and waits until it accepts clients.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("start nats-server (is it on PATH?): {e}"))?;
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("nats-server did not start on port {}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
