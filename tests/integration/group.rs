//! A consumer group as its coordinator describes it: librdkafka's `rd_kafka_list_groups`
//! (ListGroups, then DescribeGroups for the group) through rdkafka's `fetch_group_list`, with
//! each member's assignment decoded from the classic consumer protocol's `MemberAssignment`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use order_service::infra::config::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::groups::{GroupInfo, GroupMemberInfo};

/// The protocol type of a group of Kafka consumers, whose assignments are `MemberAssignment`s.
pub const CONSUMER_PROTOCOL: &str = "consumer";

/// The highest `MemberAssignment` version known here (Kafka 4.1's
/// `ConsumerProtocolAssignment` is 0 to 3, all with the same fields; librdkafka writes 0).
const KNOWN_VERSION: i16 = 3;

/// One member's assignment in the classic consumer protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The version the assignor wrote.
    pub version: i16,
    /// The assigned partitions of each topic, as encoded.
    pub topics: Vec<(String, Vec<i32>)>,
    /// The assignor's user data; `None` when null (length -1) or absent.
    pub user_data: Option<Vec<u8>>,
}

/// Why bytes are not a `MemberAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("{what} at byte {at} needs {needed} bytes, {left} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// Its size.
        needed: usize,
        /// The bytes left from `at`.
        left: usize,
    },
    /// A length or count that cannot be negative is.
    #[error("{what} at byte {at} is {value}")]
    Negative {
        /// The field.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// Its value.
        value: i32,
    },
    /// A topic name is not UTF-8.
    #[error("the topic name at byte {at} is not UTF-8")]
    NotUtf8 {
        /// Where the name's bytes start.
        at: usize,
    },
    /// Bytes follow the user data of a version whose fields end there.
    #[error("{left} bytes after the user data of a version {version} assignment")]
    Trailing {
        /// The assignment's version.
        version: i16,
        /// How many bytes follow.
        left: usize,
    },
}

/// Reads big-endian fields from the front of a byte slice.
struct Reader<'a> {
    /// All the bytes.
    bytes: &'a [u8],
    /// Where the next field starts.
    at: usize,
}

impl<'a> Reader<'a> {
    /// The bytes left to read.
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The next `needed` bytes, which are `what`.
    fn take(&mut self, needed: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.left();
        if needed > left {
            return Err(DecodeError::Truncated {
                what,
                at: self.at,
                needed,
                left,
            });
        }
        let field = &self.bytes[self.at..self.at + needed];
        self.at += needed;
        Ok(field)
    }

    /// An int16.
    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let field = self.take(2, what)?;
        Ok(i16::from_be_bytes([field[0], field[1]]))
    }

    /// An int32.
    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let field = self.take(4, what)?;
        Ok(i32::from_be_bytes([field[0], field[1], field[2], field[3]]))
    }

    /// An int32 count or length that must not be negative.
    fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let at = self.at;
        let value = self.i32(what)?;
        usize::try_from(value).map_err(|_| DecodeError::Negative { what, at, value })
    }

    /// A non-null string: int16 length, then UTF-8.
    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let at = self.at;
        let length = self.i16(what)?;
        let length = usize::try_from(length).map_err(|_| DecodeError::Negative {
            what,
            at,
            value: i32::from(length),
        })?;
        let start = self.at;
        let bytes = self.take(length, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { at: start })
    }
}

/// Decodes a `MemberAssignment` of the classic consumer protocol: int16 version, int32 count
/// of topics, each an int16-length name and an int32 count of int32 partitions, then the
/// user data as int32-length bytes (-1: null; the field may also be missing). Bytes after the
/// user data are refused for the versions known here, and ignored for later ones (which may
/// add fields, as Kafka's own parser allows).
pub fn decode_assignment(bytes: &[u8]) -> Result<MemberAssignment, DecodeError> {
    let mut reader = Reader { bytes, at: 0 };
    let version_at = reader.at;
    let version = reader.i16("the version")?;
    if version < 0 {
        return Err(DecodeError::Negative {
            what: "the version",
            at: version_at,
            value: i32::from(version),
        });
    }
    let topic_count = reader.count("the topic count")?;
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        let topic = reader.string("a topic name")?;
        let partition_count = reader.count("a partition count")?;
        let mut partitions = Vec::new();
        for _ in 0..partition_count {
            partitions.push(reader.i32("a partition")?);
        }
        topics.push((topic, partitions));
    }
    let user_data = if reader.left() == 0 {
        None
    } else {
        let at = reader.at;
        match reader.i32("the user data length")? {
            -1 => None,
            length => {
                let length = usize::try_from(length).map_err(|_| DecodeError::Negative {
                    what: "the user data length",
                    at,
                    value: length,
                })?;
                Some(reader.take(length, "the user data")?.to_vec())
            }
        }
    };
    if version <= KNOWN_VERSION && reader.left() > 0 {
        return Err(DecodeError::Trailing {
            version,
            left: reader.left(),
        });
    }
    Ok(MemberAssignment {
        version,
        topics,
        user_data,
    })
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its member id, given by the coordinator (`<client id>-<uuid>` for librdkafka).
    pub id: String,
    /// Its client id.
    pub client_id: String,
    /// Where it connects from.
    pub client_host: String,
    /// Its assignment; `None` while it has none (during a rebalance).
    pub assignment: Option<MemberAssignment>,
}

