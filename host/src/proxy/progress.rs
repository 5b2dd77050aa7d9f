//! Upstream progress relayed in order, and ahead of the answer it belongs to.
//!
//! rmcp hands each incoming notification to a task of its own, so progress relayed from a
//! handler can reach the client out of order, or after the answer (when the client's stream for
//! that request is already closed). [`InOrder`] wraps the upstream transport instead: it takes
//! progress notifications off the connection as they arrive, in the upstream's order, and queues
//! them for one task that relays them one after another. An answer comes off the same
//! connection after the progress sent before it, so it waits ([`Flights::drained`]) until that
//! progress is out.

use std::sync::Arc;

use rmcp::model::{
    JsonRpcMessage, JsonRpcNotification, ProgressNotificationParam, ProgressToken,
    ServerNotification,
};
use rmcp::service::{Peer, RoleClient, RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;

use super::flights::Flights;

/// Progress notifications waiting to be relayed, per session: beyond this an upstream is
/// flooding, and further progress (which is advisory) is dropped rather than buffered.
const QUEUE: usize = 1024;

/// A queued notification: the upstream token it came with, and the params to send the client.
type Queued = (ProgressToken, ProgressNotificationParam);

/// The upstream transport, with progress notifications taken off it and queued in order.
pub(super) struct InOrder<T> {
    inner: T,
    queue: mpsc::Sender<Queued>,
    flights: Arc<Flights>,
}

impl<T> InOrder<T> {
    /// Wraps `inner`, and starts the task that relays its progress to `downstream`; the task
    /// ends with the transport.
    pub(super) fn new(inner: T, flights: Arc<Flights>, downstream: Peer<RoleServer>) -> Self {
        let (queue, mut queued) = mpsc::channel::<Queued>(QUEUE);
        let relayed = flights.clone();
        tokio::spawn(async move {
            while let Some((upstream, params)) = queued.recv().await {
                let _ = downstream.notify_progress(params).await;
                relayed.relayed(&upstream);
            }
        });
        InOrder {
            inner,
            queue,
            flights,
        }
    }

    /// Queues progress the client asked for, under the client's token; anything else (a
    /// request over, or one that asked none) would mean nothing to the client.
    fn queue(&self, params: &ProgressNotificationParam) {
        let Ok(permit) = self.queue.try_reserve() else {
            return;
        };
        if let Some(client) = self.flights.queue(&params.progress_token) {
            let mut relayed = params.clone();
            relayed.progress_token = client;
            permit.send((params.progress_token.clone(), relayed));
        }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for InOrder<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let message = self.inner.receive().await?;
            match &message {
                JsonRpcMessage::Notification(JsonRpcNotification {
                    notification: ServerNotification::ProgressNotification(progress),
                    ..
                }) => self.queue(&progress.params),
                _ => return Some(message),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
