//! A member's assignment in the classic consumer protocol: `MemberAssignment` decoded from
//! the bytes DescribeGroups returns (version, topics with their partitions, user data), and
//! every way those bytes can be malformed.

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
}
