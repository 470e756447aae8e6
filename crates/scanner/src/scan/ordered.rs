//! The reorder window of the streaming path: blocks are parsed as pool tasks and finish in
//! any order; they are emitted in archive order, with at most `window` blocks in flight so
//! that memory stays bounded.

use super::{Emitter, Event, Out};
use std::collections::BTreeMap;
use std::sync::mpsc;

/// What a block task sends back: its sequence number, its results (or its panic), its size.
pub(super) type Done<T> = (u64, std::thread::Result<Vec<Out<T>>>, u64);

pub(super) struct Ordered<T> {
    done_tx: mpsc::Sender<Done<T>>,
    done_rx: mpsc::Receiver<Done<T>>,
    /// Finished blocks waiting for an earlier one.
    ready: BTreeMap<u64, (Vec<Out<T>>, u64)>,
    sent: u64,
    emitted: u64,
    window: u64,
}

impl<T> Ordered<T> {
    pub(super) fn new(window: u64) -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        Ordered {
            done_tx,
            done_rx,
            ready: BTreeMap::new(),
            sent: 0,
            emitted: 0,
            window: window.max(1),
        }
    }

    /// Waits until fewer than `window` blocks are in flight (emitting finished ones), then
    /// hands out the next sequence number and the sender its task reports to.
    pub(super) fn reserve<E: FnMut(Event<T>)>(
        &mut self,
        em: &mut Emitter<T, E>,
    ) -> (u64, mpsc::Sender<Done<T>>) {
        while self.sent - self.emitted >= self.window {
            self.emit_next(em);
        }
        let seq = self.sent;
        self.sent += 1;
        (seq, self.done_tx.clone())
    }

    /// Emits every block handed out so far, waiting for the ones still running.
    pub(super) fn drain<E: FnMut(Event<T>)>(&mut self, em: &mut Emitter<T, E>) {
        while self.emitted < self.sent {
            self.emit_next(em);
        }
    }

    /// Waits for the next block in order and emits it; a task's panic is resumed here.
    fn emit_next<E: FnMut(Event<T>)>(&mut self, em: &mut Emitter<T, E>) {
        loop {
            if let Some((outs, bytes)) = self.ready.remove(&self.emitted) {
                em.stats.bytes += bytes;
                em.outs(outs);
                em.progress();
                self.emitted += 1;
                return;
            }
            match self.done_rx.recv() {
                Ok((seq, Ok(outs), bytes)) => {
                    self.ready.insert(seq, (outs, bytes));
                }
                Ok((_, Err(panic), _)) => std::panic::resume_unwind(panic),
                // Unreachable: `self` holds a sender.
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, Location};
    use crate::scan::ScanStats;

    fn emitter(seen: &mut Vec<u32>) -> Emitter<u32, impl FnMut(Event<u32>) + '_> {
        Emitter {
            stats: ScanStats::default(),
            input: Default::default(),
            on_event: move |ev| {
                if let Event::Message { item, .. } = ev {
                    seen.push(item);
                }
            },
            _item: std::marker::PhantomData,
        }
    }

    fn block(item: u32) -> std::thread::Result<Vec<Out<u32>>> {
        Ok(vec![Out::Msg(Location::file("x"), Format::Mbox, item)])
    }

    #[test]
    fn blocks_finished_out_of_order_are_emitted_in_order_within_the_window() {
        let mut seen = Vec::new();
        let mut em = emitter(&mut seen);
        let mut ord = Ordered::new(2);
        let (s0, tx0) = ord.reserve(&mut em);
        let (s1, tx1) = ord.reserve(&mut em);
        // Block 1 finishes first; block 0 later.
        tx1.send((s1, block(1), 10)).unwrap();
        tx0.send((s0, block(0), 5)).unwrap();
        // The window is full: reserving a third block emits block 0 (only) first.
        let (s2, tx2) = ord.reserve(&mut em);
        assert_eq!((s0, s1, s2), (0, 1, 2));
        assert_eq!(em.stats.messages, 1);
        tx2.send((s2, block(2), 1)).unwrap();
        ord.drain(&mut em);
        assert_eq!(em.stats.bytes, 16);
        assert_eq!(em.stats.messages, 3);
        drop(em);
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    #[should_panic(expected = "worker failed")]
    fn a_task_panic_is_resumed_on_the_emitting_thread() {
        let mut seen = Vec::new();
        let mut em = emitter(&mut seen);
        let mut ord = Ordered::<u32>::new(1);
        let (seq, tx) = ord.reserve(&mut em);
        let panic = std::panic::catch_unwind(|| panic!("worker failed")).unwrap_err();
        tx.send((seq, Err(panic), 0)).unwrap();
        ord.drain(&mut em);
    }
}
