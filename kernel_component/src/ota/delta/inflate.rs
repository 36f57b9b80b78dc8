//! A streaming heatshrink decoder (the LZSS of atomicobject's heatshrink, as its encoder and
//! the `heatshrink-lib` crate write it): input may arrive in pieces of any size, and its state
//! is plain data.
//!
//! The bit stream, most significant bit first: `1` then 8 bits is a literal byte; `0` then
//! `W` bits `index` and `L` bits `count` repeats `count + 1` bytes from `index + 1` bytes
//! back in the output (the window, all zeros before the first byte). Every combination of
//! bits decodes to something within the window, so there is nothing to refuse here; the
//! patcher checks what the bytes mean. Trailing bits that do not complete a token (the
//! encoder's padding) produce nothing.

use super::header::MAX_WINDOW_BITS;

/// Bytes of the window buffer: the largest window the device decodes.
const WINDOW: usize = 1 << MAX_WINDOW_BITS;

/// Decoded bytes are handed on in pieces of at most this many.
const OUT_CHUNK: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// The next bit says literal or back-reference.
    Tag,
    /// 8 bits of a literal.
    Literal,
    /// `W` bits of a back-reference's index.
    Index,
    /// `L` bits of its count.
    Count { index: u16 },
    /// Copying `left` more bytes from `offset` back.
    Copy { offset: u16, left: u16 },
}

/// The decoder's whole state.
#[derive(Clone)]
pub struct Inflate {
    window: [u8; WINDOW],
    /// Bytes written so far (the window position is this modulo the window's size).
    head: usize,
    window_bits: u8,
    lookahead_bits: u8,
    /// Bits not yet used, right-aligned, and how many.
    bits: u32,
    nbits: u8,
    token: Token,
    /// Input bits read since the last token was complete (its padding at the very end).
    since_token: u32,
}

impl Inflate {
    /// A decoder for window `window_bits` (4..=10) and lookahead `lookahead_bits` (< window).
    /// The header check guarantees the ranges; other values are clamped into them.
    pub fn new(window_bits: u8, lookahead_bits: u8) -> Self {
        let w = window_bits.clamp(4, MAX_WINDOW_BITS);
        Self {
            window: [0; WINDOW],
            head: 0,
            window_bits: w,
            lookahead_bits: lookahead_bits.clamp(3, w - 1),
            bits: 0,
            nbits: 0,
            token: Token::Tag,
            since_token: 0,
        }
    }

    /// Input bits read since the last complete token: at the end of a stream, the encoder's
    /// padding (fewer than 8).
    pub fn bits_since_token(&self) -> u32 {
        self.since_token
    }

    /// Decodes `input`, handing the output to `out` in pieces; stops at `out`'s first error.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut pending = [0u8; OUT_CHUNK];
        let mut n = 0;
        let mut input = input.iter();
        loop {
            // Copies need no input.
            if let Token::Copy { offset, left } = self.token {
                let mask = (1usize << self.window_bits) - 1;
                let from = self.head.wrapping_sub(usize::from(offset)) & mask;
                let byte = self.window.get(from).copied().unwrap_or(0);
                self.push(byte, &mut pending, &mut n, out)?;
                self.token = match left {
                    0 | 1 => Token::Tag,
                    _ => Token::Copy {
                        offset,
                        left: left - 1,
                    },
                };
                continue;
            }
            let need = match self.token {
                Token::Tag => 1,
                Token::Literal => 8,
                Token::Index => self.window_bits,
                Token::Count { .. } => self.lookahead_bits,
                Token::Copy { .. } => 0,
            };
            while self.nbits < need {
                let Some(byte) = input.next() else {
                    if let Some(done) = pending.get(..n)
                        && !done.is_empty()
                    {
                        out(done)?;
                    }
                    return Ok(());
                };
                self.bits = (self.bits << 8) | u32::from(*byte);
                self.nbits += 8;
                self.since_token = self.since_token.saturating_add(8);
            }
            let value = self.take(need);
            self.token = match self.token {
                Token::Tag if value == 1 => Token::Literal,
                Token::Tag => Token::Index,
                Token::Literal => {
                    self.since_token = u32::from(self.nbits);
                    self.push(value as u8, &mut pending, &mut n, out)?;
                    Token::Tag
                }
                Token::Index => Token::Count {
                    index: value as u16,
                },
                Token::Count { index } => {
                    self.since_token = u32::from(self.nbits);
                    Token::Copy {
                        offset: index + 1,
                        left: value as u16 + 1,
                    }
                }
                Token::Copy { .. } => Token::Tag,
            };
        }
    }

    /// The top `need` (≤ 16) of the buffered bits.
    fn take(&mut self, need: u8) -> u32 {
        self.nbits -= need;
        let value = (self.bits >> self.nbits) & ((1u32 << need) - 1);
        self.bits &= (1u32 << self.nbits) - 1;
        value
    }

    /// Appends `byte` to the window and to the pending output.
    fn push<E>(
        &mut self,
        byte: u8,
        pending: &mut [u8; OUT_CHUNK],
        n: &mut usize,
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mask = (1usize << self.window_bits) - 1;
        if let Some(slot) = self.window.get_mut(self.head & mask) {
            *slot = byte;
        }
        self.head = self.head.wrapping_add(1);
        if let Some(slot) = pending.get_mut(*n) {
            *slot = byte;
            *n += 1;
        }
        if *n == OUT_CHUNK {
            *n = 0;
            out(pending)?;
        }
        Ok(())
    }
}
