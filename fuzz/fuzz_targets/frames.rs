//! The agent's frame decoder on arbitrary bytes, split into reads of arbitrary size: it
//! never panics, frames are the stream's lines within the size limit, and each decodes to
//! a request or an error.

#![no_main]

use lanyard::broker::protocol::{self, Framer, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte is the size of each read, as the socket might split the stream.
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let mut expected = stream.split(|&b| b == b'\n');
    let mut framer = Framer::default();
    for mut read in stream.chunks(usize::from(step).max(1)) {
        while !read.is_empty() {
            let (taken, found) = framer.push(read);
            assert!(taken > 0 && taken <= read.len());
            read = &read[taken..];
            match found {
                Some(Ok(frame)) => {
                    assert!(frame.len() < MAX_FRAME);
                    assert_eq!(Some(frame.as_slice()), expected.next());
                    let _ = protocol::decode(&frame);
                }
                // Only a line that is too long ends the stream.
                Some(Err(protocol::TooLarge)) => {
                    assert!(expected.next().is_some_and(|line| line.len() >= MAX_FRAME));
                    return;
                }
                None => {}
            }
        }
    }
});
