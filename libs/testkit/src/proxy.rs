//! A TCP proxy a test can cut, to simulate a Postgres outage.

use sqlx::postgres::PgConnectOptions;

use crate::admin_url;

/// A TCP proxy in front of the shared Postgres that a test can cut, to simulate an outage
/// without stopping the server other tests use.
pub struct TcpProxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to the Postgres of `ORDERFLOW_ADMIN_DATABASE_URL`.
    pub async fn to_postgres() -> Self {
        let admin: PgConnectOptions = admin_url().parse().expect("admin url");
        Self::to(format!("{}:{}", admin.get_host(), admin.get_port())).await
    }

    pub async fn to(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut_flag, open) = (cut.clone(), connections.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut_flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection reset
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().expect("lock").push(task.abort_handle());
            }
        });
        Self { port, cut, connections, acceptor }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str) -> String {
        let admin: PgConnectOptions = admin_url().parse().expect("admin url");
        url.replace(&format!("{}:{}", admin.get_host(), admin.get_port()), &format!("127.0.0.1:{}", self.port))
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}
