//! Ordered delivery of the engine's audit events (policy reloads) to an [`EventSink`].
//!
//! Reloads happen on the watcher thread or in an API handler, neither of which should
//! block on the audit log; one dedicated thread delivers the drafts in order. When the
//! engine was created inside a Tokio runtime, delivery runs on that runtime's handle so
//! sinks that need Tokio (file I/O, timers) work.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;
use symbi_types::{EventDraft, EventSink};

enum Msg {
    Event(EventDraft),
    Flush(Sender<()>),
}

/// Owns the delivery thread; dropping it delivers what is queued, then stops the thread.
pub(crate) struct EventForwarder {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl EventForwarder {
    pub(crate) fn new(sink: Arc<dyn EventSink>) -> Self {
        let (tx, rx) = mpsc::channel();
        let handle = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("symbi-policy-events".into())
            .spawn(move || deliver(sink, handle, rx))
            .expect("spawning a thread");
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub(crate) fn send(&self, draft: EventDraft) {
        if let Some(tx) = &self.tx {
            // The thread lives as long as `self`; a send can only fail during drop.
            let _ = tx.send(Msg::Event(draft));
        }
    }

    /// Waits until every event sent so far has been handed to the sink (or `timeout`).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::channel();
        match &self.tx {
            Some(tx) if tx.send(Msg::Flush(ack_tx)).is_ok() => ack_rx.recv_timeout(timeout).is_ok(),
            _ => false,
        }
    }
}

impl Drop for EventForwarder {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn deliver(sink: Arc<dyn EventSink>, handle: Option<tokio::runtime::Handle>, rx: Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event(draft) => {
                let event_type = draft.event_type.clone();
                let fut = sink.record(draft);
                let result = match &handle {
                    Some(h) => h.block_on(fut),
                    None => futures::executor::block_on(fut),
                };
                if let Err(e) = result {
                    tracing::error!(event_type, error = %e, "policy engine could not record an audit event");
                }
            }
            Msg::Flush(ack) => {
                let _ = ack.send(());
            }
        }
    }
}
