//! The UART bridge: how a board without a modem (the QEMU `mps2-an505` board) reaches the
//! network. The board's `Network` sends *connect / data / close* over a serial line; a program
//! on the host (`aliot-qemu`, in boards/host) opens the real TCP connection, with TLS when
//! asked (the bridge terminates TLS: QEMU has no modem to do it, as the nRF9160's does), and
//! sends back *connected / failed / data / closed*. The capsule above runs unchanged.
//!
//! **Framing**: each message is postcard, wrapped in one COBS frame ending in a zero byte, the
//! framing the syscall ABI already uses, so a lost or garbled byte costs one frame, never the
//! stream's sync: the reader resynchronises at the next zero.
//!
//! **Streams**: a one-byte id chosen by the device names each connection; the host answers a
//! `Connect` with `Connected` or `Failed`, forwards bytes both ways in chunks of at most
//! [`MAX_CHUNK`], and either side may `Close`; the host says `Closed` when the peer closed or
//! failed. A `Connect` for an id still open replaces that connection.
//!
//! **Flow control**: none in the protocol. The device stops reading the line while it cannot
//! take a whole chunk, and the serial link pushes back (QEMU's character device stops reading
//! its socket). So one stream that is not read stalls the line for all: a board using this
//! opens one stream at a time.
//!
//! Frames are bounded ([`MAX_FRAME`]); [`Deframer`] refuses a longer one instead of growing.
#![cfg_attr(not(test), no_std)]

use serde::{Deserialize, Serialize};

/// Most payload bytes in one [`Up::Data`] or [`Down::Data`].
pub const MAX_CHUNK: usize = 512;
/// Longest host name a [`Up::Connect`] carries (DNS's limit is 253).
pub const MAX_HOST_LEN: usize = 253;
/// Longest postcard message: `Connect` with the longest host (tag, id, 2-byte length,
/// host, 3-byte port, bool) or `Data` with a whole chunk (tag, id, 2-byte length, chunk).
pub const MAX_MESSAGE: usize = {
    let connect = 1 + 1 + 2 + MAX_HOST_LEN + 3 + 1;
    let data = 1 + 1 + 2 + MAX_CHUNK;
    if connect > data { connect } else { data }
};
/// Longest frame on the line: [`MAX_MESSAGE`] with COBS's worst-case overhead (one byte per
/// 254) and the terminating zero.
pub const MAX_FRAME: usize = MAX_MESSAGE + MAX_MESSAGE / 254 + 1 + 1;

/// Device to host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up<'a> {
    /// Open stream `stream` to `host:port`, TLS (verifying `host`) when `tls`.
    Connect {
        /// Stream id.
        stream: u8,
        /// Name or address to dial.
        host: &'a str,
        /// TCP port.
        port: u16,
        /// Negotiate TLS after TCP.
        tls: bool,
    },
    /// Bytes to send on `stream`.
    Data {
        /// Stream id.
        stream: u8,
        /// At most [`MAX_CHUNK`] bytes.
        bytes: &'a [u8],
    },
    /// Close `stream`.
    Close {
        /// Stream id.
        stream: u8,
    },
}

/// Host to device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down<'a> {
    /// `stream` is open (TLS negotiated when asked).
    Connected {
        /// Stream id.
        stream: u8,
    },
    /// `stream` could not be opened.
    Failed {
        /// Stream id.
        stream: u8,
        /// Why.
        reason: Failure,
    },
    /// Bytes received on `stream`.
    Data {
        /// Stream id.
        stream: u8,
        /// At most [`MAX_CHUNK`] bytes.
        bytes: &'a [u8],
    },
    /// The peer closed `stream`, or it failed; nothing more will come on it.
    Closed {
        /// Stream id.
        stream: u8,
    },
}

/// Why a connection could not be opened (the kernel's `NetError`, on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// Name resolution failed.
    Dns,
    /// TCP connect failed or timed out.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The bridge cannot reach any network.
    Unavailable,
}

/// What went wrong with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Longer than [`MAX_FRAME`] (or than the output buffer, when encoding).
    TooLong,
    /// Not valid COBS, or not a message of this protocol.
    Malformed,
    /// A `Data` message with more than [`MAX_CHUNK`] bytes, or a host name over
    /// [`MAX_HOST_LEN`]: refused when encoding and when decoding.
    OverLimit,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::TooLong => "frame longer than the bridge's limit",
            FrameError::Malformed => "not a bridge message",
            FrameError::OverLimit => "chunk or host name over the bridge's limit",
        })
    }
}

/// A message that fits the protocol's limits.
pub trait Message {
    /// `true` when every length is within its limit.
    fn within_limits(&self) -> bool;
}

impl Message for Up<'_> {
    fn within_limits(&self) -> bool {
        match self {
            Up::Connect { host, .. } => host.len() <= MAX_HOST_LEN,
            Up::Data { bytes, .. } => bytes.len() <= MAX_CHUNK,
            Up::Close { .. } => true,
        }
    }
}

impl Message for Down<'_> {
    fn within_limits(&self) -> bool {
        match self {
            Down::Data { bytes, .. } => bytes.len() <= MAX_CHUNK,
            Down::Connected { .. } | Down::Failed { .. } | Down::Closed { .. } => true,
        }
    }
}

/// Encode `message` as one frame (COBS, terminating zero included) into `out`; returns the
/// frame's length.
pub fn encode<M: Message + Serialize>(message: &M, out: &mut [u8]) -> Result<usize, FrameError> {
    if !message.within_limits() {
        return Err(FrameError::OverLimit);
    }
    postcard::to_slice_cobs(message, out)
        .map(|frame| frame.len())
        .map_err(|_| FrameError::TooLong)
}

/// Decode one frame's bytes (without its terminating zero), in place.
pub fn decode<'a, M: Message + Deserialize<'a>>(frame: &'a mut [u8]) -> Result<M, FrameError> {
    let len = cobs::decode_in_place(frame).map_err(|_| FrameError::Malformed)?;
    let bytes = frame.get(..len).ok_or(FrameError::Malformed)?;
    let (message, rest) =
        postcard::take_from_bytes::<M>(bytes).map_err(|_| FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed);
    }
    if !message.within_limits() {
        return Err(FrameError::OverLimit);
    }
    Ok(message)
}

/// Collects bytes from the line into frames, in a fixed buffer of [`MAX_FRAME`] bytes.
pub struct Deframer {
    buf: [u8; MAX_FRAME],
    len: usize,
    /// The frame being collected outgrew the buffer: drop bytes until its end.
    overflowed: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// An empty deframer.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_FRAME],
            len: 0,
            overflowed: false,
        }
    }

    /// Take one byte from the line. At a frame's end (a zero byte) returns the frame (without
    /// the zero) for [`decode`], or [`FrameError::TooLong`] when it outgrew [`MAX_FRAME`];
    /// empty frames (two zeros in a row, e.g. a sender resynchronising) are skipped.
    pub fn push(&mut self, byte: u8) -> Option<Result<&mut [u8], FrameError>> {
        if byte != 0 {
            match self.buf.get_mut(self.len) {
                Some(slot) if !self.overflowed => {
                    *slot = byte;
                    self.len += 1;
                }
                _ => self.overflowed = true,
            }
            return None;
        }
        let (len, overflowed) = (self.len, self.overflowed);
        self.len = 0;
        self.overflowed = false;
        if overflowed {
            return Some(Err(FrameError::TooLong));
        }
        if len == 0 {
            return None;
        }
        self.buf.get_mut(..len).map(Ok)
    }
}

pub mod device;

#[cfg(test)]
mod tests;
