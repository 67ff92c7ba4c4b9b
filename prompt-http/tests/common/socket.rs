//! A server on a real socket, in this process: `serve_with_options` over the memory
//! backend on a free port of 127.0.0.1, with an admin key, stopped on demand.

use prompt_http::{
    ServeOptions, StateConfig, bootstrap_admin_key, build_state, serve_with_options,
};
use tokio::net::TcpListener;

/// A running in-process server.
pub struct SocketServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The admin key it was bootstrapped with.
    pub key: String,
    /// Send to begin the graceful stop.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// The serve task: ends once the stop has drained.
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SocketServer {
    /// Start a server with `options` on the memory backend.
    pub async fn start(options: ServeOptions) -> Self {
        let (store, runs) = prompt_store::memory();
        let key = bootstrap_admin_key(&store).await.unwrap().unwrap();
        let (state, writer) = build_state(store, runs, &StateConfig::default())
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve_with_options(
            listener,
            state,
            writer,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            key,
            stop,
            done,
        }
    }

    /// Stop gracefully and wait until the server has.
    pub async fn shut_down(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap().unwrap();
    }
}
