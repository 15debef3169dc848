//! A lean MQTT client on `mqtt_codec`: just what a load generator needs,
//! built so the client costs far less per message than any broker does.
//!
//! - [`PacketReader`] reads big chunks and decodes every whole packet in them.
//! - [`PublishTemplate`] encodes one PUBLISH with the codec, then stamps copies
//!   of it with a packet id and a payload header, so a batch of messages is a
//!   few memory copies into one buffer and one write.
//! - [`open`] does TCP/TLS, CONNECT and CONNACK; [`subscribe`] does SUBSCRIBE
//!   and SUBACK.

use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    ConnectReturnCode, DecodeError, Packet, PacketId, Publish, QoS, SubAckReturnCode, Subscribe,
    SubscribeFilter, decode_packet,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::payload::{HEADER_LEN, Header};
use super::transport::{Reader, Target, Writer};
use crate::exit::Status;

/// How much a read asks for at once: large enough that a busy subscriber
/// handles hundreds of messages per system call.
const READ_CHUNK: usize = 256 * 1024;

/// The largest packet we accept from the broker. Benchmark messages are small;
/// anything near this is a broker fault, not a reason to buffer gigabytes.
const MAX_PACKET: usize = 64 * 1024 * 1024;

/// The read side of a connection: a buffer of bytes not yet decoded.
pub struct PacketReader {
    reader: Reader,
    buf: BytesMut,
}

impl std::fmt::Debug for PacketReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketReader")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl PacketReader {
    /// Wraps a read half.
    pub fn new(reader: Reader) -> Self {
        Self {
            reader,
            buf: BytesMut::new(),
        }
    }

    /// Reads whatever the socket has (waiting for at least one byte). Returns
    /// 0 at end of stream.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        self.reader.read_buf(&mut self.buf).await
    }

    /// The next whole packet already read, if any.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, DecodeError> {
        decode_packet(&mut self.buf, MAX_PACKET)
    }

    /// Reads until a whole packet is in, or the stream ends.
    pub async fn read_packet(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(p) = self.next_packet()? {
                return Ok(p);
            }
            if self.fill().await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket or TLS failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The broker sent bytes that are not a valid packet.
    #[error("broker sent a malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// The broker closed the connection.
    #[error("broker closed the connection")]
    Closed,
    /// The broker did not answer in time.
    #[error("no {0} within the timeout")]
    Timeout(&'static str),
    /// The broker refused the CONNECT.
    #[error("broker refused the connection: {0}")]
    Refused(ConnectReturnCode),
    /// The broker sent a packet that makes no sense here.
    #[error("unexpected {0} from the broker")]
    Unexpected(&'static str),
    /// The broker refused a subscription.
    #[error("broker refused the subscription to {0}")]
    SubscriptionRefused(String),
}

impl ClientError {
    /// The toolkit exit status this failure maps to (see `crate::exit`).
    pub fn status(&self) -> Status {
        match self {
            ClientError::Io(e) => {
                if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return match tls {
                        rustls::Error::InvalidCertificate(_) => Status::Certificate,
                        _ => Status::Handshake,
                    };
                }
                use std::io::ErrorKind::*;
                match e.kind() {
                    UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
                        Status::Closed
                    }
                    _ => Status::Connect,
                }
            }
            ClientError::Closed => Status::Closed,
            ClientError::Timeout(_) => Status::Timeout,
            ClientError::Refused(_) => Status::Refused,
            ClientError::Decode(_)
            | ClientError::Unexpected(_)
            | ClientError::SubscriptionRefused(_) => Status::Failure,
        }
    }

    /// A short, stable name for the kind of failure, used to group connection
    /// failures in reports.
    pub fn kind(&self) -> String {
        match self {
            ClientError::Io(e) => format!("i/o: {}", e.kind()),
            ClientError::Decode(_) => "malformed packet".into(),
            ClientError::Closed => "closed by broker".into(),
            ClientError::Timeout(what) => format!("no {what} in time"),
            ClientError::Refused(code) => format!("refused {code}"),
            ClientError::Unexpected(what) => format!("unexpected {what}"),
            ClientError::SubscriptionRefused(_) => "subscription refused".into(),
        }
    }
}

