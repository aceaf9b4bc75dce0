//! Framing: a 4-byte big-endian length, then the postcard encoding of a `WireMessage`.
//!
//! These functions work on byte slices so the replica node, the client and the harness proxy
//! share one definition of a frame and of every way a frame can be bad.

use crate::message::WireMessage;
use thiserror::Error;

pub const LENGTH_PREFIX: usize = 4;
/// Default cap on a frame's payload; a state transfer of a large store is the biggest message.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the cap of {max}")]
    Oversized { len: usize, max: usize },
    #[error("frame does not decode as a message: {0}")]
    Malformed(String),
    #[error("frame has {extra} bytes after the message")]
    TrailingBytes { extra: usize },
}

pub fn encode_payload(message: &WireMessage) -> Vec<u8> {
    postcard::to_stdvec(message).expect("postcard encoding into a Vec cannot fail")
}

/// The whole frame: length prefix and payload.
pub fn encode_frame(message: &WireMessage) -> Vec<u8> {
    let payload = encode_payload(message);
    let mut frame = Vec::with_capacity(LENGTH_PREFIX + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Decodes one payload (the bytes after the length prefix).
pub fn decode_payload(payload: &[u8], max_frame: usize) -> Result<WireMessage, FrameError> {
    if payload.len() > max_frame {
        return Err(FrameError::Oversized {
            len: payload.len(),
            max: max_frame,
        });
    }
    let (message, rest) = postcard::take_from_bytes::<WireMessage>(payload)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(message)
}

/// Splits the first complete frame off `buffer`: `Ok(None)` until enough bytes arrived.
/// An oversized length is reported before its payload is read, so memory stays bounded.
pub fn split_frame(buffer: &[u8], max_frame: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    if buffer.len() < LENGTH_PREFIX {
        return Ok(None);
    }
    let mut prefix = [0u8; LENGTH_PREFIX];
    prefix.copy_from_slice(&buffer[..LENGTH_PREFIX]);
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max_frame {
        return Err(FrameError::Oversized {
            len,
            max: max_frame,
        });
    }
    let end = LENGTH_PREFIX + len;
    if buffer.len() < end {
        return Ok(None);
    }
    Ok(Some((&buffer[LENGTH_PREFIX..end], end)))
}
