//! Provider event logs (Amazon SES, [`crate::read::ses`]; Mailgun, [`crate::read::mailgun`];
//! Postmark, [`crate::read::postmark`], one record per message, read as SES's first events):
//! the calling thread reads the events in order, one line at a time (a value that spans lines
//! is read on until it ends), finds each event's message, and hands batches of messages to the
//! pool, emitted in order. SES: the first event of each message id is the message (every event
//! carries the whole `mail` object). Mailgun: one event per recipient, so a message's events
//! are grouped (its first event and every recipient) and it is handed on when the log ends or
//! when more than [`OPEN_GROUPS`] messages are open (the oldest first; a later event of it
//! starts a new group, which scan merges by Message-ID as it merges journal reports). A line
//! that is not a readable event is an error problem with its line and reason; the rest of the
//! log is read.

use super::ordered::Ordered;
use super::{deliver, problem, read_message, Emitter, Event, Out, Scanner};
use crate::model::{Location, Message, ProblemKind, ProblemLevel};
use crate::read::provider::Provider;
use crate::read::{mailgun, postmark, ses};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

/// Messages handed to the pool at once.
const BATCH: usize = 256;

/// Mailgun messages held open for more of their events, at most (the memory bound: each holds
/// its first event's text and its recipients).
pub const OPEN_GROUPS: usize = 16_384;

enum Item {
    /// An event's text, the first of its message (and, Mailgun, every recipient its events
    /// named): made into the message on the pool.
    Event(Location, Vec<u8>, Provider, Vec<String>),
    Prob(crate::model::Problem),
}

/// What the reading thread keeps of the messages it has seen.
struct Messages {
    provider: Provider,
    hasher: foldhash::quality::FixedState,
    /// SES: one hash per message id seen.
    seen: foldhash::HashSet<u64>,
    /// Mailgun: open groups by message-id hash, in the order they opened.
    open: foldhash::HashMap<u64, (Location, Vec<u8>, Vec<String>)>,
    order: std::collections::VecDeque<u64>,
}

impl Messages {
    fn new(provider: Provider) -> Messages {
        Messages {
            provider,
            hasher: foldhash::quality::FixedState::with_seed(0x5e5),
            seen: Default::default(),
            open: Default::default(),
            order: Default::default(),
        }
    }

    /// Takes a complete event whose message it can tell; `false` when it cannot (then
    /// [`Messages::value`] decides).
    fn take(&mut self, loc: &Location, value: &[u8], batch: &mut Vec<Item>) -> bool {
        match self.provider {
            Provider::Ses | Provider::Postmark => {
                let id = match self.provider {
                    Provider::Ses => ses::message_id(value),
                    _ => postmark::message_id(value),
                };
                let Some(id) = id else {
                    return false;
                };
                // A later event of a message already read is skipped.
                if self.seen.insert(self.hasher.hash_one(id.as_str())) {
                    batch.push(Item::Event(
                        loc.clone(),
                        value.to_vec(),
                        self.provider,
                        Vec::new(),
                    ));
                }
                true
            }
            Provider::Mailgun => {
                let Some((id, recipient)) = mailgun::key(value) else {
                    return false;
                };
                let h = self.hasher.hash_one(id.as_str());
                match self.open.get_mut(&h) {
                    Some((_, _, recipients)) => recipients.extend(recipient),
                    None => {
                        if self.open.len() >= OPEN_GROUPS {
                            self.close_oldest(batch);
                        }
                        let recipients = recipient.into_iter().collect();
                        self.open
                            .insert(h, (loc.clone(), value.to_vec(), recipients));
                        self.order.push_back(h);
                    }
                }
                true
            }
        }
    }

