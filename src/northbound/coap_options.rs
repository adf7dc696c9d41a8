//! The TS-0008 mapping of a request primitive onto a CoAP message, and of a CoAP response back
//! onto a response primitive. Pure functions over `coap-lite` packets (no I/O), so every rule
//! is unit-tested without a network.
//!
//! Request: CREATE/NOTIFY → POST (CREATE carries the `ty` option, which is how the CSE tells
//! them apart), RETRIEVE → GET, UPDATE → PUT, DELETE → DELETE; `to` → Uri-Path segments the
//! way the HTTP binding builds its path (`~` for SP-relative, `_` for absolute addresses), each
//! segment percent-decoded as RFC 7252 §6.4 requires; `rcn` → Uri-Query `rcn=N`; `fr`, `rqi`,
//! `rvi` → the oneM2M string options 279, 283, 271; `ty` → option 267 (uint); a body goes as
//! JSON with Content-Format 50, and Accept 50 asks for JSON back.
//!
//! Response: the outcome is the oneM2M-RSC option (307, uint), never the CoAP code alone,
//! exactly as the HTTP binding reads `X-M2M-RSC`. Without it, 4.01/4.03 are an auth refusal
//! and anything else an unusable answer (retried).
use super::binding::{response_for, BindingError};
use super::onem2m::primitive::{Operation, Request, Response};
use super::serialization::Serialization;
use crate::telemetry::untrusted::snippet;
use coap_lite::{CoapOption, MessageClass, Packet, RequestType};

/// oneM2M CoAP option numbers (TS-0008 Table 6.2.2.4-1), as ACME registers them.
pub mod number {
    pub const OT: u16 = 259;
    pub const RTURI: u16 = 263;
    pub const TY: u16 = 267;
    pub const RVI: u16 = 271;
    pub const ASRI: u16 = 275;
    pub const FR: u16 = 279;
    pub const RQI: u16 = 283;
    pub const RQET: u16 = 291;
    pub const RSET: u16 = 295;
    pub const OET: u16 = 299;
    pub const EC: u16 = 303;
    pub const RSC: u16 = 307;
    pub const GID: u16 = 311;
    pub const VSI: u16 = 331;
}

/// Content-Format `application/json` (RFC 7252 §12.3).
pub const CONTENT_FORMAT_JSON: u16 = 50;
/// Content-Format `application/cbor` (RFC 8949): `serialization = "cbor"`; ACME reads both 50
/// and 60.
pub const CONTENT_FORMAT_CBOR: u16 = 60;
/// The default CoAP port (RFC 7252 §6.1).
pub const DEFAULT_PORT: u16 = 5683;

/// `HOST[:PORT]` of a `coap://` URL (the part after `://`): host and port. Nothing may follow
/// the authority: the resource path comes from each request's `to`.
pub fn parse_authority(rest: &str) -> Result<(String, u16), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err("no host".into());
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err("only HOST[:PORT] may follow coap://".into());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("port \"{p}\" is not 1-65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// The Uri-Path segments of an address, as the HTTP binding lays out its path: `cse-in/a/b`
/// → `[cse-in, a, b]`, `/id-in/x` → `[~, id-in, x]`, `//sp/id-in/x` → `[_, sp, id-in, x]`.
/// Segments are percent-decoded: a Uri-Path option holds the raw segment.
pub fn uri_path(to: &str) -> Vec<String> {
    let (prefix, rest) = if let Some(abs) = to.strip_prefix("//") {
        (Some("_"), abs)
    } else if let Some(sp) = to.strip_prefix('/') {
        (Some("~"), sp)
    } else {
        (None, to)
    };
    prefix
        .map(String::from)
        .into_iter()
        .chain(rest.split('/').filter(|s| !s.is_empty()).map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        }))
        .collect()
}

