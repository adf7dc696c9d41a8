//! Device ids as oneM2M resource names, and resource names as URI path segments.
//!
//! A device id becomes the name (`rn`) of the device's container and a segment of every address
//! (`to`) the gateway sends: `cse-in/<ae>/<device>`. Device ids come from the config and, at run
//! time, from the air (BLE names, DevEUIs, LNS payloads, replay lines), so they cannot be
//! trusted to be names: `a/b` would address a container `b` under `a`, `..` the CSEBase, `a?b`
//! and `a#b` would end the path in an HTTP URL and file the record under `a`.
//!
//! The rule, in one place:
//! - a **valid device id** is 1 to [`MAX_NAME_LEN`] characters out of `A-Z a-z 0-9 - _ .`
//!   (RFC 3986 unreserved characters, which TS-0001/TS-0004 ask of resource names, minus `~`),
//!   and not `.` or `..`. It is the container name as is.
//! - any **other id** is mapped to `<kept>~<hash>`: its characters with every one outside that set
//!   replaced by `_`, cut to 51 characters, then `~` and 12 hex digits of the SHA-256 of the
//!   original id. The result is deterministic (the same id always lands in the same container),
//!   at most 64 characters, and never equal to a valid id (those cannot contain `~`), so a mapped
//!   id cannot take over another device's container. The container carries the original id in a
//!   `device/<id>` label and every record carries it in its content (`"device"`).
//!
//! Every segment of an address is also percent-encoded ([`encode_segment`]), so a name from
//! elsewhere (configured CSE or AE names) can never change the address structure either.
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::borrow::Cow;

/// Longest device id used as a container name as is (characters; valid ids are ASCII).
pub const MAX_NAME_LEN: usize = 64;

/// Separates the kept characters from the hash in a mapped name; valid ids cannot contain it.
pub const MAPPED_MARKER: char = '~';

/// Hex digits of the SHA-256 of the original id in a mapped name (48 bits).
const HASH_HEX_DIGITS: usize = 12;

/// Characters of the original id kept in a mapped name, so it stays within [`MAX_NAME_LEN`].
const KEPT_LEN: usize = MAX_NAME_LEN - 1 - HASH_HEX_DIGITS;

/// Label prefix of a mapped container: `device/<original id>`.
pub const DEVICE_LABEL_PREFIX: &str = "device/";

/// Longest original id carried in the label (characters); the record content carries it whole.
const LABEL_ID_MAX_CHARS: usize = 256;

/// Why a device id is not usable as a container name as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("it is empty")]
    Empty,
    #[error("`.` and `..` address the parent resource in a URL")]
    DotSegment,
    #[error("it is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("it contains {0:?}; only letters, digits, `-`, `_` and `.` are allowed")]
    Character(char),
}

/// True for the characters a device id may use as a container name: `A-Z a-z 0-9 - _ .`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks that a device id is usable as a container name as is (see the module docs).
pub fn check_device_id(id: &str) -> Result<(), DeviceIdError> {
    if id.is_empty() {
        return Err(DeviceIdError::Empty);
    }
    if let Some(c) = id.chars().find(|c| !is_name_char(*c)) {
        return Err(DeviceIdError::Character(c));
    }
    // Only ASCII from here: bytes are characters.
    if id.len() > MAX_NAME_LEN {
        return Err(DeviceIdError::TooLong);
    }
    if id == "." || id == ".." {
        return Err(DeviceIdError::DotSegment);
    }
    Ok(())
}

/// The container name of a device: the id itself when valid, else its mapped name
/// (`<kept>~<hash>`, see the module docs).
pub fn container_name(device: &str) -> Cow<'_, str> {
    if check_device_id(device).is_ok() {
        return Cow::Borrowed(device);
    }
    let kept: String = device
        .chars()
        .take(KEPT_LEN)
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, device.as_bytes());
    let hash = hex::encode(&digest.as_ref()[..HASH_HEX_DIGITS / 2]);
    Cow::Owned(format!("{kept}{MAPPED_MARKER}{hash}"))
}

/// The label that carries a device's original id on its container: `device/<id>`, the id cut
/// to 256 characters (the record content always has it whole). A label is an `xs:token`, which
/// CSEs enforce (ACME answers 4000 otherwise): no tab, CR or LF, no two spaces in a row, no
/// trailing space. So control characters, and a space that follows a space or ends the id, are
/// written as `\u{..}` (`a\tb` → `device/a\u{9}b`).
pub fn device_label(device: &str) -> String {
    let chars: Vec<char> = device.chars().take(LABEL_ID_MAX_CHARS).collect();
    let mut label = String::from(DEVICE_LABEL_PREFIX);
    let mut prev = '/';
    for (i, &c) in chars.iter().enumerate() {
        let last = i + 1 == chars.len();
        if c.is_control() || (c == ' ' && (prev == ' ' || last)) {
            label.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            label.push(c);
        }
        prev = c;
    }
    label
}

/// A device id fit for a log line: at most 64 characters, control and non-ASCII characters
/// escaped, quoted.
pub fn loggable_id(device: &str) -> String {
    let mut s = String::from("\"");
    for c in device.chars().take(MAX_NAME_LEN) {
        s.extend(c.escape_default());
    }
    if device.chars().nth(MAX_NAME_LEN).is_some() {
        s.push('…');
    }
    s.push('"');
    s
}

/// Everything except RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded in a
/// segment: `/`, `?`, `#`, `%`, spaces, controls and every byte of a non-ASCII character.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One resource name as a URI path segment (percent-encoded UTF-8). Identity for valid names.
pub fn encode_segment(segment: &str) -> Cow<'_, str> {
    utf8_percent_encode(segment, SEGMENT).into()
}

/// A CSE-relative structured address (`cse-in/<ae>/<container>`) of resource names: each
/// segment percent-encoded, joined by `/`.
pub fn address(segments: &[&str]) -> String {
    let mut out = String::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&encode_segment(segment));
    }
    out
}

/// What must not appear raw in a URL path: controls, space, non-ASCII (always encoded) and the
/// characters that end the path (`?`, `#`) or are not allowed in it. `/` and `%` stay: an
/// address separates its (already encoded) segments with `/`.
const URL_PATH: &AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// The last guard of the HTTP binding: an address (built with [`address`], so normally
/// unchanged) made safe to append to a URL, so that nothing in it can end the path.
pub fn url_path(address: &str) -> Cow<'_, str> {
    utf8_percent_encode(address, URL_PATH).into()
}

/// Resource names and IDs we accept: unreserved URI characters only, so they can be path
/// segments without escaping.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

#[cfg(test)]
#[path = "name_tests.rs"]
mod tests;
