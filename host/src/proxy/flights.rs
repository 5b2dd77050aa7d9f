//! Which downstream request each upstream request was sent for.
//!
//! rmcp numbers a session's upstream requests itself and stamps its own progress token on each,
//! so what the upstream sends back about a request (progress, or a question of its own such as
//! an elicitation) names the upstream request, not the client's. This table maps both back:
//! progress goes out with the client's token (and so on the client's stream for that request),
//! and a question the upstream asks while serving a request is sent on that request's stream.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rmcp::model::{ProgressToken, RequestId};
use rmcp::service::InboundStreamOrigin;

/// How long a finished request's progress token still maps: rmcp hands each incoming
/// notification to a task of its own, so progress sent just before a response can be relayed
/// just after it.
const PROGRESS_GRACE: Duration = Duration::from_secs(2);

/// One session's upstream requests in flight.
#[derive(Debug, Default)]
pub(super) struct Flights(Mutex<Table>);

#[derive(Debug, Default)]
struct Table {
    /// Upstream request id -> the downstream request it serves.
    requests: HashMap<RequestId, RequestId>,
    /// Upstream progress token -> the client's progress token, and when the request ended.
    progress: HashMap<ProgressToken, (ProgressToken, Option<Instant>)>,
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
        if let Some((_, ended)) = t.progress.get_mut(&self.upstream_token) {
            *ended = Some(Instant::now());
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
        t.progress
            .retain(|_, (_, ended)| ended.is_none_or(|at| at.elapsed() < PROGRESS_GRACE));
        t.requests.insert(upstream_id.clone(), downstream_id);
        if let Some(token) = downstream_token {
            t.progress.insert(upstream_token.clone(), (token, None));
        }
        Boarding {
            flights: self,
            upstream_id,
            upstream_token,
        }
    }

    /// The client's progress token for an upstream one; `None` when the client asked for no
    /// progress on that request, or it ended more than [`PROGRESS_GRACE`] ago.
    pub(super) fn client_token(&self, upstream: &ProgressToken) -> Option<ProgressToken> {
        self.lock()
            .progress
            .get(upstream)
            .filter(|(_, ended)| ended.is_none_or(|at| at.elapsed() < PROGRESS_GRACE))
            .map(|(token, _)| token.clone())
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
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
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
        assert_eq!(flights.client_token(&token(0)), Some(token(70)));
        assert_eq!(
            flights.origin(None),
            Some(n(7)),
            "the only request in flight"
        );
        let b = flights.board(n(1), token(1), n(8), None);
        assert_eq!(flights.client_token(&token(1)), None, "no progress asked");
        assert_eq!(flights.origin(None), None, "two in flight: unknown");
        let on_b = InboundStreamOrigin::OutboundRequest(n(1));
        assert_eq!(flights.origin(Some(&on_b)), Some(n(8)));
        drop(a);
        assert_eq!(
            flights.client_token(&token(0)),
            Some(token(70)),
            "progress relayed just after the answer still maps"
        );
        assert_eq!(flights.origin(None), Some(n(8)), "questions do not");
        drop(b);
        assert_eq!(flights.origin(Some(&on_b)), None);
    }
}
