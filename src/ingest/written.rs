//! What a written batch did, message by message, put together from the pieces the bisection
//! settled: each order's outcome under the duplicate policy (or its refusal by PostgreSQL),
//! and every rejection in the batch's order (broken contract, conflict, store refusal), with
//! why PostgreSQL refused to record it, if it did. The counters, the log, the cache and the
//! dead-letter topic take everything from here.

use std::collections::HashMap;

use rdkafka::Message as _;
use rdkafka::message::{OwnedHeaders, OwnedMessage};

use super::bisect::Piece;
use super::decide::{Decided, origin};
use crate::order::Rejection;
use crate::store::{Refusal, RejectedMessage, SaveOutcome, SavedBatch};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// An order, saved under the duplicate policy; `conflict` is its rejection if its id is
    /// stored with other content (recorded in the same transaction).
    Saved {
        /// Stored, duplicate or conflict.
        outcome: SaveOutcome,
        /// The conflict's rejection.
        conflict: Option<Rejection>,
    },
    /// A valid order PostgreSQL refused, rejected as `store_refused`.
    Refused {
        /// The `store_refused` rejection.
        rejection: Rejection,
        /// Why PostgreSQL refused to record that too, if it did.
        unrecorded: Option<Refusal>,
    },
    /// A message that broke the contract (its rejection is the decision's).
    Rejected {
        /// Why PostgreSQL refused to record it, if it did.
        unrecorded: Option<Refusal>,
    },
}

/// A written batch: its messages, their decisions and what became of each.
pub struct Written<'a> {
    /// The messages.
    batch: &'a [OwnedMessage],
    /// Each message decoded.
    decided: &'a [Decided],
    /// What became of each message, in the batch's order.
    fates: Vec<Fate>,
}

impl<'a> Written<'a> {
    /// The batch as `pieces` settled it (they cover it in order, as the bisection gives them).
    pub fn new(
        batch: &'a [OwnedMessage],
        decided: &'a [Decided],
        pieces: Vec<Piece<SavedBatch>>,
    ) -> Self {
        let mut fates = Vec::with_capacity(batch.len());
        for piece in pieces {
            match piece {
                Piece::Saved(range, saved) => {
                    // The saved batch numbers the range's orders from 0, in order.
                    let mut conflicts: HashMap<usize, Rejection> =
                        saved.conflicts.into_iter().collect();
                    let mut outcomes = saved.outcomes.into_iter().enumerate();
                    for decision in decided.get(range).unwrap_or_default() {
                        fates.push(match decision {
                            Decided::Rejected(_) => Fate::Rejected { unrecorded: None },
                            Decided::Order { .. } => {
                                let (i, outcome) = outcomes
                                    .next()
                                    .expect("a saved batch has one outcome per order");
                                Fate::Saved {
                                    outcome,
                                    conflict: conflicts.remove(&i),
                                }
                            }
                        });
                    }
                }
                Piece::Refused(refused) => {
                    fates.push(match decided.get(refused.index) {
                        Some(Decided::Order { .. }) => Fate::Refused {
                            rejection: Rejection::store_refused(&refused.refusal),
                            unrecorded: refused.unrecorded,
                        },
                        _ => Fate::Rejected {
                            unrecorded: refused.unrecorded,
                        },
                    });
                }
            }
        }
        debug_assert_eq!(fates.len(), batch.len(), "the pieces cover the batch");
        Self {
            batch,
            decided,
            fates,
        }
    }

    /// How many messages the batch has.
    pub fn messages(&self) -> usize {
        self.batch.len()
    }

