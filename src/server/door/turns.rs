//! The first layer: a turn. At most the configured number of `/mcp` POSTs are handled at once;
//! the others wait for a turn before anything is allocated for them, and past the wait are
//! refused as busy. A GET (a session's event stream, open for as long as the session) takes no
//! turn.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::metrics::UpDownCounter;

use crate::call::Turn;
use crate::error::ErrorClass;
use crate::server::problem_retry;
use crate::telemetry::InProgress;

/// The turns `/mcp` POSTs take, and how long one waits for its turn.
#[derive(Clone)]
pub(super) struct Turns {
    permits: Arc<tokio::sync::Semaphore>,
    concurrency: usize,
    wait: Duration,
    /// Counts the POSTs here, waiting or handled (`http.server.active_requests`).
    active: UpDownCounter<i64>,
}

impl Turns {
    /// `concurrency` turns (at least one), each waited for up to `wait`.
    pub(super) fn new(concurrency: usize, wait: Duration, active: UpDownCounter<i64>) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            concurrency,
            wait,
            active,
        }
    }
}

/// Holds each `/mcp` POST until it has a turn; past the wait, 503 `busy` with `Retry-After`,
/// nothing started.
pub(super) async fn take_turn(State(turns): State<Turns>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    // Counted from its arrival until its answer begins or it is dropped.
    let _active = InProgress::count(&turns.active);
    match tokio::time::timeout(turns.wait, turns.permits.clone().acquire_owned()).await {
        Ok(Ok(permit)) => {
            // The call may give its turn back while it waits (a long poll); otherwise it is
            // given back when the answer begins.
            let turn = Turn::held(permit);
            let mut req = req;
            req.extensions_mut().insert(turn.clone());
            let answer = next.run(req).await;
            turn.give_back();
            answer
        }
        // The semaphore is never closed.
        Ok(Err(_)) => next.run(req).await,
        // No turn in time: refused at once, nothing started, rather than queued without bound.
        Err(_) => problem_retry(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Busy,
            format!(
                "the server is handling {} requests and none finished within {} ms; retry after 1 s",
                turns.concurrency,
                turns.wait.as_millis()
            ),
            1,
        ),
    }
}
