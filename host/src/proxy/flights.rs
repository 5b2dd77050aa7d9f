//! Which downstream request each upstream request was sent for.
//!
//! rmcp numbers a session's upstream requests itself and stamps its own progress token on each,
//! so what the upstream sends back about a request (progress, or a question of its own such as
//! an elicitation) names the upstream request, not the client's. This table maps both back:
//! progress goes out with the client's token (and so on the client's stream for that request),
//! and a question the upstream asks while serving a request is sent on that request's stream.
//!
//! It also counts each request's progress queued for the client and relayed to it, so that an
//! answer waits until the progress that came before it is out ([`Flights::drained`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rmcp::model::{ProgressToken, RequestId};
use rmcp::service::InboundStreamOrigin;
use tokio::sync::Notify;

/// How long a finished request's progress token still maps: rmcp hands each incoming
/// notification to a task of its own, so progress sent just before a response can be relayed
/// just after it.
const PROGRESS_GRACE: Duration = Duration::from_secs(2);

/// How long an answer waits for its progress to reach the client: relaying is a channel hop,
/// so only a client that stopped reading takes this long, and its answer is not held hostage.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// One session's upstream requests in flight.
#[derive(Debug, Default)]
pub(super) struct Flights {
    table: Mutex<Table>,
    /// Woken whenever a progress notification has been relayed.
    relayed: Notify,
}

#[derive(Debug, Default)]
struct Table {
    /// Upstream request id -> the downstream request it serves.
    requests: HashMap<RequestId, RequestId>,
    /// Upstream progress token -> the client's side of it.
    progress: HashMap<ProgressToken, Progress>,
}

#[derive(Debug)]
struct Progress {
    /// The client's progress token.
    client: ProgressToken,
    /// When the request ended, if it has.
    ended: Option<Instant>,
    /// Notifications queued for the client, and how many of them have been relayed.
    queued: u64,
    relayed: u64,
}

impl Progress {
    fn live(&self) -> bool {
        self.ended.is_none_or(|at| at.elapsed() < PROGRESS_GRACE)
    }
}

/// Removes its flight from the table when dropped (answered, failed, cancelled or timed out).
pub(super) struct Boarding<'a> {
    flights: &'a Flights,
    upstream_id: RequestId,
    upstream_token: ProgressToken,
}

impl Drop for Boarding<'_> {
    fn drop(&mut self) {
        let mut t = self.flights.lock();
        t.requests.remove(&self.upstream_id);
        if let Some(p) = t.progress.get_mut(&self.upstream_token) {
            p.ended = Some(Instant::now());
        }
    }
}

