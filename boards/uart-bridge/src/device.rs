//! The device's side of one stream, without the line: what a board's `Network` over this
//! bridge keeps between frames. Pure, so its rules are tested on the host; the board only
//! moves bytes between it and its UART.
//!
//! Rules: one stream at a time (see the crate docs); a new [`OneStream::begin`] abandons the
//! previous one (the caller sends its `Close`), so a late frame for an older id is dropped;
//! bytes are taken only while open and only while they fit; anything out of order (data
//! before `Connected`, `Connected` twice) ends the stream, because a confused bridge must not
//! be trusted with the session's bytes.

use crate::{Down, Failure, MAX_CHUNK};

/// Bytes held for the reader: two chunks, so the line keeps moving while the kernel reads.
pub const RX_BYTES: usize = 2 * MAX_CHUNK;

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No stream.
    Idle,
    /// `Connect` sent, no answer yet.
    Connecting,
    /// Connected: bytes flow.
    Open,
    /// The bridge refused it.
    Failed(Failure),
    /// The peer closed it, or the bridge broke the rules: reads see end of stream.
    Closed,
}

/// The current stream and the bytes received on it.
pub struct OneStream {
    id: u8,
    state: State,
    rx: [u8; RX_BYTES],
    rx_len: usize,
}

impl Default for OneStream {
    fn default() -> Self {
        Self::new()
    }
}

impl OneStream {
    /// No stream yet.
    pub const fn new() -> Self {
        Self {
            id: 0,
            state: State::Idle,
            rx: [0; RX_BYTES],
            rx_len: 0,
        }
    }

    /// The current stream's id.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Start a new stream (the caller sends `Connect` with the returned id); the previous
    /// one, if any, is abandoned and its unread bytes dropped.
    pub fn begin(&mut self) -> u8 {
        self.id = self.id.wrapping_add(1);
        self.state = State::Connecting;
        self.rx_len = 0;
        self.id
    }

    /// Forget the stream `id` (closed by this side); `true` if it was the current one.
    pub fn end(&mut self, id: u8) -> bool {
        if self.id != id || self.state == State::Idle {
            return false;
        }
        self.state = State::Idle;
        self.rx_len = 0;
        true
    }

    /// `id` is the current stream and not ended by this side.
    pub fn is_current(&self, id: u8) -> bool {
        self.id == id && self.state != State::Idle
    }

    /// Room for a whole chunk more: the board reads the line only then.
    pub fn can_take_chunk(&self) -> bool {
        RX_BYTES - self.rx_len >= MAX_CHUNK
    }

    /// Apply one message from the host.
    pub fn apply(&mut self, message: Down<'_>) {
        let id = match message {
            Down::Connected { stream }
            | Down::Failed { stream, .. }
            | Down::Data { stream, .. }
            | Down::Closed { stream } => stream,
        };
        if id != self.id || self.state == State::Idle {
            return; // an abandoned stream's late frame
        }
        self.state = match (message, self.state) {
            (Down::Connected { .. }, State::Connecting) => State::Open,
            (Down::Failed { reason, .. }, State::Connecting) => State::Failed(reason),
            (Down::Data { bytes, .. }, State::Open) => {
                match self.rx.get_mut(self.rx_len..self.rx_len + bytes.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(bytes);
                        self.rx_len += bytes.len();
                        State::Open
                    }
                    // More than the reader has room for: the board read past its own limit.
                    None => State::Closed,
                }
            }
            (Down::Closed { .. }, State::Open | State::Connecting) => State::Closed,
            (_, State::Failed(reason)) => State::Failed(reason),
            _ => State::Closed,
        };
    }

    /// Move received bytes into `buf`; returns how many (0 when none are held).
    pub fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = self.rx_len.min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.rx.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.rx.copy_within(n..self.rx_len, 0);
        self.rx_len -= n;
        n
    }

    /// Bytes held for the reader.
    pub fn held(&self) -> usize {
        self.rx_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (OneStream, u8) {
        let mut s = OneStream::new();
        let id = s.begin();
        s.apply(Down::Connected { stream: id });
        assert_eq!(s.state(), State::Open);
        (s, id)
    }

    #[test]
    fn bytes_flow_in_order_and_across_reads() {
        let (mut s, id) = open();
        s.apply(Down::Data {
            stream: id,
            bytes: b"hello ",
        });
        s.apply(Down::Data {
            stream: id,
            bytes: b"world",
        });
        let mut buf = [0u8; 4];
        assert_eq!(s.take(&mut buf), 4);
        assert_eq!(&buf, b"hell");
        let mut rest = [0u8; 32];
        let n = s.take(&mut rest);
        assert_eq!(&rest[..n], b"o world");
        assert_eq!(s.take(&mut rest), 0);
    }

    #[test]
    fn a_late_frame_of_an_abandoned_stream_is_dropped() {
        let (mut s, old) = open();
        let new = s.begin();
        assert_ne!(old, new);
        s.apply(Down::Data {
            stream: old,
            bytes: b"stale",
        });
        s.apply(Down::Closed { stream: old });
        assert_eq!((s.state(), s.held()), (State::Connecting, 0));
        s.apply(Down::Connected { stream: new });
        assert_eq!(s.state(), State::Open);
    }

    #[test]
    fn out_of_order_messages_end_the_stream() {
        let mut s = OneStream::new();
        let id = s.begin();
        s.apply(Down::Data {
            stream: id,
            bytes: b"early",
        });
        assert_eq!((s.state(), s.held()), (State::Closed, 0));
        let (mut s, id) = open();
        s.apply(Down::Connected { stream: id });
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn a_refusal_is_kept_and_data_past_the_room_closes() {
        let mut s = OneStream::new();
        let id = s.begin();
        s.apply(Down::Failed {
            stream: id,
            reason: Failure::Tls,
        });
        s.apply(Down::Closed { stream: id });
        assert_eq!(s.state(), State::Failed(Failure::Tls));
        let (mut s, id) = open();
        let chunk = [1u8; MAX_CHUNK];
        s.apply(Down::Data {
            stream: id,
            bytes: &chunk,
        });
        assert!(s.can_take_chunk());
        s.apply(Down::Data {
            stream: id,
            bytes: &chunk,
        });
        assert!(!s.can_take_chunk());
        s.apply(Down::Data {
            stream: id,
            bytes: &[2],
        });
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn ending_forgets_only_the_current_stream() {
        let (mut s, id) = open();
        assert!(!s.end(id.wrapping_add(1)));
        assert!(s.is_current(id));
        assert!(s.end(id));
        assert!(!s.is_current(id));
        assert!(!s.end(id));
        assert_eq!(s.state(), State::Idle);
    }
}