/// A uint option value: big-endian, without leading zero bytes (RFC 7252 §3.2).
pub fn encode_uint(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

/// Reads a uint option value (at most 4 bytes).
pub fn decode_uint(raw: &[u8]) -> Option<u32> {
    if raw.len() > 4 {
        return None;
    }
    Some(raw.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// The request as a CoAP message without message id, type and token (the exchange sets them),
/// and its body (JSON), which the exchange sends whole or block-wise.
pub fn request_message(req: &Request) -> Result<(Packet, Vec<u8>), BindingError> {
    request_message_as(req, Serialization::Json)
}

/// The Content-Format of a serialization: 50 (JSON) or 60 (CBOR).
pub fn content_format(ser: Serialization) -> u16 {
    match ser {
        Serialization::Json => CONTENT_FORMAT_JSON,
        Serialization::Cbor => CONTENT_FORMAT_CBOR,
    }
}

/// [`request_message`] with the body in `ser` (Content-Format and Accept to match).
pub fn request_message_as(
    req: &Request,
    ser: Serialization,
) -> Result<(Packet, Vec<u8>), BindingError> {
    let format = u32::from(content_format(ser));
    let mut p = Packet::new();
    p.header.code = MessageClass::Request(match req.op {
        Operation::Create | Operation::Notify => RequestType::Post,
        Operation::Retrieve => RequestType::Get,
        Operation::Update => RequestType::Put,
        Operation::Delete => RequestType::Delete,
    });
    for segment in uri_path(&req.to) {
        p.add_option(CoapOption::UriPath, segment.into_bytes());
    }
    if let Some(rcn) = req.rcn {
        p.add_option(CoapOption::UriQuery, format!("rcn={rcn}").into_bytes());
    }
    // An AE create may go without originator; every other request needs one.
    if !req.fr.is_empty() {
        p.add_option(CoapOption::Unknown(number::FR), req.fr.as_bytes().to_vec());
    }
    p.add_option(
        CoapOption::Unknown(number::RQI),
        req.rqi.as_bytes().to_vec(),
    );
    p.add_option(
        CoapOption::Unknown(number::RVI),
        req.rvi.as_bytes().to_vec(),
    );
    if let (Operation::Create, Some(ty)) = (req.op, req.ty) {
        p.add_option(
            CoapOption::Unknown(number::TY),
            encode_uint(u32::from(u16::from(ty))),
        );
    }
    p.add_option(CoapOption::Accept, encode_uint(format));
    let body = match &req.pc {
        Some(pc) => {
            p.add_option(CoapOption::ContentFormat, encode_uint(format));
            ser.encode(pc)?
        }
        None => Vec::new(),
    };
    Ok((p, body))
}

/// A CoAP response code as the three-digit number TS-0008 and HTTP use (4.04 → 404).
pub fn code_number(code: MessageClass) -> u16 {
    let raw = u8::from(code);
    u16::from(raw >> 5) * 100 + u16::from(raw & 0x1f)
}

/// The CoAP code as text (`4.04`), for messages.
pub fn code_text(code: MessageClass) -> String {
    let raw = u8::from(code);
    format!("{}.{:02}", raw >> 5, raw & 0x1f)
}

/// Turns the final CoAP response (its options from `head`, the whole body reassembled from
/// its blocks) into a response primitive; see the module doc for the rules.
pub fn parse_response(
    head: &Packet,
    body: &[u8],
    sent_rqi: &str,
) -> Result<Response, BindingError> {
    let status = code_number(head.header.code);
    let Some(raw) = head.get_first_option(CoapOption::Unknown(number::RSC)) else {
        if status == 401 || status == 403 {
            return Err(BindingError::AuthRefused { status });
        }
        return Err(BindingError::MissingRsc {
            status,
            detail: format!(
                "CoAP {} without the oneM2M-RSC option; body: {}",
                code_text(head.header.code),
                snippet(body)
            ),
        });
    };
    let rsc = decode_uint(raw)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| BindingError::MissingRsc {
            status,
            detail: format!("oneM2M-RSC option {raw:?} is not a number"),
        })?;
    let content_format = head
        .get_first_option(CoapOption::ContentFormat)
        .and_then(|v| decode_uint(v));
    // 60 application/cbor, 10010 application/vnd.onem2m-res+cbor; anything else is read as
    // JSON (50, 10015, or none).
    let ser = match content_format {
        Some(60 | 10010) => Serialization::Cbor,
        _ => Serialization::Json,
    };
    let body_value = ser.decode(rsc, body)?;
    let rqi = head
        .get_first_option(CoapOption::Unknown(number::RQI))
        .and_then(|v| std::str::from_utf8(v).ok());
    response_for(rsc, rqi, sent_rqi, body_value)
}

#[cfg(test)]
#[path = "coap_options_tests.rs"]
mod tests;
