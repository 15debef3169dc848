//! The sessions `toolkit fuzz` sends: a valid session (CONNECT, then a few
//! PUBLISH, SUBSCRIBE, UNSUBSCRIBE, acknowledgements, PINGREQ, maybe a
//! DISCONNECT), built with the codec's wrong-packet writer
//! ([`mqtt_codec::raw`]), then bent by one to three mutations: a string
//! field given U+0000, U+FEFF, invalid UTF-8 or a wildcard; wrong flags or a
//! reserved packet type; a Remaining Length that lies, or declares far more
//! than is sent; packets swapped, repeated, dropped or cut short; random
//! bytes; a packet written one byte at a time.
//!
//! Session `index` of seed `seed` depends on those two numbers alone (its
//! own generator is seeded from both), so a run with the same seed sends the
//! same sessions whatever the number of connections or the broker's answers.

use mqtt_codec::raw::{
    RawConnect, RawPacket, RawPublish, RawSubscribe, RawUnsubscribe, RawWill, RemainingLength,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One write of a session: usually one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The bytes, exactly as sent.
    pub bytes: Vec<u8>,
    /// Written one byte at a time (each byte its own write), to exercise
    /// the broker's handling of packets split across reads.
    pub slow: bool,
}

/// What one connection sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its number in the run (from 0); with the seed it names the session.
    pub index: u64,
    /// The writes, in order.
    pub steps: Vec<Step>,
}

impl Session {
    /// The number of bytes it sends.
    pub fn byte_len(&self) -> usize {
        self.steps.iter().map(|s| s.bytes.len()).sum()
    }
}

/// What the generator needs besides the seed.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    /// User name and password for the CONNECT of valid sessions, so that
    /// a broker requiring them lets the later packets through.
    pub credentials: Option<(String, String)>,
}

/// The strings a string mutation puts in: the characters [MQTT-1.5.3-2]
/// forbids, the one [MQTT-1.5.3-3] says must be kept, ill-formed UTF-8
/// [MQTT-1.5.3-1] and wildcards.
const ODD_STRINGS: &[&[u8]] = &[
    b"\x00",
    "\u{feff}".as_bytes(),
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    b"\xc0\x80",
    b"#",
    b"+",
    b"/",
    "\u{1}".as_bytes(),
    "\u{fffe}".as_bytes(),
];

/// Session `index` of the run seeded with `seed`.
pub fn session(seed: u64, index: u64, recipe: &Recipe) -> Session {
    let mut rng = StdRng::seed_from_u64(mix(seed, index));
    let mut packets = valid_session(&mut rng, index, recipe);
    let mutations = if rng.random_ratio(1, 10) {
        0
    } else {
        rng.random_range(1..=3)
    };
    let mut slow = None;
    for _ in 0..mutations {
        match rng.random_range(0..12) {
            0..=2 => bend_string(&mut rng, &mut packets),
            3 => bend_flags(&mut rng, &mut packets),
            4 => bend_length(&mut rng, &mut packets),
            5 => huge_length(&mut rng, &mut packets),
            6 => swap(&mut rng, &mut packets),
            7 => duplicate(&mut rng, &mut packets),
            8 => drop_one(&mut rng, &mut packets),
            9 => packets.push(Shape::Bytes(random_bytes(&mut rng))),
            10 => slow = Some(rng.random_range(0..packets.len().max(1))),
            _ => bend_qos(&mut rng, &mut packets),
        }
    }
    let mut steps: Vec<Step> = packets
        .iter()
        .map(|p| Step {
            bytes: p.to_bytes(),
            slow: false,
        })
        .collect();
    if let Some(step) = slow.and_then(|i| steps.get_mut(i)) {
        step.slow = true;
    }
    // Cut the last packet short (its length then promises more) in some
    // sessions.
    if rng.random_ratio(1, 12)
        && let Some(last) = steps.last_mut()
    {
        let keep = rng.random_range(0..last.bytes.len().max(1));
        last.bytes.truncate(keep);
    }
    steps.retain(|s| !s.bytes.is_empty());
    Session { index, steps }
}

