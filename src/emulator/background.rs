//! How both emulators (MTurk's and Prolific's) serve: the accept loop and its connections
//! (HTTP/1 keep-alive, a graceful drain on stop), a handler's way to drop a connection without
//! answering, and a server run from a thread and a tokio runtime of its own for synchronous
//! tests and benchmarks, stopped (and the thread joined) when dropped.

use std::fmt;
use std::future::Future;
use std::io;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// How long a stopping server lets its open connections finish.
const DRAIN: Duration = Duration::from_secs(5);

/// An emulator's answer.
pub(crate) type Answer = Response<Full<Bytes>>;

/// Returned to hyper to make it close the connection without writing any response (a lost
/// answer, a dropped request).
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response deliberately dropped")
    }
}

impl std::error::Error for DropConnection {}

async fn serve_connection<H, Fut>(stream: TcpStream, handle: H, mut stop: watch::Receiver<bool>)
where
    H: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Answer, DropConnection>> + Send + 'static,
{
    let svc = service_fn(handle);
    // No header-read timeout: clients keep pooled connections idle between calls, and a
    // server-side close would turn the next call into a spurious dispatch failure.
    let conn = http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Accepts connections until `stop` changes, each served by `handle`; then drains them for at
/// most [`DRAIN`] (dropping the set aborts whatever did not finish).
pub(crate) async fn accept_loop<H, Fut>(
    listener: TcpListener,
    handle: H,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Answer, DropConnection>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, handle.clone(), stop.clone()));
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// A running server as [`Background`] needs to know it.
pub trait Served: Send + 'static {
    type Handle: Clone + Send + 'static;
    fn url(&self) -> String;
    fn handle(&self) -> Self::Handle;
    fn stop(self) -> impl Future<Output = ()> + Send;
}

/// A server on its own thread; dropping it stops the server and joins the thread.
pub struct Background<H> {
    url: String,
    handle: H,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<H: Clone + Send + 'static> Background<H> {
    /// Runs `start` on a new thread's runtime and waits until it has bound its address.
    pub fn spawn<S, F, Fut>(name: &str, start: F) -> io::Result<Background<H>>
    where
        S: Served<Handle = H>,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<S>>,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start().await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok((server.url(), server.handle())));
                            // Also ends when the Background is dropped (sender dropped).
                            let _ = stop_rx.await;
                            server.stop().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (url, handle) = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the emulator thread ended before it started"))??;
        Ok(Background {
            url,
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn handle(&self) -> H {
        self.handle.clone()
    }
}

impl<H> Drop for Background<H> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
