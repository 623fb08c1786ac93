//! Finding what PostgreSQL refuses in a batch, by bisection. A batch refused for a reason in
//! its data (a [`Refusal`]) is split in halves, each saved in its own transaction, the left
//! one first, until every refused message stands alone; each of those is then recorded as a
//! rejection, and what cannot be recorded either is given up on. Every message ends up in
//! exactly one committed transaction or among the refused, in the batch's order.
//!
//! No I/O: the writer asks for the next [`Step`], runs it, and reports how it went. A step
//! that failed for another reason (the database is down) is simply asked for again, so what
//! was committed is never saved twice.

use std::ops::Range;

use crate::store::Refusal;

/// What to do next with the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Save these messages of the batch (by index) in one transaction.
    Save(Range<usize>),
    /// Record the order at `index`, which PostgreSQL refused on its own, as a rejection.
    Record {
        /// The order's index in the batch.
        index: usize,
        /// Why PostgreSQL refused it.
        refusal: Refusal,
    },
}

/// A message of the batch that PostgreSQL refused on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its index in the batch.
    pub index: usize,
    /// Why PostgreSQL refused it.
    pub refusal: Refusal,
    /// `None` once its rejection is recorded; why PostgreSQL refused that too, if it did. (A
    /// message that was a rejection already is not tried again: recording it is what was
    /// refused.)
    pub unrecorded: Option<Refusal>,
}

/// A part of the batch, once settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<T> {
    /// These messages were committed in one transaction, which gave `T`.
    Saved(Range<usize>, T),
    /// This message was refused.
    Refused(Refused),
}

/// The plan of one batch: what is settled, in the batch's order, and what is left.
#[derive(Debug)]
pub struct Bisection<T> {
    /// For each message: whether it is an order (else a rejection to record).
    is_order: Vec<bool>,
    /// Ranges still to save, the next one last.
    pending: Vec<Range<usize>>,
    /// The refused order whose rejection is being recorded: the next step.
    recording: Option<(usize, Refusal)>,
    /// What is settled, in the batch's order.
    settled: Vec<Piece<T>>,
    /// Transactions tried that were refused.
    refusals: usize,
}

impl<T> Bisection<T> {
    /// The plan of a batch whose messages are orders where `is_order` says so, and rejections
    /// to record elsewhere: first, the whole batch in one transaction.
    pub fn new(is_order: Vec<bool>) -> Self {
        let all = 0..is_order.len();
        Self {
            pending: if all.is_empty() {
                Vec::new()
            } else {
                vec![all]
            },
            is_order,
            recording: None,
            settled: Vec::new(),
            refusals: 0,
        }
    }

    /// The next step, the same until it is reported with [`saved`](Self::saved),
    /// [`recorded`](Self::recorded) or [`refused`](Self::refused); `None` once the batch is
    /// settled.
    pub fn step(&self) -> Option<Step> {
        if let Some((index, refusal)) = &self.recording {
            return Some(Step::Record {
                index: *index,
                refusal: refusal.clone(),
            });
        }
        self.pending.last().cloned().map(Step::Save)
    }

    /// The [`Step::Save`] step committed, giving `saved`.
    pub fn saved(&mut self, saved: T) {
        debug_assert!(self.recording.is_none(), "saved reported for a recording");
        if let Some(range) = self.pending.pop() {
            self.settled.push(Piece::Saved(range, saved));
        }
    }

    /// The [`Step::Record`] step committed: the refused order is recorded as rejected.
    pub fn recorded(&mut self) {
        debug_assert!(self.recording.is_some(), "recorded reported for a save");
        if let Some((index, refusal)) = self.recording.take() {
            self.settled.push(Piece::Refused(Refused {
                index,
                refusal,
                unrecorded: None,
            }));
        }
    }

