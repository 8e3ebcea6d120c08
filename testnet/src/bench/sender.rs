//! Sender lanes: one thread per lane submits the lane's items in order, in batches, to
//! the lane's validator (several lanes per validator, so that one request's round trip
//! does not cap a validator's intake). An account belongs to one lane, and one thread
//! per lane keeps each account's nonces in order on the way into its validator's mempool.
//!
//! Open loop: item k is due `k / rate` seconds after the start; what is due goes out in
//! batches (a short batch when the oldest due item has waited `FLUSH`), so a slow node
//! makes the lane fall behind instead of lowering the offered rate. Closed loop: a lane
//! sends only while fewer than `max_in_flight` items are outstanding.
//!
//! A whole request answered `busy` is sent again unchanged (nothing in it was admitted);
//! a request that got no answer leaves its items `unanswered`: they may or may not be in
//! a mempool, and only the blocks will tell.
//!
//! When a lane's validator crashes, what it accepted and no block has shown yet may be
//! lost with its mempool; the lane sends those items again, in order, to its new
//! validator before anything new, as a client would. Copies of items that do commit are
//! dropped by the validators, and the tracker counts each item once.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::config::Load;
use super::shared::{outcome, Shared};
use super::workload::batch_body;
use crate::client;
use ordo_cli::http;

/// How long the oldest due item waits for a fuller batch.
const FLUSH: Duration = Duration::from_millis(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Lane<'a> {
    shared: &'a Shared,
    lane: usize,
    items: &'a [u32],
    load: Load,
    batch_size: usize,
    /// `/v1/transactions/batch` or `/v1/payloads/batch`.
    path: &'static str,
    /// The validator this lane last sent to.
    last_target: Cell<Option<usize>>,
    /// The kept-alive connection to it, as a client library keeps one: a new connection
    /// per request cost each validator an accept and a connection task per request.
    connection: RefCell<Option<http::Connection>>,
}

impl<'a> Lane<'a> {
    pub fn new(
        shared: &'a Shared,
        lane: usize,
        items: &'a [u32],
        load: Load,
        batch_size: usize,
        path: &'static str,
    ) -> Self {
        Lane {
            shared,
            lane,
            items,
            load,
            batch_size,
            path,
            last_target: Cell::new(None),
            connection: RefCell::new(None),
        }
    }

