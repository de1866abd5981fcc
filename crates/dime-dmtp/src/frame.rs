//! Framing (`spec/dmtp.md` §4): a 4-octet big-endian length, then that many octets of
//! protobuf. Frame first, then parse: the length is checked against [`MAX_FRAME_SIZE`] before
//! anything is buffered or decoded.

use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME_SIZE};
use crate::reply::ProtocolError;
use dime_core::crypto::Bytes;
use dime_wire::Message;
use std::fmt;

/// One frame to write: its first octets, then, for a BODY frame, the chunk of the body that
/// ends it, shared with the body it is a piece of (a queued envelope is never copied into
/// frames). A driver writes `head` then `tail`; on the wire they are one frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    head: Bytes,
    tail: Bytes,
}

impl Frame {
    /// A frame encoded whole.
    pub fn whole(frame: Vec<u8>) -> Frame {
        Frame { head: Bytes::from(frame), tail: Bytes::new() }
    }

    /// The BODY frame (`ClientFrame { body { chunk } }`) carrying `chunk`: the frame header and
    /// the protobuf keys and lengths, encoded here, then `chunk` itself. The octets are those
    /// [`encode_frame`] gives for the same message.
    ///
    /// # Errors
    /// [`ProtocolError::FrameTooLarge`] when the frame would be over [`MAX_FRAME_SIZE`].
    pub fn body(chunk: Bytes) -> Result<Frame, ProtocolError> {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
        /// `ClientFrame.body`'s field number (`proto/dmtp.proto`).
        const BODY_FIELD: u32 = 5;
        /// `Body.chunk`'s field number.
        const CHUNK_FIELD: u32 = 1;
        let n = chunk.len();
        // proto3 leaves out an empty `bytes` field.
        let body_len =
            if n == 0 { 0 } else { key_len(CHUNK_FIELD) + encoded_len_varint(n as u64) + n };
        let len = key_len(BODY_FIELD) + encoded_len_varint(body_len as u64) + body_len;
        if len > MAX_FRAME_SIZE {
            return Err(ProtocolError::FrameTooLarge);
        }
        let mut head = Vec::with_capacity(FRAME_HEADER_LEN + 16);
        // len <= MAX_FRAME_SIZE < u32::MAX, checked above.
        head.extend_from_slice(&(len as u32).to_be_bytes());
        encode_key(BODY_FIELD, WireType::LengthDelimited, &mut head);
        encode_varint(body_len as u64, &mut head);
        if n > 0 {
            encode_key(CHUNK_FIELD, WireType::LengthDelimited, &mut head);
            encode_varint(n as u64, &mut head);
        }
        Ok(Frame { head: Bytes::from(head), tail: chunk })
    }

    /// The first octets.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The octets after `head` (empty but for a BODY frame).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The frame's length on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether it is empty (never, for a frame the machines give).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's octets, copied into one buffer (tests, transcripts).
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], &self.tail[..]].concat()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// What [`split_frame`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split<'a> {
    /// Not enough bytes yet for the header or the payload it declares.
    Incomplete,
    /// One complete frame: its payload, and how many buffer octets it used (header included).
    Frame {
        /// The payload (the protobuf message).
        payload: &'a [u8],
        /// Octets to drop from the buffer.
        consumed: usize,
    },
}

/// Splits the first frame off `buf` without decoding it.
///
/// # Errors
/// [`ProtocolError::FrameTooLarge`] when the declared length is over [`MAX_FRAME_SIZE`]: the
/// stream cannot be resynchronised and is closed (`spec/dmtp.md` §4.2).
pub fn split_frame(buf: &[u8]) -> Result<Split<'_>, ProtocolError> {
    let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(Split::Incomplete);
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME_SIZE {
        return Err(ProtocolError::FrameTooLarge);
    }
    let end = FRAME_HEADER_LEN + len;
    match buf.get(FRAME_HEADER_LEN..end) {
        Some(payload) => Ok(Split::Frame { payload, consumed: end }),
        None => Ok(Split::Incomplete),
    }
}