    /// Each order of the batch as `(order_uid, canonical JSON, outcome)`, in order; the
    /// outcome is `None` for an order PostgreSQL refused.
    pub fn orders(&self) -> impl Iterator<Item = (&'a str, &'a str, Option<SaveOutcome>)> + '_ {
        self.decided
            .iter()
            .zip(&self.fates)
            .filter_map(|(decision, fate)| match (decision, fate) {
                (Decided::Order { uid, json }, Fate::Saved { outcome, .. }) => {
                    Some((uid.as_str(), json.as_str(), Some(*outcome)))
                }
                (Decided::Order { uid, json }, _) => Some((uid.as_str(), json.as_str(), None)),
                (Decided::Rejected(_), _) => None,
            })
    }

    /// Every rejection of the batch, in its order (conflicts and store refusals included),
    /// each with why PostgreSQL refused to record it, if it did (`None`: it is in the
    /// `rejected` table), and the message's headers (for its trace context).
    pub fn rejections(
        &self,
    ) -> Vec<(RejectedMessage<'_>, Option<&Refusal>, Option<&OwnedHeaders>)> {
        let mut rejections = Vec::new();
        for ((message, decision), fate) in self.batch.iter().zip(self.decided).zip(&self.fates) {
            let (rejection, unrecorded) = match (decision, fate) {
                (_, Fate::Saved { conflict, .. }) => match conflict {
                    Some(conflict) => (conflict, None),
                    None => continue,
                },
                (
                    _,
                    Fate::Refused {
                        rejection,
                        unrecorded,
                    },
                ) => (rejection, unrecorded.as_ref()),
                (Decided::Rejected(rejection), Fate::Rejected { unrecorded }) => {
                    (rejection, unrecorded.as_ref())
                }
                (Decided::Order { .. }, Fate::Rejected { .. }) => continue,
            };
            rejections.push((
                RejectedMessage {
                    origin: origin(message),
                    rejection,
                },
                unrecorded,
                message.headers(),
            ));
        }
        rejections
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::super::bisect::Refused;
    use super::*;
    use crate::order::RejectKind;

    fn message(offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"raw".to_vec()),
            None,
            "orders".to_owned(),
            Timestamp::NotAvailable,
            0,
            offset,
            None,
        )
    }

    fn order(uid: &str) -> Decided {
        Decided::Order {
            uid: uid.to_owned(),
            json: format!("{{\"order_uid\":\"{uid}\"}}"),
        }
    }

    fn refusal(message: &str) -> Refusal {
        Refusal {
            sqlstate: "23514".to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn every_message_gets_its_own_fate_across_the_pieces() {
        let batch: Vec<OwnedMessage> = (10..16).map(message).collect();
        let decided = vec![
            order("a"),
            Decided::Rejected(Rejection::message(RejectKind::NotObject, "an array")),
            order("b"),
            order("c"),
            order("d"),
            order("a"),
        ];
        use SaveOutcome::*;
        let pieces = vec![
            Piece::Saved(
                0..3,
                SavedBatch {
                    outcomes: vec![Stored, Stored],
                    conflicts: vec![],
                },
            ),
            Piece::Refused(Refused {
                index: 3,
                refusal: refusal("c refused"),
                unrecorded: None,
            }),
            Piece::Refused(Refused {
                index: 4,
                refusal: refusal("d refused"),
                unrecorded: Some(refusal("its rejection refused")),
            }),
            Piece::Saved(
                5..6,
                SavedBatch {
                    outcomes: vec![Conflict],
                    conflicts: vec![(0, Rejection::conflict("a"))],
                },
            ),
        ];
        let written = Written::new(&batch, &decided, pieces);
        assert_eq!(written.messages(), 6);
        let orders: Vec<(&str, Option<SaveOutcome>)> =
            written.orders().map(|(uid, _, o)| (uid, o)).collect();
        assert_eq!(
            orders,
            [
                ("a", Some(Stored)),
                ("b", Some(Stored)),
                ("c", None),
                ("d", None),
                ("a", Some(Conflict))
            ]
        );
        let rejections: Vec<(i64, &str, Option<String>)> = written
            .rejections()
            .iter()
            .map(|(r, unrecorded, _)| {
                (
                    r.origin.offset,
                    r.rejection.kind.code(),
                    unrecorded.map(|u| u.message.clone()),
                )
            })
            .collect();
        assert_eq!(
            rejections,
            [
                (11, "not_object", None),
                (13, "store_refused", None),
                (
                    14,
                    "store_refused",
                    Some("its rejection refused".to_owned())
                ),
                (15, "conflict", None),
            ]
        );
        let refused = written.rejections()[1].0.rejection.to_string();
        assert_eq!(refused, "store refused: c refused (SQLSTATE 23514)");
    }

    #[test]
    fn a_contract_rejection_refused_by_the_database_stays_what_it_was() {
        let batch = vec![message(0)];
        let decided = vec![Decided::Rejected(Rejection::message(
            RejectKind::EmptyMessage,
            "",
        ))];
        let pieces = vec![Piece::Refused(Refused {
            index: 0,
            refusal: refusal("no"),
            unrecorded: Some(refusal("no")),
        })];
        let written = Written::new(&batch, &decided, pieces);
        let rejections = written.rejections();
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].0.rejection.kind, RejectKind::EmptyMessage);
        assert!(rejections[0].1.is_some());
        assert_eq!(written.orders().count(), 0);
    }
}