/// A 64-bit mix of the run's seed and the session number (splitmix64), so
/// neighbouring sessions get unrelated generators.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A packet before it is written, in the form mutations can reach into.
#[derive(Debug, Clone)]
enum Shape {
    Connect(RawConnect),
    Publish(RawPublish),
    Subscribe(RawSubscribe),
    Unsubscribe(RawUnsubscribe),
    /// Any other packet, already raw (and perhaps bent).
    Raw(RawPacket),
    /// Bytes that are not a packet at all.
    Bytes(Vec<u8>),
}

impl Shape {
    fn to_raw(&self) -> RawPacket {
        match self {
            Shape::Connect(c) => c.to_packet(),
            Shape::Publish(p) => p.to_packet(),
            Shape::Subscribe(s) => s.to_packet(),
            Shape::Unsubscribe(u) => u.to_packet(),
            Shape::Raw(r) => r.clone(),
            Shape::Bytes(b) => {
                let (first, rest) = b.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
                RawPacket::verbatim(first, rest.to_vec())
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        match self {
            Shape::Bytes(b) => b.clone(),
            other => other.to_raw().to_bytes().to_vec(),
        }
    }
}

/// Topics and filters the sessions use: few, so sessions meet each other's
/// subscriptions and retained messages.
const TOPICS: &[&str] = &["fz/a", "fz/a/b", "fz/b", "fz/c/d/e", "fz"];
const FILTERS: &[&str] = &["fz/#", "fz/+", "fz/a/+", "#", "fz/+/b", "fz/c/#"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// How many client ids sessions share (`fz0` to `fz999`): a bounded set,
/// so the persistent sessions a run leaves behind (Clean Session 0, which a
/// broker must keep [MQTT-3.1.2-4]) stay bounded however long it runs, and
/// later sessions resume and take over earlier ones.
const CLIENT_IDS: u64 = 1000;

fn valid_session(rng: &mut StdRng, index: u64, recipe: &Recipe) -> Vec<Shape> {
    let mut connect = RawConnect {
        client_id: Some(format!("fz{}", index % CLIENT_IDS).into_bytes()),
        clean_session: rng.random_ratio(4, 5),
        keep_alive: *pick(rng, &[0, 5, 60, 600]),
        ..RawConnect::default()
    };
    if rng.random_ratio(1, 5) {
        connect.will = Some(RawWill {
            topic: pick(rng, TOPICS).as_bytes().to_vec(),
            message: b"gone".to_vec(),
            qos: rng.random_range(0..=2),
            retain: rng.random_bool(0.3),
        });
    }
    if let Some((user, password)) = &recipe.credentials {
        connect.username = Some(user.clone().into_bytes());
        connect.password = Some(password.clone().into_bytes());
    }
    let mut packets = vec![Shape::Connect(connect)];
    let mut next_id: u16 = 1;
    for _ in 0..rng.random_range(1..=8) {
        let id = next_id;
        next_id = next_id.wrapping_add(1).max(1);
        let shape = match rng.random_range(0..10) {
            0..=3 => {
                let qos: u8 = rng.random_range(0..=2);
                let retain = rng.random_ratio(1, 6);
                let len = *pick(rng, &[0usize, 1, 16, 200, 2000]);
                Shape::Publish(RawPublish {
                    flags: (qos << 1) | u8::from(retain),
                    topic: pick(rng, TOPICS).as_bytes().to_vec(),
                    packet_id: (qos > 0).then_some(id),
                    payload: (0..len).map(|_| rng.random()).collect(),
                })
            }
            4 | 5 => Shape::Subscribe(RawSubscribe {
                packet_id: id,
                filters: (0..rng.random_range(1..=3))
                    .map(|_| {
                        (
                            pick(rng, FILTERS).as_bytes().to_vec(),
                            rng.random_range(0..=2),
                        )
                    })
                    .collect(),
            }),
            6 => Shape::Unsubscribe(RawUnsubscribe {
                packet_id: id,
                filters: vec![pick(rng, FILTERS).as_bytes().to_vec()],
            }),
            7 => Shape::Raw(RawPacket::new(0xc0, Vec::new())),
            _ => {
                // An acknowledgement, for an id the broker may or may not
                // have in flight: PUBACK, PUBREC, PUBREL, PUBCOMP.
                let first = *pick(rng, &[0x40u8, 0x50, 0x62, 0x70]);
                let ack_id = rng.random_range(1..=next_id);
                Shape::Raw(RawPacket::new(first, ack_id.to_be_bytes().to_vec()))
            }
        };
        packets.push(shape);
    }
    if rng.random_ratio(1, 3) {
        packets.push(Shape::Raw(RawPacket::new(0xe0, Vec::new())));
    }
    packets
}

/// A string field of a random packet gets an odd string inserted, or
/// replaces it.
fn bend_string(rng: &mut StdRng, packets: &mut [Shape]) {
    let odd = pick(rng, ODD_STRINGS).to_vec();
    let i = rng.random_range(0..packets.len());
    let field: Option<&mut Vec<u8>> = match &mut packets[i] {
        Shape::Connect(c) => match rng.random_range(0..4) {
            0 => Some(&mut c.protocol_name),
            1 => c.will.as_mut().map(|w| &mut w.topic),
            2 => c.username.as_mut(),
            _ => {
                // A changed client id is a new one: it never leaves a
                // persistent session behind, so those stay within the
                // pool of CLIENT_IDS (and their queues within bounds).
                c.clean_session = true;
                c.client_id.as_mut()
            }
        },
        Shape::Publish(p) => Some(&mut p.topic),
        Shape::Subscribe(s) => {
            let n = s.filters.len();
            s.filters
                .get_mut(rng.random_range(0..n.max(1)))
                .map(|f| &mut f.0)
        }
        Shape::Unsubscribe(u) => u.filters.first_mut(),
        Shape::Raw(_) | Shape::Bytes(_) => None,
    };
    if let Some(field) = field {
        if rng.random_ratio(1, 4) {
            *field = odd;
        } else {
            let at = rng.random_range(0..=field.len());
            field.splice(at..at, odd);
        }
    }
}

/// The fixed header's flags or its type nibble are changed, reserved values
/// included [MQTT-2.2.2-2].
fn bend_flags(rng: &mut StdRng, packets: &mut [Shape]) {
    let i = rng.random_range(0..packets.len());
    let raw = packets[i].to_raw();
    packets[i] = Shape::Raw(if rng.random_ratio(1, 4) {
        raw.with_type_nibble(*pick(rng, &[0u8, 15, 2, 9, 11, 13]))
    } else {
        raw.with_flags(rng.random_range(0..16))
    });
}

/// A PUBLISH gets QoS 3 [MQTT-3.3.1-4], DUP at QoS 0 [MQTT-3.3.1-2], or a
/// SUBSCRIBE asks for QoS 3 [MQTT-3.8.3-4].
fn bend_qos(rng: &mut StdRng, packets: &mut [Shape]) {
    let i = rng.random_range(0..packets.len());
    match &mut packets[i] {
        Shape::Publish(p) => p.flags = *pick(rng, &[0b0110, 0b0111, 0b1000, 0b1001]),
        Shape::Subscribe(s) => {
            if let Some(f) = s.filters.first_mut() {
                f.1 = *pick(rng, &[3u8, 4, 0x80, 0xff]);
            }
        }
        _ => {}
    }
}

/// The Remaining Length is off by a little, zero, or encoded wrongly
/// (non-minimal, or with a fifth byte).
fn bend_length(rng: &mut StdRng, packets: &mut [Shape]) {
    let i = rng.random_range(0..packets.len());
    let raw = packets[i].to_raw();
    let real = raw.body.len();
    let length = match rng.random_range(0..5) {
        0 => RemainingLength::Value(real.saturating_sub(rng.random_range(1..=3))),
        1 => RemainingLength::Value(real + rng.random_range(1..=3)),
        2 => RemainingLength::Value(0),
        3 => RemainingLength::Encoded(vec![0x80 | (real as u8 & 0x7f), 0x00]),
        _ => RemainingLength::Encoded(vec![0xff, 0xff, 0xff, 0xff, 0x7f]),
    };
    packets[i] = Shape::Raw(raw.with_remaining_length(length));
}

/// The Remaining Length declares far more than follows: up to the largest
/// the encoding allows (268,435,455), which a broker must not try to
/// allocate up front.
fn huge_length(rng: &mut StdRng, packets: &mut [Shape]) {
    let i = rng.random_range(0..packets.len());
    let raw = packets[i].to_raw();
    let declared = *pick(rng, &[268_435_455usize, 16_777_216, 2_097_152, 65_536]);
    packets[i] = Shape::Raw(raw.with_remaining_length(RemainingLength::Value(declared)));
}

fn swap(rng: &mut StdRng, packets: &mut [Shape]) {
    let a = rng.random_range(0..packets.len());
    let b = rng.random_range(0..packets.len());
    packets.swap(a, b);
}

fn duplicate(rng: &mut StdRng, packets: &mut Vec<Shape>) {
    let i = rng.random_range(0..packets.len());
    let copy = packets[i].clone();
    packets.insert(i, copy);
}

fn drop_one(rng: &mut StdRng, packets: &mut Vec<Shape>) {
    if packets.len() > 1 {
        let i = rng.random_range(0..packets.len());
        packets.remove(i);
    }
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    (0..rng.random_range(1..=32))
        .map(|_| rng.random())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_session() {
        let recipe = Recipe::default();
        for index in 0..200 {
            assert_eq!(session(7, index, &recipe), session(7, index, &recipe));
        }
        let differ = (0..50).filter(|&i| session(7, i, &recipe) != session(8, i, &recipe));
        assert!(differ.count() > 40, "another seed gives other sessions");
    }

    #[test]
    fn sessions_cover_the_mutations_the_issue_names() {
        let recipe = Recipe::default();
        let sessions: Vec<Session> = (0..2000).map(|i| session(1, i, &recipe)).collect();
        let has = |needle: &[u8]| {
            sessions.iter().any(|s| {
                s.steps
                    .iter()
                    .any(|st| st.bytes.windows(needle.len()).any(|w| w == needle))
            })
        };
        assert!(has("\u{feff}".as_bytes()), "U+FEFF");
        assert!(
            has(&[0xff, 0xff, 0xff, 0x7f]),
            "the largest declared length"
        );
        assert!(
            sessions.iter().any(|s| s.steps.iter().any(|st| st.slow)),
            "slow writes"
        );
        assert!(
            sessions
                .iter()
                .any(|s| s.steps.first().is_some_and(|st| st.bytes[0] >> 4 != 1)),
            "sessions that do not start with CONNECT"
        );
        // Most sessions still start with a valid CONNECT, so later packets
        // are judged by a connected session.
        let connects = sessions
            .iter()
            .filter(|s| s.steps.first().is_some_and(|st| st.bytes[0] == 0x10))
            .count();
        assert!(connects > 1000, "{connects}");
    }

    /// Only pool ids (`fz0` to `fz999`) ask for a persistent session.
    #[test]
    fn persistent_sessions_use_pool_ids_only() {
        let recipe = Recipe::default();
        let mut persistent = 0;
        for i in 0..5000 {
            for step in session(2, i, &recipe).steps {
                let b = &step.bytes;
                // An intact CONNECT with a one-byte length: the flags are
                // byte 9 and the client id follows byte 13.
                if b.len() < 14 || b[0] != 0x10 || b[1] >= 0x80 || &b[2..8] != b"\0\x04MQTT" {
                    continue;
                }
                if b[9] & 0x02 != 0 {
                    continue;
                }
                let len = usize::from(u16::from_be_bytes([b[12], b[13]]));
                let Some(id) = b.get(14..14 + len) else {
                    continue;
                };
                persistent += 1;
                let id = std::str::from_utf8(id).unwrap();
                let n: u64 = id.strip_prefix("fz").unwrap().parse().unwrap();
                assert!(n < CLIENT_IDS, "{id}");
            }
        }
        assert!(persistent > 100, "{persistent}");
    }

    #[test]
    fn credentials_go_into_the_connect() {
        let recipe = Recipe {
            credentials: Some(("alice".into(), "s3cret".into())),
        };
        let s = session(3, 0, &recipe);
        let all: Vec<u8> = s.steps.iter().flat_map(|s| s.bytes.clone()).collect();
        assert!(all.windows(5).any(|w| w == b"alice"));
    }
}
