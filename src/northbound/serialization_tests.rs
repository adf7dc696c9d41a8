use super::*;
use serde_json::json;

fn round_trip(v: &serde_json::Value) -> serde_json::Value {
    let bytes = Serialization::Cbor.encode(v).unwrap();
    Serialization::Cbor.decode(2000, &bytes).unwrap().unwrap()
}

#[test]
fn cbor_keeps_every_value_exactly() {
    let v = json!({
        "f": 0.1, "third": 1.0_f64 / 3.0, "big": 1.7976931348623157e308, "tiny": 5e-324,
        "neg": -273.15, "half": 0.5, "whole_float": 21.0,
        "i": -9_223_372_036_854_775_808_i64, "u": u64::MAX, "zero": 0,
        "t": true, "b": false, "s": "Straße 17 \u{1F600}", "empty": "", "n": null,
        "list": [1, 2.5, "x", [true]]
    });
    let back = round_trip(&v);
    assert_eq!(back, v);
    // Floats stay floats and integers integers (no 21.0 → 21).
    assert!(back["whole_float"].is_f64());
    assert_eq!(
        back["third"].as_f64().unwrap().to_bits(),
        (1.0_f64 / 3.0).to_bits()
    );
    assert!(back["u"].is_u64() && back["i"].is_i64());
}

#[test]
fn cbor_is_smaller_than_json_for_a_primitive() {
    let v = json!({"op":1,"to":"cse-in/gw/meter-1","fr":"Cgw","rqi":"cg1-1","rvi":"3","ty":4,
        "pc":{"m2m:cin":{"rn":"e-1","con":{"values":{"p":230.12345678901,"on":true}}}}});
    let cbor = Serialization::Cbor.encode(&v).unwrap();
    let json = Serialization::Json.encode(&v).unwrap();
    assert!(cbor.len() < json.len(), "{} vs {}", cbor.len(), json.len());
}

#[test]
fn garbage_cbor_is_a_clear_error_never_a_panic() {
    let cases: Vec<Vec<u8>> = vec![
        vec![0xff], // break outside indefinite item
        vec![0xa1], // map without its entry
        vec![0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // text of 2^64-1 bytes
        vec![0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // array of 2^63 items
        vec![0xa1, 0x01, 0x02], // integer map key
        vec![0x42, 0x01, 0x02], // byte string
        vec![0x01, 0x02], // trailing bytes
        vec![0x81; 100_000], // nesting far too deep
        b"{\"rsc\":2001}".to_vec(), // JSON, not CBOR
        (0..=255u8).collect(),
    ];
    for body in cases {
        match Serialization::Cbor.decode(4000, &body) {
            Err(BindingError::BadBody { rsc, detail }) => {
                assert_eq!(rsc, 4000);
                assert!(detail.len() < 1200, "unbounded detail: {detail}");
            }
            other => panic!("{body:02x?}: {other:?}"),
        }
    }
}

#[test]
fn empty_bodies_are_none() {
    assert_eq!(Serialization::Cbor.decode(2001, b"").unwrap(), None);
    assert_eq!(Serialization::Json.decode(2001, b"  \n").unwrap(), None);
}

#[test]
fn media_types() {
    use Serialization::*;
    assert_eq!(
        Serialization::from_media_type("application/cbor"),
        Some(Cbor)
    );
    assert_eq!(
        Serialization::from_media_type("application/vnd.onem2m-res+cbor;ty=4"),
        Some(Cbor)
    );
    assert_eq!(
        Serialization::from_media_type("Application/JSON"),
        Some(Json)
    );
    assert_eq!(Serialization::from_media_type("cbor"), Some(Cbor));
    assert_eq!(Serialization::from_media_type("text/html"), None);
    assert_eq!(Cbor.topic_suffix(), "cbor");
    assert_eq!(Json.media_type(), "application/json");
}