/// What a client says in its CONNECT.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Client identifier.
    pub client_id: String,
    /// Keep-alive in seconds (0: off).
    pub keep_alive: u16,
    /// User name, if any.
    pub username: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// CONNECT's Clean Session flag.
    pub clean_session: bool,
}

/// An open, accepted connection.
pub struct Connection {
    /// Packets from the broker.
    pub reader: PacketReader,
    /// Bytes to the broker.
    pub writer: Writer,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// Connects, sends CONNECT and waits for CONNACK.
pub async fn open(
    target: &Target,
    id: &Identity,
    timeout: Duration,
) -> Result<Connection, ClientError> {
    let attempt = async {
        let (r, mut writer) = target.connect().await?;
        let connect = Packet::Connect(mqtt_codec::Connect {
            clean_session: id.clean_session,
            keep_alive: id.keep_alive,
            client_id: id.client_id.clone(),
            username: id.username.clone(),
            password: id.password.clone().map(|p| p.into_bytes().into()),
            ..mqtt_codec::Connect::default()
        });
        let mut out = BytesMut::new();
        connect
            .encode(&mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        writer.write_all(&out).await?;
        let mut reader = PacketReader::new(r);
        match reader.read_packet().await? {
            Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Accepted => {
                Ok(Connection { reader, writer })
            }
            Packet::ConnAck(ack) => Err(ClientError::Refused(ack.code)),
            other => Err(ClientError::Unexpected(other.packet_type().name())),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(ClientError::Timeout("CONNACK")))
}

/// Subscribes to `filters` at `qos` and waits for the SUBACK; a refused
/// filter is an error. Any PUBLISH arriving before the SUBACK is an error
/// too: a benchmark subscribes before anything is published.
pub async fn subscribe(
    conn: &mut Connection,
    filters: &[TopicFilter],
    qos: QoS,
    timeout: Duration,
) -> Result<(), ClientError> {
    // Keep each SUBSCRIBE modest; a broker may cap packet sizes.
    for (n, chunk) in filters.chunks(64).enumerate() {
        let packet_id = PacketId::new(u16::try_from(n % 65_535 + 1).unwrap_or(1))
            .unwrap_or(PacketId::new(1).expect("1 is a valid packet id"));
        let sub = Packet::Subscribe(Subscribe {
            packet_id,
            filters: chunk
                .iter()
                .map(|f| SubscribeFilter {
                    filter: f.clone(),
                    qos,
                })
                .collect(),
        });
        let mut out = BytesMut::new();
        sub.encode(&mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        conn.writer.write_all(&out).await?;
        let ack = tokio::time::timeout(timeout, conn.reader.read_packet())
            .await
            .unwrap_or(Err(ClientError::Timeout("SUBACK")))?;
        let Packet::SubAck(ack) = ack else {
            return Err(ClientError::Unexpected(ack.packet_type().name()));
        };
        if ack.packet_id != packet_id {
            return Err(ClientError::Unexpected("SUBACK for another packet id"));
        }
        for (code, f) in ack.return_codes.iter().zip(chunk) {
            if *code == SubAckReturnCode::Failure {
                return Err(ClientError::SubscriptionRefused(f.as_str().to_owned()));
            }
        }
    }
    Ok(())
}

/// One PUBLISH encoded by the codec, to be copied and stamped per message.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    packet_id_at: Option<usize>,
    payload_at: usize,
    payload_len: usize,
}

impl PublishTemplate {
    /// Encodes a PUBLISH of `payload_len` bytes (at least [`HEADER_LEN`]) to
    /// `topic` at `qos`.
    pub fn new(topic: TopicName, qos: QoS, payload_len: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            payload_len >= HEADER_LEN,
            "payload of {payload_len} bytes cannot hold the {HEADER_LEN}-byte benchmark header"
        );
        // Printable filler, so a message seen in a broker's log is readable.
        let payload: Vec<u8> = (0..payload_len).map(|i| b'a' + (i % 26) as u8).collect();
        let publish = Publish::at_qos(
            topic,
            qos,
            PacketId::new(1).expect("1 is a valid packet id"),
            payload,
        );
        let mut buf = BytesMut::new();
        Packet::Publish(publish).encode(&mut buf)?;
        let payload_at = buf.len() - payload_len;
        let packet_id_at = (qos != QoS::AtMostOnce).then_some(payload_at - 2);
        Ok(Self {
            bytes: buf.to_vec(),
            packet_id_at,
            payload_at,
            payload_len,
        })
    }

    /// Bytes one message takes on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one message to `out`.
    pub fn append(&self, out: &mut Vec<u8>, packet_id: Option<PacketId>, header: &Header) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let msg = &mut out[start..];
        if let (Some(at), Some(id)) = (self.packet_id_at, packet_id) {
            msg[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
        }
        header.write(&mut msg[self.payload_at..self.payload_at + self.payload_len]);
    }
}

/// Appends a two-byte acknowledgement packet (PUBACK, PUBREC, PUBREL,
/// PUBCOMP) to `out`.
pub fn append_ack(out: &mut Vec<u8>, packet: &Packet) {
    let mut buf = BytesMut::with_capacity(4);
    // Acks carry only a packet id; encoding them cannot fail.
    if packet.encode(&mut buf).is_ok() {
        out.extend_from_slice(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_template_decodes_to_the_message_meant() {
        let topic = TopicName::new("bench/1").unwrap();
        let t = PublishTemplate::new(topic.clone(), QoS::ExactlyOnce, 64).unwrap();
        let header = Header {
            run_id: 9,
            publisher: 3,
            seq: 77,
            sent_at_ns: 5,
        };
        let id = PacketId::new(4242).unwrap();
        let mut out = Vec::new();
        t.append(&mut out, Some(id), &header);
        t.append(&mut out, Some(id.next()), &Header { seq: 78, ..header });
        assert_eq!(out.len(), 2 * t.len());
        let mut buf = BytesMut::from(&out[..]);
        let Some(Packet::Publish(p)) = decode_packet(&mut buf, MAX_PACKET).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(*p.topic(), topic);
        assert_eq!(p.qos(), QoS::ExactlyOnce);
        assert_eq!(p.packet_id(), Some(id));
        assert_eq!(p.payload().len(), 64);
        assert_eq!(Header::read(p.payload()), Some(header));
        let Some(Packet::Publish(p)) = decode_packet(&mut buf, MAX_PACKET).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(p.packet_id(), Some(id.next()));
        assert_eq!(Header::read(p.payload()).map(|h| h.seq), Some(78));
        assert!(buf.is_empty());
    }

    #[test]
    fn qos0_template_has_no_packet_id() {
        let t = PublishTemplate::new(TopicName::new("t").unwrap(), QoS::AtMostOnce, 24).unwrap();
        let mut out = Vec::new();
        t.append(
            &mut out,
            None,
            &Header {
                run_id: 1,
                publisher: 0,
                seq: 0,
                sent_at_ns: 0,
            },
        );
        let mut buf = BytesMut::from(&out[..]);
        let Some(Packet::Publish(p)) = decode_packet(&mut buf, MAX_PACKET).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(p.packet_id(), None);
        assert!(!p.payload().is_empty());
    }

    #[test]
    fn payload_smaller_than_header_is_refused() {
        assert!(PublishTemplate::new(TopicName::new("t").unwrap(), QoS::AtMostOnce, 8).is_err());
    }
}
