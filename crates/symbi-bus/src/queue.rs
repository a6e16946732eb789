//! A bounded multi-producer queue with backpressure, bounded both in items and in bytes.
//!
//! tokio's `mpsc` bounds only the item count; an inbox must also bound the bytes it holds
//! (a million 1 MiB payloads is not "bounded memory"), must be drainable by the HTTP API
//! and must let retries re-enter. So it is a `VecDeque` under a short mutex with two
//! [`Notify`]s: consumers wait for "not empty", producers for "not full".

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Times an empty consumer yields before it parks (measured: 2 took publish/subscribe
/// from ~870k to ~980k messages/s on 2 cores; 8 was no better).
const YIELDS_BEFORE_PARKING: usize = 2;

/// One producer counted in `BoundedQueue::producers_waiting` while it lives.
struct WaitingProducer<'a>(&'a AtomicUsize);

impl<'a> WaitingProducer<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for WaitingProducer<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Something with a size in bytes (the payload length).
pub(crate) trait Sized_ {
    fn byte_len(&self) -> usize;
}

struct Inner<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// Items handed out with [`BoundedQueue::try_pop_tracked`] whose room was not freed
    /// (in flight, or waiting for a retry): they still count against the bounds, so
    /// unacknowledged and retrying messages cannot grow memory.
    held_items: usize,
    held_bytes: usize,
    /// Items handed out with [`BoundedQueue::try_pop_tracked`], in hand-out order, kept
    /// for redelivery until settled (then `None` until they reach the front).
    flights: VecDeque<Flight<T>>,
    /// Ticket of `flights[0]`.
    flights_base: u64,
    closed: bool,
}

struct Flight<T> {
    item: Option<T>,
    deadline: Instant,
}

impl<T> Inner<T> {
    fn trim_settled(&mut self) {
        while self.flights.front().is_some_and(|f| f.item.is_none()) {
            self.flights.pop_front();
            self.flights_base += 1;
        }
    }
}

/// What [`BoundedQueue::try_pop_tracked`] does with the item it popped, decided by
/// looking at it (the item itself is moved once: out to the caller).
pub(crate) enum Pop {
    /// Hand it out and keep a copy in flight until it is settled or `deadline` passes.
    Track(Instant),
    /// Hand it out and free its room (nothing to acknowledge).
    Free,
    /// Drop it and free its room (e.g. expired).
    Discard,
}

/// What settling an in-flight item does with its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Free it (acknowledged, dead-lettered).
    Free,
    /// Keep it reserved: the item comes back with [`BoundedQueue::requeue_held`] (a retry).
    Keep,
}

/// Why a push failed.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    /// Still full when the deadline passed (or `try_push` on a full queue).
    Full(T),
    /// The queue was closed.
    Closed(T),
}

/// The bounded queue.
pub(crate) struct BoundedQueue<T> {
    inner: Mutex<Inner<T>>,
    max_items: usize,
    max_bytes: usize,
    not_empty: Notify,
    not_full: Notify,
    /// Producers waiting for room. Room-freeing calls wake `not_full` only when this is
    /// non-zero: `Notify::notify_waiters` takes a lock every time, which the hot path of
    /// a queue that is never full should not pay.
    producers_waiting: AtomicUsize,
}

