//! One engine for both drivers. The engine is written once, as async code over [`Session`]; the sync driver
//! implements it with blocking calls whose futures are always ready, and [`block_on_ready`] drives them without an
//! async runtime.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use postgres::SimpleQueryMessage;

/// What the engine needs from a connection: simple-protocol query strings (one round trip each) and a way to wait.
pub(crate) trait Session {
    fn batch(&mut self, sql: &str) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, postgres::Error>>;
    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()>;
}

impl Session for postgres::Client {
    async fn batch(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
        tracing::trace!(sql, "query");
        self.simple_query(sql)
    }

    async fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(feature = "tokio")]
impl Session for &tokio_postgres::Client {
    async fn batch(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
        tracing::trace!(sql, "query");
        self.simple_query(sql).await
    }

    async fn pause(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Drive a future whose every await completes at once (the sync session's). Should one ever pend, it is polled
/// again after yielding the thread rather than trusted to be ready.
pub(crate) fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}
