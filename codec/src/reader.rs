//! A bounded reader over one packet's body: every read checks what is left,
//! so a short or lying packet becomes [`DecodeError::Truncated`], never a panic.

use bytes::{Buf, Bytes};

use super::error::DecodeError;
use super::packet::{PacketId, PacketType};

/// Reads the fields of one packet body.
pub(crate) struct Reader {
    packet: PacketType,
    body: Bytes,
}

impl Reader {
    pub(crate) fn new(packet: PacketType, body: Bytes) -> Self {
        Self { packet, body }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.body.len()
    }

    fn truncated(&self, field: &'static str) -> DecodeError {
        DecodeError::Truncated {
            packet: self.packet,
            field,
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        if self.body.is_empty() {
            return Err(self.truncated(field));
        }
        Ok(self.body.get_u8())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        if self.body.len() < 2 {
            return Err(self.truncated(field));
        }
        Ok(self.body.get_u16())
    }

    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let id = self.u16("packet identifier")?;
        PacketId::new(id).ok_or(DecodeError::PacketIdZero {
            packet: self.packet,
        })
    }

    /// A two-byte length followed by that many bytes (§1.5.3 binary data).
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if self.body.len() < len {
            return Err(self.truncated(field));
        }
        Ok(self.body.split_to(len))
    }

    /// A UTF-8 string: well-formed [MQTT-1.5.3-1] and free of U+0000
    /// [MQTT-1.5.3-2]. `std::str::from_utf8` already refuses encoded
    /// surrogates and over-long forms. U+FEFF is kept as is [MQTT-1.5.3-3].
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.string_with(field, |s| Ok(s.to_owned()))
    }

    /// Reads a string as [`Reader::string`] does and hands it to `f` without
    /// copying it first, so a topic is allocated once, by its own type.
    pub(crate) fn string_with<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&str) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let raw = self.binary(field)?;
        let s = std::str::from_utf8(&raw).map_err(|_| DecodeError::InvalidUtf8 {
            packet: self.packet,
            field,
        })?;
        if s.contains('\0') {
            return Err(DecodeError::NullCharacter {
                packet: self.packet,
                field,
            });
        }
        f(s)
    }

    /// Everything left in the body.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.body)
    }

    /// Fails when bytes are left over after the last field.
    pub(crate) fn finish(self, statement: Option<&'static str>) -> Result<(), DecodeError> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
                extra: self.body.len(),
                statement,
            })
        }
    }
}
