//! `{n}` in the payload setting becomes the publish's sequence number, so the cloud side can
//! check that no message was lost (the seed's constant payload cannot show a gap).

use core::fmt::Write;

/// Room for a rendered payload; longer templates are sent unrendered.
pub type Buffer = heapless::String<512>;

const PLACEHOLDER: &str = "{n}";

/// The payload to send for publish number `n`: `template` with every `{n}` replaced, or
/// `template` itself when it has none, is not UTF-8, or does not fit the buffer.
pub fn render<'a>(template: &'a [u8], n: u32, out: &'a mut Buffer) -> &'a [u8] {
    let Ok(text) = core::str::from_utf8(template) else {
        return template;
    };
    if !text.contains(PLACEHOLDER) {
        return template;
    }
    let mut parts = text.split(PLACEHOLDER);
    let first = parts.next().unwrap_or("");
    if out.push_str(first).is_err() {
        return template;
    }
    for part in parts {
        if write!(out, "{n}").is_err() || out.push_str(part).is_err() {
            log::warn!("publish_test: payload template too long to number; sent as is");
            return template;
        }
    }
    out.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_every_placeholder() {
        let mut b = Buffer::new();
        assert_eq!(render(b"msg-{n}/{n}", 42, &mut b), b"msg-42/42");
    }

    #[test]
    fn leaves_plain_payloads_alone() {
        let mut b = Buffer::new();
        assert_eq!(render(b"LUATOS_CESHI", 7, &mut b), b"LUATOS_CESHI");
        let mut b = Buffer::new();
        assert_eq!(
            render(&[0xff, b'{', b'n', b'}'], 7, &mut b),
            &[0xff, b'{', b'n', b'}']
        );
    }

    #[test]
    fn too_long_templates_go_out_unrendered() {
        let long = [b'x'; 600];
        let mut template = long.to_vec();
        template.extend_from_slice(b"{n}");
        let mut b = Buffer::new();
        assert_eq!(render(&template, 1, &mut b), &template[..]);
    }
}