    pub fn run(&self) {
        match self.load {
            Load::Open { rate } => self.open_loop(rate),
            Load::Closed { max_in_flight } => self.closed_loop(max_in_flight as i64),
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop_sending.load(Ordering::Relaxed) || crate::interrupt::requested()
    }

    fn open_loop(&self, rate: f64) {
        let due_us = |i: u32| (f64::from(i) * 1e6 / rate) as u64 + 1;
        // Catching up after a stall may send bigger batches, up to a bound.
        let max_batch = self.batch_size * 4;
        let mut pos = 0;
        while pos < self.items.len() && !self.stopping() {
            let now = self.shared.now_us();
            let mut end = pos;
            while end < self.items.len() && end - pos < max_batch && due_us(self.items[end]) <= now
            {
                end += 1;
            }
            let due = end - pos;
            let oldest_wait = now.saturating_sub(due_us(self.items[pos]));
            if due >= self.batch_size || (due > 0 && oldest_wait >= FLUSH.as_micros() as u64) {
                self.send(pos, end);
                pos = end;
                continue;
            }
            // Sleep until the batch would be full or the oldest due item would flush.
            let fill_at = self
                .items
                .get(pos + self.batch_size - 1)
                .map_or(u64::MAX, |&i| due_us(i));
            let flush_at = due_us(self.items[pos]) + FLUSH.as_micros() as u64;
            let wake = fill_at.min(flush_at);
            let nap = wake.saturating_sub(now).clamp(200, 5_000);
            std::thread::sleep(Duration::from_micros(nap));
        }
        if pos >= self.items.len() {
            self.shared
                .counters
                .exhausted_lanes
                .fetch_add(u64::from(!self.stopping()), Ordering::Relaxed);
        }
    }

    fn closed_loop(&self, max_in_flight: i64) {
        let lanes = self.shared.lane_target.len().max(1) as i64;
        let batch = (max_in_flight / (2 * lanes)).clamp(1, self.batch_size as i64);
        let mut pos = 0;
        while pos < self.items.len() && !self.stopping() {
            let want = batch.min((self.items.len() - pos) as i64);
            let outstanding = &self.shared.outstanding;
            let current = outstanding.load(Ordering::SeqCst);
            if current + want > max_in_flight
                || outstanding
                    .compare_exchange(current, current + want, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                self.shared
                    .wait_for_room(want, max_in_flight, Duration::from_millis(20));
                continue;
            }
            let end = pos + want as usize;
            self.send(pos, end);
            pos = end;
        }
        if pos >= self.items.len() && !self.stopping() {
            self.shared
                .counters
                .exhausted_lanes
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Submits `batch` until it is answered, goes unanswered, or the run stops while the
    /// node is refusing whole requests (then the items stay unsent).
    fn send(&self, pos: usize, end: usize) {
        let batch = &self.items[pos..end];
        let shared = self.shared;
        let closed = matches!(self.load, Load::Closed { .. });
        let body = batch_body(batch.iter().map(|&i| &shared.items[i as usize].bytes[..]));
        let mut backoff = Duration::from_millis(5);
        loop {
            let target = shared.lane_target[self.lane].load(Ordering::SeqCst);
            self.resubmit_if_moved(target, pos);
            let addr = shared.targets[target];
            let now = shared.now_us();
            for &i in batch {
                shared.submitted_us[i as usize].store(now, Ordering::SeqCst);
            }
            shared.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = {
                let mut connection = self.connection.borrow_mut();
                let connection = match connection.as_mut() {
                    Some(c) if c.addr() == addr => c,
                    _ => connection.insert(http::Connection::new(addr)),
                };
                connection
                    .request(
                        "POST",
                        self.path,
                        &[("Content-Type", "application/octet-stream")],
                        &body,
                        REQUEST_TIMEOUT,
                    )
                    .map_err(http::HttpError::into_io)
            };
            let retry = match response {
                Ok(r) if r.status == 200 => {
                    self.record_answer(batch, r.json());
                    return;
                }
                Ok(r) => {
                    let code =
                        client::error_code(&r).unwrap_or_else(|| format!("http_{}", r.status));
                    if code == "busy" {
                        shared.counters.busy_retries.fetch_add(1, Ordering::Relaxed);
                        true
                    } else {
                        self.settle(batch, outcome::REJECTED);
                        shared.reject(&code, batch.len() as u64);
                        if closed {
                            shared.release(batch.len() as i64);
                        }
                        return;
                    }
                }
                // Refused before anything was read: nothing was admitted, so it is safe
                // to send again (to the same validator, or a live one after a crash).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => true,
                Err(_) => {
                    self.settle(batch, outcome::UNANSWERED);
                    return;
                }
            };
            debug_assert!(retry);
            if self.stopping() {
                for &i in batch {
                    shared.submitted_us[i as usize].store(0, Ordering::SeqCst);
                }
                if closed {
                    shared.release(batch.len() as i64);
                }
                return;
            }
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stopping() {
                std::thread::sleep(Duration::from_millis(1));
            }
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    /// After a crash moved this lane to `target`, sends again the items before `pos` that
    /// were accepted (or unanswered) and have not appeared in a block. Each item keeps its
    /// first outcome and submission time: the answers here are not counted again.
    fn resubmit_if_moved(&self, target: usize, pos: usize) {
        let moved = self
            .last_target
            .replace(Some(target))
            .is_some_and(|old| old != target);
        if !moved {
            return;
        }
        let shared = self.shared;
        let lost: Vec<u32> = self.items[..pos]
            .iter()
            .copied()
            .filter(|&i| {
                let i = i as usize;
                let o = shared.outcome[i].load(Ordering::SeqCst);
                (o == outcome::ACCEPTED || o == outcome::UNANSWERED)
                    && shared.seen_us[i].load(Ordering::SeqCst) == 0
            })
            .collect();
        for chunk in lost.chunks(self.batch_size.max(1)) {
            let body = batch_body(chunk.iter().map(|&i| &shared.items[i as usize].bytes[..]));
            let _ = client::request(
                shared.targets[target],
                "POST",
                self.path,
                &[("Content-Type", "application/octet-stream")],
                &body,
                REQUEST_TIMEOUT,
            );
            shared
                .counters
                .resubmitted
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }

    fn settle(&self, batch: &[u32], result: u8) {
        let c = &self.shared.counters;
        for &i in batch {
            self.shared.outcome[i as usize].store(result, Ordering::SeqCst);
        }
        let n = batch.len() as u64;
        c.sent.fetch_add(n, Ordering::Relaxed);
        match result {
            outcome::ACCEPTED => c.accepted.fetch_add(n, Ordering::Relaxed),
            outcome::REJECTED => c.rejected.fetch_add(n, Ordering::Relaxed),
            _ => c.unanswered.fetch_add(n, Ordering::Relaxed),
        };
    }

    /// `{"accepted": n, "errors": [null | "code", ...]}`, one entry per item; opaque
    /// payloads are all taken or the whole request is refused: `{"accepted": n}`.
    fn record_answer(&self, batch: &[u32], answer: Option<serde_json::Value>) {
        let shared = self.shared;
        let all_taken = answer.as_ref().is_some_and(|v| {
            v.get("errors").is_none() && v["accepted"].as_u64() == Some(batch.len() as u64)
        });
        if all_taken {
            self.settle(batch, outcome::ACCEPTED);
            return;
        }
        let errors = answer
            .as_ref()
            .and_then(|v| v["errors"].as_array())
            .filter(|e| e.len() == batch.len());
        let Some(errors) = errors else {
            // An answer we cannot read says nothing about what was admitted.
            self.settle(batch, outcome::UNANSWERED);
            return;
        };
        let mut refused = 0i64;
        for (&i, error) in batch.iter().zip(errors) {
            let one = std::slice::from_ref(&i);
            match error.as_str() {
                None => self.settle(one, outcome::ACCEPTED),
                Some(code) => {
                    self.settle(one, outcome::REJECTED);
                    shared.reject(code, 1);
                    refused += 1;
                }
            }
        }
        if matches!(self.load, Load::Closed { .. }) && refused > 0 {
            shared.release(refused);
        }
    }
}