/// A group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead`.
    pub state: String,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// The assignor chosen for the current generation (`range`, `roundrobin`, ...).
    pub protocol: String,
    /// Its members.
    pub members: Vec<Member>,
}

impl Group {
    /// The group copied out of librdkafka's list; panics if a member's assignment is not a
    /// `MemberAssignment` (a consumer group's always is).
    fn from_info(info: &GroupInfo) -> Self {
        let member = |member: &GroupMemberInfo| Member {
            id: member.id().to_owned(),
            client_id: member.client_id().to_owned(),
            client_host: member.client_host().to_owned(),
            assignment: member.assignment().map(|bytes| {
                decode_assignment(bytes).unwrap_or_else(|error| {
                    panic!(
                        "the assignment of {} in {} is not a MemberAssignment: {error}",
                        member.id(),
                        info.name()
                    )
                })
            }),
        };
        Self {
            state: info.state().to_owned(),
            protocol_type: info.protocol_type().to_owned(),
            protocol: info.protocol().to_owned(),
            members: info.members().iter().map(member).collect(),
        }
    }

    /// The member id owning each of `topic`'s `partitions` (indexed by partition), if the
    /// group is a Stable consumer group of exactly `members` members, each assigned at least
    /// one partition and nothing but partitions of `topic`, and each partition is assigned to
    /// exactly one member. Otherwise, what is not so.
    pub fn owners(
        &self,
        topic: &str,
        partitions: i32,
        members: usize,
    ) -> Result<Vec<&str>, String> {
        if self.state != "Stable" {
            return Err(format!("the group is {:?}, not Stable", self.state));
        }
        if self.protocol_type != CONSUMER_PROTOCOL {
            return Err(format!(
                "the protocol type is {:?}, not {CONSUMER_PROTOCOL:?}",
                self.protocol_type
            ));
        }
        if self.members.len() != members {
            return Err(format!("{} members, not {members}", self.members.len()));
        }
        let mut owners: BTreeMap<i32, &str> = BTreeMap::new();
        for member in &self.members {
            let Some(assignment) = &member.assignment else {
                return Err(format!("{} has no assignment", member.id));
            };
            let mut owned = 0;
            for (assigned_topic, assigned) in &assignment.topics {
                if assigned_topic != topic {
                    return Err(format!(
                        "{} is assigned topic {assigned_topic:?}",
                        member.id
                    ));
                }
                for &partition in assigned {
                    if !(0..partitions).contains(&partition) {
                        return Err(format!(
                            "{} is assigned partition {partition} of {partitions}",
                            member.id
                        ));
                    }
                    if let Some(other) = owners.insert(partition, &member.id) {
                        return Err(format!(
                            "partition {partition} is assigned to {other} and {}",
                            member.id
                        ));
                    }
                    owned += 1;
                }
            }
            if owned == 0 {
                return Err(format!("{} is assigned no partition", member.id));
            }
        }
        (0..partitions)
            .map(|partition| {
                owners
                    .get(&partition)
                    .copied()
                    .ok_or_else(|| format!("partition {partition} is assigned to no member"))
            })
            .collect()
    }
}

/// A client that asks the brokers about groups (it joins none).
#[derive(Clone)]
pub struct GroupClient(Arc<BaseConsumer>);

impl GroupClient {
    /// A client of `kafka`'s brokers.
    pub fn new(kafka: &KafkaArgs) -> Self {
        let client = ClientConfig::new()
            .set("bootstrap.servers", &kafka.kafka_brokers)
            .set("client.id", "order-service-test-groups")
            .create()
            .expect("a Kafka client");
        Self(Arc::new(client))
    }