    /// PostgreSQL refused the step for a reason in its data. A range of several messages is
    /// split in two, to be saved left first; a lone order is to be recorded as rejected; a
    /// lone rejection, or the recording of a refused order, is given up on.
    pub fn refused(&mut self, refusal: Refusal) {
        self.refusals += 1;
        if let Some((index, first)) = self.recording.take() {
            self.settled.push(Piece::Refused(Refused {
                index,
                refusal: first,
                unrecorded: Some(refusal),
            }));
            return;
        }
        let Some(range) = self.pending.pop() else {
            return;
        };
        if range.len() > 1 {
            let middle = range.start + range.len() / 2;
            self.pending.push(middle..range.end);
            self.pending.push(range.start..middle);
        } else if self.is_order.get(range.start).copied().unwrap_or(false) {
            self.recording = Some((range.start, refusal));
        } else {
            self.settled.push(Piece::Refused(Refused {
                index: range.start,
                unrecorded: Some(refusal.clone()),
                refusal,
            }));
        }
    }

    /// How many transactions PostgreSQL refused so far (0: the batch went in whole).
    pub fn refusals(&self) -> usize {
        self.refusals
    }

    /// What became of the batch, in its order: every message in exactly one piece. Call it
    /// once [`step`](Self::step) is `None`; until then the pieces cover only a prefix.
    pub fn finish(self) -> Vec<Piece<T>> {
        self.settled
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn refusal(what: &str) -> Refusal {
        Refusal {
            sqlstate: "23514".to_owned(),
            message: what.to_owned(),
        }
    }

    /// A fake database: it refuses any transaction with an order in `refuse`, and any
    /// recording of a rejection of a message in `refuse_rejection`; it keeps what it
    /// committed, in commit order, and counts the transactions tried.
    #[derive(Default)]
    struct FakeDatabase {
        refuse: HashSet<usize>,
        refuse_rejection: HashSet<usize>,
        committed: Vec<usize>,
        rejected: Vec<usize>,
        transactions: usize,
    }

    impl FakeDatabase {
        /// Runs `plan` to the end, the way the writer does (failing a plan that does not end).
        fn run(&mut self, mut plan: Bisection<Range<usize>>) -> Vec<Piece<Range<usize>>> {
            for _ in 0..10_000 {
                let Some(step) = plan.step() else {
                    return plan.finish();
                };
                self.transactions += 1;
                match step {
                    Step::Save(range) => {
                        if let Some(bad) = range.clone().find(|i| self.refuse.contains(i)) {
                            plan.refused(refusal(&format!("refused {bad}")));
                        } else if let Some(bad) =
                            range.clone().find(|i| self.refuse_rejection.contains(i))
                        {
                            // A rejection of the batch whose recording is refused.
                            plan.refused(refusal(&format!("refused rejection {bad}")));
                        } else {
                            self.committed.extend(range.clone());
                            plan.saved(range);
                        }
                    }
                    Step::Record { index, .. } => {
                        if self.refuse_rejection.contains(&index) {
                            plan.refused(refusal(&format!("refused rejection {index}")));
                        } else {
                            self.rejected.push(index);
                            plan.recorded();
                        }
                    }
                }
            }
            panic!("the plan does not end");
        }
    }

    fn orders(n: usize) -> Vec<bool> {
        vec![true; n]
    }

    /// Every index once, in order, from the pieces.
    fn covered(pieces: &[Piece<Range<usize>>]) -> Vec<usize> {
        pieces
            .iter()
            .flat_map(|piece| match piece {
                Piece::Saved(range, _) => range.clone().collect::<Vec<_>>(),
                Piece::Refused(refused) => vec![refused.index],
            })
            .collect()
    }

    #[test]
    fn a_batch_nothing_refuses_is_one_transaction() {
        let mut db = FakeDatabase::default();
        let pieces = db.run(Bisection::new(orders(8)));
        assert_eq!(pieces, [Piece::Saved(0..8, 0..8)]);
        assert_eq!(db.transactions, 1);
    }

    #[test]
    fn an_empty_batch_has_nothing_to_do() {
        let plan: Bisection<()> = Bisection::new(Vec::new());
        assert_eq!(plan.step(), None);
    }

    #[test]
    fn one_refused_order_is_found_and_everything_else_committed_once_in_order() {
        for n in 1..=64 {
            for bad in 0..n {
                let mut db = FakeDatabase {
                    refuse: HashSet::from([bad]),
                    ..FakeDatabase::default()
                };
                let pieces = db.run(Bisection::new(orders(n)));
                let others: Vec<usize> = (0..n).filter(|&i| i != bad).collect();
                assert_eq!(db.committed, others, "n={n} bad={bad}: once each, in order");
                assert_eq!(db.rejected, [bad], "n={n} bad={bad}");
                assert_eq!(covered(&pieces), (0..n).collect::<Vec<_>>());
                // The whole batch, two halves per level down to the lone order, its rejection.
                let depth = n.next_power_of_two().trailing_zeros() as usize;
                assert!(
                    db.transactions <= 2 + 2 * depth,
                    "n={n} bad={bad}: {} transactions",
                    db.transactions
                );
            }
        }
    }

    #[test]
    fn the_transactions_for_one_refused_order_in_a_batch_of_1000() {
        // The refused whole, two halves at each of the 9 or 10 halvings down to the lone
        // order (the halves of 1000 are 500, 250, 125, then 62 on the left and 63 on the
        // right...), and the recording of its rejection.
        for (bad, transactions) in [(0, 20), (500, 20), (999, 22)] {
            let mut db = FakeDatabase {
                refuse: HashSet::from([bad]),
                ..FakeDatabase::default()
            };
            db.run(Bisection::new(orders(1000)));
            assert_eq!(db.transactions, transactions, "bad={bad}");
            assert_eq!(db.committed.len(), 999);
        }
    }

    #[test]
    fn several_refused_orders_are_each_recorded() {
        let refuse = HashSet::from([0, 3, 4, 9]);
        let mut db = FakeDatabase {
            refuse: refuse.clone(),
            ..FakeDatabase::default()
        };
        let pieces = db.run(Bisection::new(orders(10)));
        assert_eq!(db.rejected, [0, 3, 4, 9]);
        assert_eq!(db.committed, [1, 2, 5, 6, 7, 8]);
        assert_eq!(covered(&pieces), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_refused_order_whose_rejection_is_refused_too_is_given_up_on() {
        let mut db = FakeDatabase {
            refuse: HashSet::from([2]),
            refuse_rejection: HashSet::from([2]),
            ..FakeDatabase::default()
        };
        let pieces = db.run(Bisection::new(orders(4)));
        assert_eq!(db.committed, [0, 1, 3]);
        assert!(db.rejected.is_empty());
        let refused: Vec<&Refused> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Refused(r) => Some(r),
                Piece::Saved(..) => None,
            })
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].index, 2);
        assert_eq!(refused[0].refusal.message, "refused 2");
        assert_eq!(
            refused[0].unrecorded.as_ref().map(|r| r.message.as_str()),
            Some("refused rejection 2")
        );
    }

    #[test]
    fn a_rejection_whose_recording_is_refused_is_given_up_on_without_another_try() {
        let mut is_order = orders(5);
        is_order[1] = false;
        let mut db = FakeDatabase {
            refuse_rejection: HashSet::from([1]),
            ..FakeDatabase::default()
        };
        let pieces = db.run(Bisection::new(is_order));
        assert_eq!(db.committed, [0, 2, 3, 4]);
        assert!(db.rejected.is_empty(), "no store_refused for a rejection");
        assert_eq!(covered(&pieces), [0, 1, 2, 3, 4]);
        let Some(Piece::Refused(refused)) = pieces.get(1) else {
            panic!("{pieces:?}");
        };
        assert!(refused.unrecorded.is_some());
        // Whole, [0..2] refused, [0..1], [1..2] refused, [2..5]: no recording step.
        assert_eq!(db.transactions, 5);
    }

    #[test]
    fn a_step_not_reported_is_asked_for_again() {
        let mut plan: Bisection<()> = Bisection::new(orders(4));
        plan.refused(refusal("x"));
        let first = plan.step();
        // The database was down: nothing reported, the same step again.
        assert_eq!(plan.step(), first);
        assert_eq!(first, Some(Step::Save(0..2)));
        assert_eq!(plan.refusals(), 1);
    }
}