impl<T: Sized_> BoundedQueue<T> {
    pub(crate) fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                held_items: 0,
                held_bytes: 0,
                flights: VecDeque::new(),
                flights_base: 0,
                closed: false,
            }),
            max_items: max_items.max(1),
            max_bytes: max_bytes.max(1),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            producers_waiting: AtomicUsize::new(0),
        }
    }

    /// Pushes without waiting.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(PushError::Closed(item));
        }
        let len = item.byte_len();
        // An item larger than the byte bound still fits into an empty queue, so a payload
        // within `max_payload_size` can always be delivered eventually.
        let (n, b) = (g.items.len() + g.held_items, g.bytes + g.held_bytes);
        if n >= self.max_items || (b + len > self.max_bytes && n > 0) {
            return Err(PushError::Full(item));
        }
        g.bytes += len;
        g.items.push_back(item);
        drop(g);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Pushes, waiting up to `timeout` for room (backpressure).
    pub(crate) async fn push(&self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        match self.try_push(item) {
            Err(PushError::Full(item)) => self.push_slow(item, timeout).await,
            r => r,
        }
    }

    async fn push_slow(&self, mut item: T, timeout: Duration) -> Result<(), PushError<T>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Counted before the re-check under the queue lock: a consumer that frees room
        // after that check sees the count (the lock orders the two) and wakes us. A guard
        // uncounts, so a caller that gives up (a request's timeout drops this future) does
        // not leave the queue paying for wake-ups nobody waits for.
        let _waiting = WaitingProducer::count(&self.producers_waiting);
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            // Register before re-checking so a pop between the check and the await wakes us.
            notified.as_mut().enable();
            match self.try_push(item) {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => item = back,
                Err(e) => return Err(e),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.try_push(item);
            }
        }
    }

    /// Wakes producers waiting for room, if there are any.
    fn room_freed(&self) {
        if self.producers_waiting.load(Ordering::SeqCst) > 0 {
            self.not_full.notify_waiters();
        }
    }

    /// Pops without waiting.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut g = self.inner.lock();
        let item = g.items.pop_front()?;
        g.bytes -= item.byte_len();
        drop(g);
        self.room_freed();
        Some(item)
    }

    /// Puts a held item back at the tail (a retry); its room was reserved, so this never
    /// fails for being full. Returns the item if the queue is closed.
    pub(crate) fn requeue_held(&self, item: T) -> Result<(), T> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(item);
        }
        let len = item.byte_len();
        g.held_items = g.held_items.saturating_sub(1);
        g.held_bytes = g.held_bytes.saturating_sub(len);
        g.bytes += len;
        g.items.push_back(item);
        drop(g);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Pops without waiting and lets `f` decide, under the lock, whether the item stays in
    /// flight ([`Pop::Track`]: its ticket is returned, its room stays reserved) or not.
    /// `None` if the queue is empty.
    ///
    /// First settles the `acked` tickets (acknowledged since the last pop: their room is
    /// freed) under the same lock, moving their items to `settled` for the caller to drop
    /// after the lock is released: the consumer takes the lock once per item, not twice.
    pub(crate) fn try_pop_tracked(
        &self,
        acked: &mut Vec<u64>,
        settled: &mut Vec<T>,
        decide: impl FnOnce(&T) -> Pop,
        copy: impl FnOnce(&T) -> T,
    ) -> Option<(Option<T>, Option<u64>)> {
        let mut g = self.inner.lock();
        let freed = !acked.is_empty() && Self::settle_acked_locked(&mut g, acked, settled);
        let Some(item) = g.items.pop_front() else {
            drop(g);
            if freed {
                self.room_freed();
            }
            return None;
        };
        let len = item.byte_len();
        g.bytes -= len;
        let popped = match decide(&item) {
            Pop::Track(deadline) => {
                g.held_items += 1;
                g.held_bytes += len;
                let ticket = g.flights_base + g.flights.len() as u64;
                g.flights.push_back(Flight {
                    item: Some(copy(&item)),
                    deadline,
                });
                drop(g);
                if freed {
                    self.room_freed();
                }
                (Some(item), Some(ticket))
            }
            Pop::Free => {
                drop(g);
                self.room_freed();
                (Some(item), None)
            }
            Pop::Discard => {
                drop(g);
                self.room_freed();
                (None, None)
            }
        };
        Some(popped)
    }

    /// Settles acknowledged tickets now (see [`Self::try_pop_tracked`]); for when no pop
    /// may come soon (producers wait for room, the periodic sweep).
    pub(crate) fn settle_acked(&self, acked: &mut Vec<u64>, settled: &mut Vec<T>) {
        let mut g = self.inner.lock();
        let freed = Self::settle_acked_locked(&mut g, acked, settled);
        drop(g);
        if freed {
            self.room_freed();
        }
    }

    fn settle_acked_locked(g: &mut Inner<T>, acked: &mut Vec<u64>, settled: &mut Vec<T>) -> bool {
        let before = settled.len();
        for ticket in acked.drain(..) {
            let Some(i) = ticket
                .checked_sub(g.flights_base)
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            // `None`: settled already (expired and redelivered before this ack came).
            if let Some(item) = g.flights.get_mut(i).and_then(|f| f.item.take()) {
                g.held_items -= 1;
                g.held_bytes -= item.byte_len();
                settled.push(item);
            }
        }
        g.trim_settled();
        settled.len() > before
    }

    /// Whether producers wait for room.
    pub(crate) fn producers_waiting(&self) -> bool {
        self.producers_waiting.load(Ordering::SeqCst) > 0
    }

    /// Settles in-flight item `ticket`: `f` runs under the lock with the item (so whatever
    /// it records is visible before the item leaves the ledger) and says what happens to
    /// its room. `None` if the ticket was settled already.
    pub(crate) fn settle<R>(&self, ticket: u64, f: impl FnOnce(T) -> (R, Room)) -> Option<R> {
        let mut g = self.inner.lock();
        let i = usize::try_from(ticket.checked_sub(g.flights_base)?).ok()?;
        let item = g.flights.get_mut(i)?.item.take()?;
        let len = item.byte_len();
        let (out, room) = f(item);
        g.trim_settled();
        if room == Room::Free {
            g.held_items -= 1;
            g.held_bytes -= len;
            drop(g);
            self.room_freed();
        }
        Some(out)
    }

    /// Settles, oldest first, every in-flight item whose deadline is at or before `now`
    /// (see [`Self::settle`] for `f`).
    pub(crate) fn settle_expired<R>(
        &self,
        now: Instant,
        mut f: impl FnMut(T) -> (R, Room),
    ) -> Vec<R> {
        let mut out = Vec::new();
        let mut freed = false;
        let mut g = self.inner.lock();
        g.trim_settled();
        // Deadlines grow with the hand-out order, so the expired ones are a prefix.
        let mut i = 0;
        while let Some(flight) = g.flights.get_mut(i) {
            if flight.deadline > now {
                break;
            }
            if let Some(item) = flight.item.take() {
                let len = item.byte_len();
                let (r, room) = f(item);
                if room == Room::Free {
                    g.held_items -= 1;
                    g.held_bytes -= len;
                    freed = true;
                }
                out.push(r);
            }
            i += 1;
        }
        g.trim_settled();
        drop(g);
        if freed {
            self.room_freed();
        }
        out
    }

    /// Whether a queued or in-flight item satisfies `pred`.
    pub(crate) fn holds(&self, pred: impl Fn(&T) -> bool) -> bool {
        let g = self.inner.lock();
        g.items.iter().any(&pred) || g.flights.iter().filter_map(|f| f.item.as_ref()).any(&pred)
    }

    /// Pops, waiting for an item. `None` once the queue is closed and empty.
    pub(crate) async fn pop(&self) -> Option<T> {
        self.pop_with(Self::try_pop).await
    }

    /// Waits until `f` (a `try_pop*`) returns something. `None` once the queue is closed
    /// and empty.
    pub(crate) async fn pop_with<X>(&self, mut f: impl FnMut(&Self) -> Option<X>) -> Option<X> {
        // Fast path: no waiter registration (it locks the `Notify`) while items are there.
        if let Some(x) = f(self) {
            return Some(x);
        }
        // A consumer that keeps up with its producer would park after every item, and
        // each park costs the producer a wake-up (a system call). Yielding to the
        // scheduler a few times first lets the next item arrive.
        for _ in 0..YIELDS_BEFORE_PARKING {
            tokio::task::yield_now().await;
            if let Some(x) = f(self) {
                return Some(x);
            }
        }
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(x) = f(self) {
                return Some(x);
            }
            if self.inner.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// Removes everything queued, passing each item through `f` under the lock (so what
    /// it records is visible before the item leaves), and returns what `f` kept.
    pub(crate) fn drain_with<R>(&self, f: impl FnMut(T) -> Option<R>) -> Vec<R> {
        let mut g = self.inner.lock();
        g.bytes = 0;
        let out: Vec<R> = g.items.drain(..).filter_map(f).collect();
        drop(g);
        self.room_freed();
        out
    }

    /// Items queued (not counting held ones).
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// Items held (handed out, not yet released).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.inner.lock().held_items
    }

    /// Bytes queued.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// The bounds, for error messages.
    pub(crate) fn describe(&self) -> String {
        let g = self.inner.lock();
        format!(
            "{} of {} messages, {} of {} bytes, counting {} unacknowledged",
            g.items.len() + g.held_items,
            self.max_items,
            g.bytes + g.held_bytes,
            self.max_bytes,
            g.held_items
        )
    }

    /// Closes: producers fail, the consumer drains what is left then sees `None`.
    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_empty.notify_one();
        self.not_full.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    impl Sized_ for Vec<u8> {
        fn byte_len(&self) -> usize {
            self.len()
        }
    }

    #[tokio::test]
    async fn bounds_items_and_bytes() {
        let q = BoundedQueue::<Vec<u8>>::new(3, 10);
        q.try_push(vec![0; 4]).unwrap();
        q.try_push(vec![0; 4]).unwrap();
        assert!(
            matches!(q.try_push(vec![0; 4]), Err(PushError::Full(_))),
            "byte bound"
        );
        q.try_push(vec![0; 2]).unwrap();
        assert!(
            matches!(q.try_push(vec![]), Err(PushError::Full(_))),
            "item bound"
        );
        assert_eq!((q.len(), q.bytes()), (3, 10));
        assert_eq!(q.try_pop().unwrap().len(), 4);
        assert_eq!(q.bytes(), 6);
        // An oversized item fits into an empty queue only.
        let big = BoundedQueue::<Vec<u8>>::new(3, 10);
        big.try_push(vec![0; 50]).unwrap();
        assert!(matches!(big.try_push(vec![0; 1]), Err(PushError::Full(_))));
    }

    #[tokio::test]
    async fn push_waits_for_room_then_times_out() {
        let q = Arc::new(BoundedQueue::<Vec<u8>>::new(1, 100));
        q.try_push(vec![1]).unwrap();
        let q2 = q.clone();
        let waiter =
            tokio::spawn(async move { q2.push(vec![2], Duration::from_secs(5)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.pop().await.unwrap(), vec![1]);
        assert!(
            waiter.await.unwrap(),
            "producer resumed once there was room"
        );
        assert_eq!(q.pop().await.unwrap(), vec![2]);
        q.try_push(vec![3]).unwrap();
        let r = q.push(vec![4], Duration::from_millis(30)).await;
        assert!(matches!(r, Err(PushError::Full(_))));
    }

    fn track(q: &BoundedQueue<Vec<u8>>, deadline: Instant) -> (Vec<u8>, u64) {
        let (out, ticket) = q
            .try_pop_tracked(
                &mut Vec::new(),
                &mut Vec::new(),
                |_| Pop::Track(deadline),
                Vec::clone,
            )
            .unwrap();
        (out.unwrap(), ticket.unwrap())
    }

    #[tokio::test]
    async fn in_flight_items_keep_their_room_until_settled() {
        let q = BoundedQueue::<Vec<u8>>::new(2, 100);
        let later = Instant::now() + Duration::from_secs(60);
        q.try_push(vec![1]).unwrap();
        q.try_push(vec![2]).unwrap();
        let (a, ta) = track(&q, later);
        assert_eq!(a, vec![1]);
        assert!(
            matches!(q.try_push(vec![3]), Err(PushError::Full(_))),
            "an in-flight item keeps its room"
        );
        assert!(q.holds(|i| i == &vec![1]), "in flight counts as held");
        // A retry: settled keeping the room, then requeued at the tail.
        let back = q.settle(ta, |item| (item, Room::Keep)).unwrap();
        assert!(!q.holds(|i| i == &vec![1]));
        assert!(
            q.settle(ta, |item| (item, Room::Free)).is_none(),
            "settled once"
        );
        q.requeue_held(back).unwrap();
        assert_eq!((q.len(), q.held()), (2, 0));
        let (b, tb) = track(&q, later);
        assert_eq!(b, vec![2], "the requeued item went to the tail");
        q.settle(tb, |_| ((), Room::Free)).unwrap();
        q.try_push(vec![3]).unwrap();
        assert_eq!(q.drain_with(Some), vec![vec![1], vec![3]]);
        // A freed pop hands the item out and frees its room at once.
        q.try_push(vec![4]).unwrap();
        let (out, ticket) = q
            .try_pop_tracked(&mut Vec::new(), &mut Vec::new(), |_| Pop::Free, Vec::clone)
            .unwrap();
        assert_eq!((out, ticket, q.held()), (Some(vec![4]), None, 0));
        // A discarded pop frees the room and hands out nothing.
        q.try_push(vec![5]).unwrap();
        let popped = q.try_pop_tracked(
            &mut Vec::new(),
            &mut Vec::new(),
            |_| Pop::Discard,
            Vec::clone,
        );
        assert_eq!((popped, q.len(), q.held()), (Some((None, None)), 0, 0));
    }

    #[tokio::test]
    async fn expired_flights_are_settled_oldest_first_and_out_of_order_acks_are_kept() {
        let q = BoundedQueue::<Vec<u8>>::new(8, 100);
        let now = Instant::now();
        for i in 1..=4u8 {
            q.try_push(vec![i]).unwrap();
        }
        let (_, t1) = track(&q, now);
        let (_, t2) = track(&q, now);
        let (_, t3) = track(&q, now + Duration::from_secs(60));
        let (_, t4) = track(&q, now + Duration::from_secs(60));
        // The second is acknowledged before the first expires.
        q.settle(t2, |_| ((), Room::Free)).unwrap();
        q.settle(t4, |_| ((), Room::Free)).unwrap();
        let expired = q.settle_expired(now, |item| (item, Room::Free));
        assert_eq!(expired, vec![vec![1]]);
        assert_eq!(q.held(), 1, "only the third is still in flight");
        assert!(q.holds(|i| i == &vec![3]));
        assert!(q.settle(t1, |_| ((), Room::Free)).is_none());
        q.settle(t3, |_| ((), Room::Free)).unwrap();
        assert_eq!(q.held(), 0);
        assert!(
            q.settle_expired(now + Duration::from_secs(120), |i| (i, Room::Free))
                .is_empty()
        );
    }

    #[tokio::test]
    async fn close_wakes_consumer() {
        let q = Arc::new(BoundedQueue::<Vec<u8>>::new(4, 100));
        let q2 = q.clone();
        let c = tokio::spawn(async move { q2.pop().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        q.close();
        assert!(c.await.unwrap().is_none());
        assert!(matches!(q.try_push(vec![1]), Err(PushError::Closed(_))));
    }
}