    /// `group_id` as its coordinator describes it, waiting `timeout` at most for the brokers;
    /// `None` when no broker lists it (it has not been joined yet). The request blocks, so it
    /// runs on tokio's blocking threads, away from the services' workers.
    pub async fn describe(&self, group_id: &str, timeout: Duration) -> KafkaResult<Option<Group>> {
        let client = Arc::clone(&self.0);
        let group_id = group_id.to_owned();
        tokio::task::spawn_blocking(move || {
            let list = client.fetch_group_list(Some(&group_id), timeout)?;
            Ok(list
                .groups()
                .iter()
                .find(|info| info.name() == group_id)
                .map(Group::from_info))
        })
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What librdkafka's range assignor sends for topic `orders`, partitions 0 and 2: version
    /// 0, one topic, no user data (-1). Written out byte by byte.
    const LIBRDKAFKA: &[u8] = &[
        0, 0, // version 0
        0, 0, 0, 1, // 1 topic
        0, 6, b'o', b'r', b'd', b'e', b'r', b's', // "orders"
        0, 0, 0, 2, // 2 partitions
        0, 0, 0, 0, // 0
        0, 0, 0, 2, // 2
        0xff, 0xff, 0xff, 0xff, // user data: null
    ];

    /// `LIBRDKAFKA`'s offset of the user data.
    const LIBRDKAFKA_USER_DATA_AT: usize = 26;

    /// Encodes an assignment the way the protocol lays it out, for the tests below.
    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend(partition.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                bytes.extend((data.len() as i32).to_be_bytes());
                bytes.extend(data);
            }
            None => bytes.extend((-1i32).to_be_bytes()),
        }
        bytes
    }

    /// A member named `id` assigned `partitions` of `orders`.
    fn member(id: &str, partitions: &[i32]) -> Member {
        Member {
            id: id.to_owned(),
            client_id: "order-service".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            assignment: Some(MemberAssignment {
                version: 0,
                topics: vec![("orders".to_owned(), partitions.to_vec())],
                user_data: None,
            }),
        }
    }

    /// A Stable consumer group of `members`.
    fn stable(members: Vec<Member>) -> Group {
        Group {
            state: "Stable".to_owned(),
            protocol_type: CONSUMER_PROTOCOL.to_owned(),
            protocol: "range".to_owned(),
            members,
        }
    }

    #[test]
    fn decodes_what_librdkafka_sends() {
        assert_eq!(
            decode_assignment(LIBRDKAFKA),
            Ok(MemberAssignment {
                version: 0,
                topics: vec![("orders".to_owned(), vec![0, 2])],
                user_data: None,
            })
        );
        assert_eq!(
            encode(0, &[("orders", &[0, 2])], None),
            LIBRDKAFKA,
            "the tests' encoder lays bytes out as librdkafka does"
        );
    }

    #[test]
    fn decodes_several_topics_user_data_and_later_versions() {
        let topics: &[(&str, &[i32])] = &[("a", &[3, 1]), ("bé", &[]), ("c", &[7])];
        for version in 0..=KNOWN_VERSION {
            let decoded = decode_assignment(&encode(version, topics, Some(b"\x00\x01sticky")))
                .expect("decodes");
            assert_eq!(decoded.version, version);
            assert_eq!(
                decoded.topics,
                vec![
                    ("a".to_owned(), vec![3, 1]),
                    ("bé".to_owned(), vec![]),
                    ("c".to_owned(), vec![7]),
                ]
            );
            assert_eq!(decoded.user_data.as_deref(), Some(&b"\x00\x01sticky"[..]));
        }
        let empty = decode_assignment(&encode(1, &[], Some(b""))).expect("decodes");
        assert_eq!(
            (empty.topics, empty.user_data),
            (Vec::new(), Some(Vec::new()))
        );
    }

    #[test]
    fn user_data_may_be_absent() {
        assert_eq!(
            decode_assignment(&LIBRDKAFKA[..LIBRDKAFKA_USER_DATA_AT]),
            decode_assignment(LIBRDKAFKA)
        );
        assert_eq!(
            decode_assignment(&[0, 0, 0, 0, 0, 0]).map(|a| (a.topics, a.user_data)),
            Ok((Vec::new(), None))
        );
    }

    #[test]
    fn every_other_truncation_is_refused() {
        for end in 0..LIBRDKAFKA.len() {
            if end == LIBRDKAFKA_USER_DATA_AT {
                continue;
            }
            let error = decode_assignment(&LIBRDKAFKA[..end]).expect_err("truncated");
            assert!(
                matches!(error, DecodeError::Truncated { left, needed, .. } if left < needed),
                "{end}: {error}"
            );
        }
        let with_data = encode(0, &[("orders", &[1])], Some(b"abc"));
        assert_eq!(
            decode_assignment(&with_data[..with_data.len() - 1]),
            Err(DecodeError::Truncated {
                what: "the user data",
                at: with_data.len() - 3,
                needed: 3,
                left: 2,
            })
        );
    }

    #[test]
    fn negative_lengths_are_refused() {
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[0..2].copy_from_slice(&(-1i16).to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Negative {
                what: "the version",
                at: 0,
                value: -1
            })
        ));
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[2..6].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Negative {
                what: "the topic count",
                at: 2,
                value: -1
            })
        ));
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[6..8].copy_from_slice(&(-1i16).to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Negative {
                what: "a topic name",
                at: 6,
                value: -1
            })
        ));
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[14..18].copy_from_slice(&i32::MIN.to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Negative {
                what: "a partition count",
                at: 14,
                ..
            })
        ));
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[LIBRDKAFKA_USER_DATA_AT..].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Negative {
                what: "the user data length",
                value: -2,
                ..
            })
        ));
    }

    #[test]
    fn a_huge_count_is_truncation_not_an_allocation() {
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[14..18].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(DecodeError::Truncated {
                what: "a partition",
                ..
            })
        ));
    }

    #[test]
    fn a_topic_name_must_be_utf8() {
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes[8] = 0xff;
        assert_eq!(
            decode_assignment(&bytes),
            Err(DecodeError::NotUtf8 { at: 8 })
        );
    }

    #[test]
    fn trailing_bytes_only_after_unknown_versions() {
        let mut bytes = LIBRDKAFKA.to_vec();
        bytes.push(0);
        assert_eq!(
            decode_assignment(&bytes),
            Err(DecodeError::Trailing {
                version: 0,
                left: 1
            })
        );
        bytes[0..2].copy_from_slice(&(KNOWN_VERSION + 1).to_be_bytes());
        let decoded = decode_assignment(&bytes).expect("a later version may add fields");
        assert_eq!(decoded.topics, vec![("orders".to_owned(), vec![0, 2])]);
    }

    #[test]
    fn owners_of_a_shared_topic() {
        let group = stable(vec![member("a", &[0, 1]), member("b", &[3, 2])]);
        assert_eq!(group.owners("orders", 4, 2), Ok(vec!["a", "a", "b", "b"]));
        let alone = stable(vec![member("b", &[0, 1, 2, 3])]);
        assert_eq!(alone.owners("orders", 4, 1), Ok(vec!["b"; 4]));
    }

    #[test]
    fn owners_only_of_a_stable_complete_assignment() {
        let shared = || stable(vec![member("a", &[0, 1]), member("b", &[2, 3])]);
        let check = |group: Group, members: usize| {
            group
                .owners("orders", 4, members)
                .map(|owners| owners.len())
        };

        let mut rebalancing = shared();
        rebalancing.state = "CompletingRebalance".to_owned();
        assert!(check(rebalancing, 2).expect_err("").contains("not Stable"));
        let mut other_protocol = shared();
        other_protocol.protocol_type = "connect".to_owned();
        assert!(
            check(other_protocol, 2)
                .expect_err("")
                .contains("protocol type")
        );
        assert_eq!(check(shared(), 3), Err("2 members, not 3".to_owned()));

        let mut unassigned = shared();
        unassigned.members[1].assignment = None;
        assert_eq!(check(unassigned, 2), Err("b has no assignment".to_owned()));
        let mut foreign = shared();
        if let Some(assignment) = &mut foreign.members[0].assignment {
            assignment.topics.push(("payments".to_owned(), vec![0]));
        }
        assert_eq!(
            check(foreign, 2),
            Err("a is assigned topic \"payments\"".to_owned())
        );

        let twice = stable(vec![member("a", &[0, 1, 2]), member("b", &[2, 3])]);
        assert_eq!(
            check(twice, 2),
            Err("partition 2 is assigned to a and b".to_owned())
        );
        let missing = stable(vec![member("a", &[0, 1]), member("b", &[3])]);
        assert_eq!(
            check(missing, 2),
            Err("partition 2 is assigned to no member".to_owned())
        );
        let idle = stable(vec![member("a", &[0, 1, 2, 3]), member("b", &[])]);
        assert_eq!(check(idle, 2), Err("b is assigned no partition".to_owned()));
        let beyond = stable(vec![member("a", &[0, 1, 4]), member("b", &[2, 3])]);
        assert_eq!(
            check(beyond, 2),
            Err("a is assigned partition 4 of 4".to_owned())
        );
    }
}