    /// Any complete value: an event, a Mailgun Events API page (its items), or one the pool
    /// reports as not readable.
    fn value(&mut self, loc: &Location, value: &[u8], batch: &mut Vec<Item>) {
        if self.take(loc, value, batch) {
            return;
        }
        let items = match self.provider {
            Provider::Mailgun => mailgun::items(value),
            Provider::Postmark => postmark::items(value),
            Provider::Ses => None,
        };
        {
            if let Some(items) = items {
                for item in items {
                    if !self.take(loc, item.as_bytes(), batch) {
                        batch.push(Item::Event(
                            loc.clone(),
                            item.as_bytes().to_vec(),
                            self.provider,
                            Vec::new(),
                        ));
                    }
                }
                return;
            }
        }
        batch.push(Item::Event(
            loc.clone(),
            value.to_vec(),
            self.provider,
            Vec::new(),
        ));
    }

    fn close_oldest(&mut self, batch: &mut Vec<Item>) {
        if let Some(h) = self.order.pop_front() {
            if let Some((loc, value, recipients)) = self.open.remove(&h) {
                batch.push(Item::Event(loc, value, self.provider, recipients));
            }
        }
    }

    /// The groups still open, oldest first.
    fn close_all(&mut self, batch: &mut Vec<Item>) {
        while !self.order.is_empty() {
            self.close_oldest(batch);
        }
    }
}

impl Scanner {
    pub(super) fn stream_events<T, P, E>(
        &self,
        provider: Provider,
        reader: Box<dyn Read + Send>,
        path: &Arc<str>,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        // Batches are made into messages and processed as pool tasks while this thread reads
        // on; they are emitted in log order, a few in flight at most.
        let window = 2 * self.install(rayon::current_num_threads).max(2) as u64;
        let mut ordered: Ordered<T> = Ordered::new(window);
        self.in_place_scope(|sc| {
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut messages = Messages::new(provider);
        let mut batch: Vec<Item> = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        // Where `pending` starts: line and byte offset.
        let (mut pending_line, mut pending_offset) = (0u64, 0u64);
        let (mut line_no, mut offset) = (0u64, 0u64);
        let mut line = Vec::new();
        let error = |line: u64, offset: u64, kind: ProblemKind, reason: String| {
            Item::Prob(problem(
                Location::in_log(path.clone(), line, offset),
                ProblemLevel::Error,
                kind,
                reason,
            ))
        };
        loop {
            line.clear();
            let n = match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    batch.push(error(
                        line_no + 1,
                        offset,
                        ProblemKind::Unreadable,
                        format!("read error: {e}"),
                    ));
                    break;
                }
            };
            line_no += 1;
            em.stats.bytes += n as u64;
            if pending.is_empty() {
                let value = line.trim_ascii();
                if value.is_empty() {
                    offset += n as u64;
                    continue;
                }
                // The common case, one event per line: one pass reads its message id.
                let lead = line.len() - line.trim_ascii_start().len();
                let loc = Location::in_log(path.clone(), line_no, offset + lead as u64);
                if messages.take(&loc, value, &mut batch) {
                    offset += n as u64;
                    if batch.len() >= BATCH {
                        self.send_batch(sc, &mut ordered, em, std::mem::take(&mut batch), process);
                    }
                    continue;
                }
                pending_line = line_no;
                pending_offset = offset;
            }
            offset += n as u64;
            pending.extend_from_slice(&line);
            // Every complete value in `pending`; what is left is a value that goes on.
            let rest;
            let mut values =
                serde_json::Deserializer::from_slice(&pending).into_iter::<serde::de::IgnoredAny>();
            loop {
                let start = values.byte_offset();
                match values.next() {
                    None => {
                        rest = pending.len();
                        break;
                    }
                    Some(Ok(_)) => {
                        let end = values.byte_offset();
                        let value = &pending[start..end];
                        let lead = value.len() - value.trim_ascii_start().len();
                        let at = start + lead;
                        let l = pending_line
                            + memchr::memchr_iter(b'\n', &pending[..at]).count() as u64;
                        let o = pending_offset + at as u64;
                        let value = &value[lead..];
                        let loc = Location::in_log(path.clone(), l, o);
                        messages.value(&loc, value, &mut batch);
                    }
                    Some(Err(e)) if e.is_eof() => {
                        rest = start;
                        break;
                    }
                    Some(Err(e)) => {
                        let at = start
                            + (pending[start..].len() - pending[start..].trim_ascii_start().len());
                        let l = pending_line
                            + memchr::memchr_iter(b'\n', &pending[..at]).count() as u64;
                        batch.push(error(
                            l,
                            pending_offset + at as u64,
                            ProblemKind::Malformed,
                            format!("not JSON: {e}"),
                        ));
                        // The rest of this line cannot be read: go on at the next one.
                        rest = pending.len();
                        break;
                    }
                }
            }
            if rest >= pending.len() || pending[rest..].trim_ascii().is_empty() {
                pending.clear();
            } else {
                let consumed = &pending[..rest];
                pending_line += memchr::memchr_iter(b'\n', consumed).count() as u64;
                pending_offset += rest as u64;
                pending.drain(..rest);
                if pending.len() > self.opts.max_message_bytes {
                    batch.push(error(
                        pending_line,
                        pending_offset,
                        ProblemKind::Malformed,
                        format!(
                            "an event larger than the limit of {} bytes (or a value that never ends); skipped",
                            self.opts.max_message_bytes
                        ),
                    ));
                    pending.clear();
                }
            }
            if batch.len() >= BATCH {
                self.send_batch(sc, &mut ordered, em, std::mem::take(&mut batch), process);
            }
        }
        if !pending.trim_ascii().is_empty() {
            batch.push(error(
                pending_line,
                pending_offset,
                ProblemKind::Truncated,
                "the log ends inside an event (truncated)".into(),
            ));
        }
        messages.close_all(&mut batch);
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(BATCH));
            self.send_batch(sc, &mut ordered, em, batch, process);
            batch = rest;
        }
        ordered.drain(em);
        });
    }

    /// Hands a batch to the pool (waiting while the window is full).
    fn send_batch<'s, T, P, E>(
        &'s self,
        sc: &rayon::Scope<'s>,
        ordered: &mut Ordered<T>,
        em: &mut Emitter<T, E>,
        batch: Vec<Item>,
        process: &'s P,
    ) where
        T: Send + 's,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        if batch.is_empty() {
            return;
        }
        let (seq, done_tx) = ordered.reserve(em);
        sc.spawn(move |_| {
            let outs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                events_outs(batch, process)
            }));
            let _ = done_tx.send((seq, outs, 0));
        });
    }
}

