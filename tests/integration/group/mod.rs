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

mod assignment;

pub use assignment::{MemberAssignment, decode_assignment};

/// The protocol type of a group of Kafka consumers, whose assignments are `MemberAssignment`s.
pub const CONSUMER_PROTOCOL: &str = "consumer";

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
