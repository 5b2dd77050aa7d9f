//! SSE polling (SEP-1699) for the bare server: the POST stream of a `test_reconnection` call is
//! closed by the server after its priming event, before the result, and the client gets the
//! result by reconnecting with `GET` and `Last-Event-ID`. This is what the suite's
//! `server-sse-polling` scenario describes.
//!
//! rmcp gives a tool handler no way to close its own POST stream (`LocalSessionHandle::
//! close_sse_stream` needs the transport's internal HTTP request id), so the disconnect is done
//! one level down: [`PollingSessions`] is rmcp's [`LocalSessionManager`] whose stream for such a
//! call ends after the first event. The session keeps caching what the tool sends, exactly as
//! after `close_sse_stream`, so a resumed stream replays it, as long as the client reconnects
//! before the tool answers: rmcp 3.9 removes a request's channel, cache included, once the
//! response is sent (`LocalSessionWorker::handle_server_message`), so a later `Last-Event-ID`
//! finds nothing. That is why the tool works past the advertised `retry`
//! ([`crate::fixtures::reconnection_work`]).
//!
//! Only the bare setup can use this: `portcullis::mcp::http::router` builds its own session
//! manager, so behind the embedded layer the result arrives on the POST stream (which the
//! scenario reports as information, not as a failure).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::session::{EventStore, ServerSseMessage};
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};

/// The tool whose POST stream the server closes mid-call.
pub const RECONNECTION_TOOL: &str = "test_reconnection";

/// rmcp's in-memory sessions, with the server-side disconnect described in the module docs.
#[derive(Debug, Default)]
pub struct PollingSessions {
    inner: LocalSessionManager,
}

/// Whether `message` is a `tools/call` of [`RECONNECTION_TOOL`].
fn disconnects(message: &ClientJsonRpcMessage) -> bool {
    matches!(
        message,
        JsonRpcMessage::Request(r)
            if matches!(&r.request, ClientRequest::CallToolRequest(call)
                if call.params.name == RECONNECTION_TOOL)
    )
}

impl SessionManager for PollingSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // The first event of a request's stream is its priming event (an id and `retry`).
        let events = if disconnects(&message) { 1 } else { usize::MAX };
        let stream = self.inner.create_stream(id, message).await?;
        Ok(stream.take(events))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(v: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_the_reconnection_call_disconnects() {
        let call = |name: &str| {
            message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": name, "arguments": {}}}))
        };
        assert!(disconnects(&call(RECONNECTION_TOOL)));
        assert!(!disconnects(&call("test_simple_text")));
        assert!(!disconnects(&message(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        )));
    }
}
