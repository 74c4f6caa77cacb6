//! Per-actor random streams: ChaCha8 with half a block of buffer.
//!
//! Each actor draws from stream number `stream_key(name)` of ChaCha8 keyed by the run's seed,
//! word for word the output of `rand_chacha::ChaCha8Rng::seed_from_u64(seed)` after
//! `set_stream(key)` (the tests check it against rand_chacha). rand_chacha buffers four blocks
//! (256 bytes) per generator, which for a million actors is a third of a gigabyte and a cache miss
//! on every draw; here each actor holds half a block (32 bytes) and its position, beside its own
//! state. A block is made once for each of its halves: actors draw seldom, and their slots are
//! an estate's memory.

#![forbid(unsafe_code)]

use std::convert::Infallible;

use rand::{SeedableRng, TryRng};
use rand_chacha::ChaCha8Rng;

const WORDS: usize = 16;
/// The words an actor keeps: half a block.
const KEPT: usize = WORDS / 2;
/// Double rounds: ChaCha8.
const DOUBLE_ROUNDS: usize = 4;
const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The ChaCha key of a run, derived from its seed as rand_chacha derives it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key([u32; 8]);

impl Key {
    pub fn from_seed(seed: u64) -> Self {
        let bytes = ChaCha8Rng::seed_from_u64(seed).get_seed();
        Key(std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"))))
    }
}

/// Where an actor is in its stream, and the block it is reading.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    /// The next word to hand out, from the start of the stream. `words` holds its half block,
    /// but at a half's first word, which has yet to be made: the stream is only ever read
    /// forward.
    pos: u64,
    words: [u32; KEPT],
}

impl Block {
    pub fn new() -> Self {
        Block { pos: 0, words: [0; KEPT] }
    }
}

#[inline(always)]
fn quarter(x: &mut [u32; WORDS], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

/// The ChaCha block function (RFC 8439, section 2.3) with a 64-bit block counter and a 64-bit
/// stream number, as rand_chacha lays them out.
fn chacha8_block(key: &Key, stream: u64, block: u64, out: &mut [u32; WORDS]) {
    #[allow(clippy::cast_possible_truncation)] // splitting u64s into their u32 halves
    let state: [u32; WORDS] = [
        CONSTANTS[0],
        CONSTANTS[1],
        CONSTANTS[2],
        CONSTANTS[3],
        key.0[0],
        key.0[1],
        key.0[2],
        key.0[3],
        key.0[4],
        key.0[5],
        key.0[6],
        key.0[7],
        block as u32,
        (block >> 32) as u32,
        stream as u32,
        (stream >> 32) as u32,
    ];
    let mut x = state;
    for _ in 0..DOUBLE_ROUNDS {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    for (o, (x, s)) in out.iter_mut().zip(x.iter().zip(state.iter())) {
        *o = x.wrapping_add(*s);
    }
}

/// An actor's view of its stream for the length of one message.
pub struct ActorRng<'a> {
    pub(crate) key: &'a Key,
    pub(crate) stream: u64,
    pub(crate) block: &'a mut Block,
}

impl ActorRng<'_> {
    #[inline]
    fn word(&mut self) -> u32 {
        #[allow(clippy::cast_possible_truncation)] // below 8
        let i = (self.block.pos % KEPT as u64) as usize;
        if i == 0 {
            self.next_half();
        }
        let b = &mut *self.block;
        b.pos += 1;
        b.words[i]
    }

    /// Makes the half block that `pos` begins.
    #[cold]
    #[inline(never)]
    fn next_half(&mut self) {
        let b = &mut *self.block;
        let mut whole = [0; WORDS];
        chacha8_block(self.key, self.stream, b.pos / WORDS as u64, &mut whole);
        let half = if b.pos.is_multiple_of(WORDS as u64) { &whole[..KEPT] } else { &whole[KEPT..] };
        b.words.copy_from_slice(half);
    }
}

impl TryRng for ActorRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.word())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let lo = self.word();
        let hi = self.word();
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        // As rand_core's block generators: little-endian words, a partly used word is spent.
        for chunk in dst.chunks_mut(4) {
            let w = self.word().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, RngExt};

    use super::*;

    proptest! {
        /// Word for word rand_chacha's ChaCha8Rng, whatever mix of draws an actor makes.
        #[test]
        fn same_stream_as_rand_chacha(seed: u64, stream: u64, draws in prop::collection::vec(0u8..5, 0..200)) {
            let mut reference = ChaCha8Rng::seed_from_u64(seed);
            reference.set_stream(stream);
            let key = Key::from_seed(seed);
            let mut block = Block::new();
            for d in draws {
                // A new view per draw, as the engine makes one per message.
                let mut ours = ActorRng { key: &key, stream, block: &mut block };
                match d {
                    0 => prop_assert_eq!(ours.next_u32(), reference.next_u32()),
                    1 => prop_assert_eq!(ours.next_u64(), reference.next_u64()),
                    2 => prop_assert_eq!(ours.random::<f64>().to_bits(), reference.random::<f64>().to_bits()),
                    3 => prop_assert_eq!(ours.random_range(0..1_000u64), reference.random_range(0..1_000u64)),
                    _ => {
                        let (mut a, mut b) = ([0u8; 7], [0u8; 7]);
                        ours.fill_bytes(&mut a);
                        reference.fill_bytes(&mut b);
                        prop_assert_eq!(a, b);
                    }
                }
            }
        }
    }
}
