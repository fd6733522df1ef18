//! The world's side of the simulated clients: starting operations, routing their
//! requests and replies, timeouts, and the liveness probe of the healed phase.

use super::clients::{self, Outcome, Pending};
use super::world::{CLIENT_TIMEOUT_NS, Driven, Ev, LIVENESS_BOUND_NS, MS, Phase, World};
use crate::ops::OpKind;
use crate::reply::Completion;
use checker::history::EventType;
use node::raft::types::NodeId;
use node::replica::Response;
use rand::RngExt;

impl<R: Driven> World<R> {
    /// Starts the next operation of client `slot` (unless the run is winding down).
    pub(super) fn client_next(&mut self, slot: usize) {
        if self.phase == Phase::Done || self.clients.slots[slot].pending.is_some() {
            return;
        }
        self.clients.next_op += 1;
        let force_write = self.clients.probe_from.is_some() && !self.clients.liveness_met;
        let p = clients::next_op(
            &mut self.rng,
            &mut self.clients.slots[slot],
            &self.clients.generator,
            force_write,
            self.clients.next_op,
            self.now,
        );
        let process = self.clients.slots[slot].process;
        self.history.client(
            p.invoked_ns,
            process,
            EventType::Invoke,
            &p.op,
            p.op.input(),
            None,
        );
        self.trace_line(|| {
            format!(
                "client p{process} invoke {} {} {}",
                p.op.function().name(),
                p.op.key_name(),
                p.op.input()
            )
        });
        let node = self.rng.random_range(1..=self.nodes.len() as u64);
        self.send_request(slot, &p, node);
        self.queue.push(
            self.now + CLIENT_TIMEOUT_NS,
            Ev::ClientTimeout {
                slot,
                op_id: p.op_id,
            },
        );
        self.clients.slots[slot].pending = Some(p);
    }

    fn send_request(&mut self, slot: usize, p: &Pending, node: NodeId) {
        let t = self.now + self.rng.random_range(50_000..500_000);
        self.queue.push(
            t,
            Ev::ClientArrive {
                node,
                slot,
                op_id: p.op_id,
                request: p.request.clone(),
            },
        );
    }

    pub(super) fn client_reply(
        &mut self,
        node: NodeId,
        slot: usize,
        op_id: u64,
        response: Response,
    ) {
        let c = &self.clients.slots[slot];
        let Some(p) = c.pending.as_ref().filter(|p| p.op_id == op_id) else {
            return;
        };
        let outcome = clients::on_response(p, &response);
        if let Outcome::Done(done) = &outcome
            && clients::is_acknowledged_write(p, done)
        {
            let r = &p.request;
            if let Err(e) = self.inv.on_write_acknowledged(node, r.client, r.seq) {
                return self.fail(e);
            }
        }
        match outcome {
            Outcome::Redirect(to) => {
                let mut p = p.clone();
                p.hops += 1;
                self.trace_line(|| format!("client p{} redirected to n{to}", p.request.client - 1));
                if to >= 1 && to <= self.nodes.len() as u64 {
                    self.send_request(slot, &p, to);
                }
                self.clients.slots[slot].pending = Some(p);
            }
            done => self.finish(slot, done),
        }
    }

    /// Records the end of client `slot`'s operation and schedules its next one.
    pub(super) fn finish(&mut self, slot: usize, outcome: Outcome) {
        let Outcome::Done(Completion {
            kind, value, error, ..
        }) = outcome
        else {
            return;
        };
        let retire = kind == EventType::Info;
        let Some(p) = self.clients.slots[slot].pending.take() else {
            return;
        };
        let process = self.clients.slots[slot].process;
        self.trace_line(|| {
            format!(
                "client p{process} {:?} {} {} {} {:?}",
                kind,
                p.op.function().name(),
                p.op.key_name(),
                value,
                error
            )
        });
        if kind == EventType::Ok
            && p.op.kind() == OpKind::Write
            && self.clients.probe_from.is_some_and(|t| p.invoked_ns >= t)
            && !self.clients.liveness_met
        {
            self.clients.liveness_met = true;
            self.trace_line(|| "liveness met: a write committed after healing".to_string());
            self.queue.push(self.now + 50 * MS, Ev::End);
        }
        self.history
            .client(self.now, process, kind, &p.op, value, error.as_deref());
        if retire {
            self.clients.slots[slot].process = self.clients.next_process;
            self.clients.slots[slot].seq = 0;
            self.clients.next_process += 1;
        }
        let think = self.rng.random_range(5 * MS..40 * MS);
        self.queue.push(self.now + think, Ev::ClientNext { slot });
    }

    pub(super) fn set_probe(&mut self) {
        self.clients.probe_from = Some(self.now);
        self.queue.push(self.now + LIVENESS_BOUND_NS, Ev::Deadline);
    }
}