impl Flights {
    /// Records that upstream request `upstream_id` (with rmcp's `upstream_token`) serves the
    /// client's request `downstream_id` (with the client's progress token, if it asked for
    /// progress), until the returned guard drops.
    pub(super) fn board(
        &self,
        upstream_id: RequestId,
        upstream_token: ProgressToken,
        downstream_id: RequestId,
        downstream_token: Option<ProgressToken>,
    ) -> Boarding<'_> {
        let mut t = self.lock();
        t.progress.retain(|_, p| p.live());
        t.requests.insert(upstream_id.clone(), downstream_id);
        if let Some(client) = downstream_token {
            let progress = Progress {
                client,
                ended: None,
                queued: 0,
                relayed: 0,
            };
            t.progress.insert(upstream_token.clone(), progress);
        }
        Boarding {
            flights: self,
            upstream_id,
            upstream_token,
        }
    }

    /// The client's progress token for an upstream one, counting a notification as queued for
    /// the client; `None` when the client asked for no progress on that request, or it ended
    /// more than [`PROGRESS_GRACE`] ago.
    pub(super) fn queue(&self, upstream: &ProgressToken) -> Option<ProgressToken> {
        let mut t = self.lock();
        let p = t.progress.get_mut(upstream).filter(|p| p.live())?;
        p.queued += 1;
        Some(p.client.clone())
    }

    /// Counts a queued notification as relayed to the client.
    pub(super) fn relayed(&self, upstream: &ProgressToken) {
        if let Some(p) = self.lock().progress.get_mut(upstream) {
            p.relayed += 1;
        }
        self.relayed.notify_waiters();
    }

    /// Waits (at most [`DRAIN_LIMIT`]) until every progress notification queued so far for the
    /// upstream request with this token has been relayed, so that the client gets them before
    /// the answer, as the upstream sent them.
    pub(super) async fn drained(&self, upstream: &ProgressToken) {
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        loop {
            let woken = self.relayed.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let pending = self
                .lock()
                .progress
                .get(upstream)
                .is_some_and(|p| p.relayed < p.queued);
            if !pending || tokio::time::timeout_at(deadline, woken).await.is_err() {
                return;
            }
        }
    }

    /// The client request an upstream request to the proxy belongs to: the one whose upstream
    /// response stream it arrived on (streamable HTTP says so), otherwise the only request in
    /// flight, if exactly one is (stdio carries no association). `None`: unknown, so it goes
    /// on the client's standalone stream.
    pub(super) fn origin(&self, arrived_on: Option<&InboundStreamOrigin>) -> Option<RequestId> {
        let t = self.lock();
        match arrived_on {
            Some(InboundStreamOrigin::OutboundRequest(upstream)) => {
                t.requests.get(upstream).cloned()
            }
            _ if t.requests.len() == 1 => t.requests.values().next().cloned(),
            _ => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is a single insert or remove; a panic cannot leave the table torn.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: i64) -> RequestId {
        RequestId::Number(i)
    }

    fn token(i: i64) -> ProgressToken {
        ProgressToken(n(i))
    }

    #[test]
    fn maps_tokens_and_origins_while_in_flight() {
        let flights = Flights::default();
        let a = flights.board(n(0), token(0), n(7), Some(token(70)));
        assert_eq!(flights.queue(&token(0)), Some(token(70)));
        assert_eq!(
            flights.origin(None),
            Some(n(7)),
            "the only request in flight"
        );
        let b = flights.board(n(1), token(1), n(8), None);
        assert_eq!(flights.queue(&token(1)), None, "no progress asked");
        assert_eq!(flights.origin(None), None, "two in flight: unknown");
        let on_b = InboundStreamOrigin::OutboundRequest(n(1));
        assert_eq!(flights.origin(Some(&on_b)), Some(n(8)));
        drop(a);
        assert_eq!(
            flights.queue(&token(0)),
            Some(token(70)),
            "progress relayed just after the answer still maps"
        );
        assert_eq!(flights.origin(None), Some(n(8)), "questions do not");
        drop(b);
        assert_eq!(flights.origin(Some(&on_b)), None);
    }
}

#[cfg(test)]
mod drain_tests {
    use super::*;
    use std::sync::Arc;

    fn token(i: i64) -> ProgressToken {
        ProgressToken(RequestId::Number(i))
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_waits_for_its_queued_progress_and_no_longer() {
        let flights = Arc::new(Flights::default());
        let _a = flights.board(
            RequestId::Number(0),
            token(0),
            RequestId::Number(7),
            Some(token(70)),
        );
        flights.drained(&token(0)).await; // nothing queued: returns at once
        assert!(flights.queue(&token(0)).is_some());
        assert!(flights.queue(&token(0)).is_some());
        let relayer = {
            let flights = flights.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    flights.relayed(&token(0));
                }
            })
        };
        let started = tokio::time::Instant::now();
        flights.drained(&token(0)).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "waited for both"
        );
        relayer.await.unwrap();

        assert!(flights.queue(&token(0)).is_some()); // never relayed: a stuck client
        let started = tokio::time::Instant::now();
        flights.drained(&token(0)).await;
        assert_eq!(started.elapsed(), DRAIN_LIMIT, "bounded");
    }
}