/// A batch made into messages and processed, in order.
fn events_outs<T, P>(batch: Vec<Item>, process: &P) -> Vec<Out<T>>
where
    T: Send,
    P: Fn(&mut Message<'_>) -> T + Sync,
{
    {
        {
            batch
                .into_iter()
                .flat_map(|item| {
                    let mut outs = Vec::with_capacity(1);
                    match item {
                        Item::Prob(p) => outs.push(Out::Prob(p)),
                        Item::Event(location, value, provider, recipients) => {
                            let made = match provider {
                                Provider::Ses => ses::message_of(&value).map_err(|e| e.to_string()),
                                Provider::Mailgun => mailgun::message_of(&value, &recipients)
                                    .map_err(|e| e.to_string()),
                                Provider::Postmark => {
                                    postmark::message_of(&value).map_err(|e| e.to_string())
                                }
                            };
                            let m = match made {
                                Ok(m) => m,
                                Err(e) => {
                                    outs.push(Out::Prob(problem(
                                        location,
                                        ProblemLevel::Error,
                                        ProblemKind::Malformed,
                                        e,
                                    )));
                                    return outs;
                                }
                            };
                            if m.headers_truncated {
                                outs.push(Out::Prob(problem(
                                    location.clone(),
                                    ProblemLevel::Warning,
                                    ProblemKind::Malformed,
                                    "SES truncated the original headers: read from commonHeaders, which have no Bcc".into(),
                                )));
                            }
                            match read_message(&m.raw, location, provider.format(), false) {
                                Ok(mut msg) => {
                                    msg.envelope.envelope_recipients = m.envelope;
                                    deliver(process, msg, &mut outs);
                                }
                                Err(p) => outs.push(Out::Prob(p)),
                            }
                        }
                    }
                    outs
                })
                .collect()
        }
    }
}