/// Encodes `msg` as one frame (header and payload).
///
/// # Errors
/// [`ProtocolError::FrameTooLarge`] when the encoded message is over [`MAX_FRAME_SIZE`]: the
/// caller built something the peer would refuse.
pub fn encode_frame<M: Message>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    let len = msg.encoded_len();
    if len > MAX_FRAME_SIZE {
        return Err(ProtocolError::FrameTooLarge);
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + len);
    // len <= MAX_FRAME_SIZE < u32::MAX, checked above.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode_raw(&mut out);
    Ok(out)
}

/// Decodes one frame payload as `M`.
///
/// # Errors
/// [`ProtocolError::Undecodable`]; the frame boundary is still known, so the stream resyncs at
/// the next frame (`spec/dmtp.md` §4.2).
pub fn decode_payload<M: Message + Default>(payload: &[u8]) -> Result<M, ProtocolError> {
    M::decode(payload).map_err(|_| ProtocolError::Undecodable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_wire::dmtp::{Body, ClientFrame, client_frame::Command};

    #[test]
    fn a_body_frame_is_the_frame_encode_frame_gives_with_its_chunk_shared() {
        use crate::limits::BODY_CHUNK_SIZE;
        for n in [0, 1, 2, 127, 128, 129, 16_383, 16_384, 16_385, BODY_CHUNK_SIZE] {
            let chunk: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let want = encode_frame(&ClientFrame {
                command: Some(Command::Body(Body { chunk: chunk.clone() })),
            })
            .unwrap();
            let shared = Bytes::from(chunk);
            let f = Frame::body(shared.clone()).unwrap();
            assert_eq!(f.to_vec(), want, "chunk of {n}");
            assert_eq!(f.len(), want.len());
            assert_eq!(f.tail().as_ptr(), shared.as_ptr(), "the chunk is not copied");
        }
        let too_big = Bytes::from(vec![0; MAX_FRAME_SIZE]);
        assert_eq!(Frame::body(too_big).unwrap_err(), ProtocolError::FrameTooLarge);
    }

    #[test]
    fn frame_at_the_limit_is_split_and_one_past_is_refused() {
        let mut buf = (MAX_FRAME_SIZE as u32).to_be_bytes().to_vec();
        buf.resize(FRAME_HEADER_LEN + MAX_FRAME_SIZE, 0);
        assert!(
            matches!(split_frame(&buf), Ok(Split::Frame { consumed, .. }) if consumed == buf.len())
        );
        let over = ((MAX_FRAME_SIZE + 1) as u32).to_be_bytes();
        assert_eq!(split_frame(&over), Err(ProtocolError::FrameTooLarge));
    }

    #[test]
    fn encode_refuses_a_frame_over_the_limit() {
        let at = ClientFrame {
            command: Some(Command::Body(Body { chunk: vec![1; MAX_FRAME_SIZE - 8] })),
        };
        assert!(encode_frame(&at).is_ok());
        let over =
            ClientFrame { command: Some(Command::Body(Body { chunk: vec![1; MAX_FRAME_SIZE] })) };
        assert_eq!(encode_frame(&over), Err(ProtocolError::FrameTooLarge));
    }

    #[test]
    fn split_waits_for_the_whole_frame() {
        let frame = encode_frame(&ClientFrame {
            command: Some(Command::Body(Body { chunk: vec![9; 10] })),
        })
        .unwrap();
        for cut in 0..frame.len() {
            assert_eq!(split_frame(&frame[..cut]), Ok(Split::Incomplete));
        }
        let Ok(Split::Frame { payload, consumed }) = split_frame(&frame) else { panic!() };
        assert_eq!(consumed, frame.len());
        let back: ClientFrame = decode_payload(payload).unwrap();
        assert!(matches!(back.command, Some(Command::Body(b)) if b.chunk == vec![9; 10]));
    }

    #[test]
    fn text_protocols_are_refused_by_length() {
        for text in [&b"GET / HTTP/1.1\r\n"[..], b"EHLO x\r\n", b"a001 LOGIN", b"HELO"] {
            assert_eq!(split_frame(text), Err(ProtocolError::FrameTooLarge), "{text:?}");
        }
    }
}
