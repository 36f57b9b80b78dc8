//! The payload of a host-board image: a small `#!/bin/sh` launcher that `exec`s a board
//! binary.
//!
//! Why: the Linux simulator (boards/host) runs its firmware from the active slot like a device,
//! but a host executable (hundreds of MB in debug) never fits a slot sized for the nRF9160
//! (484 KiB). So on the host an image's payload is this script, and an update changes which
//! binary runs (a limitation of the simulator, not of the device; README "Host board").
//! Used by `aliot-imgtool host-launcher` and by the host board's factory image.
//!
//! No allocation (this crate is `no_std`): the script is handed out in pieces to a sink.

/// Bytes of each filler line (63 `#` and a newline) after the `exit` line of a padded script.
const FILLER_LINE: usize = 64;

/// Writes the launcher script to `out`, in pieces:
///
/// ```text
/// #!/bin/sh
/// exec 'EXEC' "$@" 'EXTRA'...
/// ```
///
/// Every path and argument is single-quoted (`'` becomes `'\''`), so any bytes but NUL pass
/// through the shell unchanged. With `pad_to` larger than the script, an `exit 127` line and
/// comment filler lines follow, up to exactly `pad_to` bytes (to make an image of a given
/// size); the shell never reads them, as `exec` replaces it. Returns the bytes written.
pub fn write_host_launcher(
    exec: &[u8],
    extra_args: &[&[u8]],
    pad_to: usize,
    out: &mut dyn FnMut(&[u8]),
) -> usize {
    let len = core::cell::Cell::new(0usize);
    let mut put = |bytes: &[u8]| {
        len.set(len.get() + bytes.len());
        out(bytes);
    };
    put(b"#!/bin/sh\nexec ");
    quote(exec, &mut put);
    put(b" \"$@\"");
    for arg in extra_args {
        put(b" ");
        quote(arg, &mut put);
    }
    put(b"\n");
    if pad_to > len.get() {
        put(b"exit 127\n");
    }
    let mut line = [b'#'; FILLER_LINE];
    if let Some(last) = line.last_mut() {
        *last = b'\n';
    }
    while pad_to > len.get() {
        let take = (pad_to - len.get()).min(FILLER_LINE);
        put(line.get(..take).unwrap_or(&[]));
    }
    len.get()
}

/// `bytes` in single quotes for `sh`: a `'` inside ends the quote, adds an escaped quote and
/// opens a new one.
fn quote(bytes: &[u8], put: &mut impl FnMut(&[u8])) {
    put(b"'");
    for part in bytes.split_inclusive(|&b| b == b'\'') {
        match part.strip_suffix(b"'") {
            Some(head) => {
                put(head);
                put(b"'\\''");
            }
            None => put(part),
        }
    }
    put(b"'");
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn script(exec: &[u8], extra: &[&[u8]], pad_to: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let n = write_host_launcher(exec, extra, pad_to, &mut |b| out.extend_from_slice(b));
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn plain_script() {
        assert_eq!(
            script(b"/opt/aliot host", &[], 0),
            b"#!/bin/sh\nexec '/opt/aliot host' \"$@\"\n"
        );
        assert_eq!(
            script(b"/b", &[b"--x", b"a b"], 0),
            b"#!/bin/sh\nexec '/b' \"$@\" '--x' 'a b'\n"
        );
    }

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(
            script(b"/it's/$HOME/`x`", &[b"'", b""], 0),
            b"#!/bin/sh\nexec '/it'\\''s/$HOME/`x`' \"$@\" ''\\''' ''\n"
        );
    }

    #[test]
    fn padding_reaches_the_exact_size_after_an_exit_line() {
        let plain = script(b"/b", &[], 0);
        let padded = script(b"/b", &[], 1000);
        assert_eq!(padded.len(), 1000);
        assert!(padded.starts_with(&plain));
        assert!(padded[plain.len()..].starts_with(b"exit 127\n#"));
        assert!(
            padded[plain.len() + 9..]
                .iter()
                .all(|&b| b == b'#' || b == b'\n')
        );
        // Too small a pad changes nothing.
        assert_eq!(script(b"/b", &[], 5), plain);
    }
}
