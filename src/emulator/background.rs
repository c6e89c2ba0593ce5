//! An emulator served from a thread and a tokio runtime of its own, for synchronous tests and
//! benchmarks: started with the server's own async start, stopped (and the thread joined) when
//! dropped. One runner for both emulators (MTurk's and Prolific's).

use std::future::Future;
use std::io;
use std::thread;

use tokio::sync::oneshot;

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
