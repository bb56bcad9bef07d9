//! A raw HTTP/1.1 test server on 127.0.0.1: each connection reads one request head, asks
//! the handler what to do for its path, does it and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One step of an answer.
pub(super) enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
}

pub(super) struct Server {
    pub(super) addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Requests received so far.
    pub(super) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(super) fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server answering with `handler(path)`; the handler also gets the server's port
/// (for absolute redirects back to itself).
pub(super) async fn serve<F>(handler: F) -> Server
where
    F: Fn(&str, u16) -> Vec<Step> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let counter = Arc::clone(&hits);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                for step in handler(&path, addr.port()) {
                    match step {
                        Step::Write(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                            let _ = socket.flush().await;
                        }
                        Step::Sleep(pause) => tokio::time::sleep(pause).await,
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { addr, hits, task }
}

/// A complete response with Content-Length.
pub(super) fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<Step> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    vec![Step::Write(bytes)]
}

pub(super) fn redirect(location: &str) -> Vec<Step> {
    response("302 Found", &[("Location", location)], b"")
}

/// A response whose length is not announced: the body runs until the connection closes.
pub(super) fn unsized_response(body_chunks: usize, chunk: &[u8]) -> Vec<Step> {
    let mut steps = vec![Step::Write(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n".to_vec(),
    )];
    steps.extend((0..body_chunks).map(|_| Step::Write(chunk.to_vec())));
    steps
}
