use super::*;

/// The container name of an odd id: kept characters, `~`, 12 hex digits.
fn assert_mapped(id: &str, kept: &str) -> String {
    let name = container_name(id).into_owned();
    let (k, hash) = name
        .rsplit_once(MAPPED_MARKER)
        .unwrap_or_else(|| panic!("{id:?} -> {name:?} is not mapped"));
    assert_eq!(k, kept, "kept part of {id:?}");
    assert_eq!(hash.len(), 12, "{name}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    assert!(name.chars().count() <= MAX_NAME_LEN, "{name}");
    assert!(
        name.chars().all(|c| is_name_char(c) || c == MAPPED_MARKER),
        "{name}"
    );
    assert_eq!(
        encode_segment(&name),
        name,
        "a mapped name needs no encoding"
    );
    name
}

#[test]
fn valid_ids_are_their_own_container_name() {
    for id in [
        "meter-1",
        "cab17_main.meter",
        "0004a30b001c0530",
        "A",
        ".a",
        "a..b",
        "...",
    ] {
        assert_eq!(check_device_id(id), Ok(()), "{id}");
        assert!(matches!(container_name(id), Cow::Borrowed(n) if n == id));
        assert_eq!(address(&["cse-in", "gw", id]), format!("cse-in/gw/{id}"));
    }
    let longest = "x".repeat(MAX_NAME_LEN);
    assert_eq!(container_name(&longest), longest);
}

#[test]
fn invalid_ids_are_reported_with_the_reason() {
    assert_eq!(check_device_id(""), Err(DeviceIdError::Empty));
    assert_eq!(check_device_id("."), Err(DeviceIdError::DotSegment));
    assert_eq!(check_device_id(".."), Err(DeviceIdError::DotSegment));
    assert_eq!(check_device_id("a/b"), Err(DeviceIdError::Character('/')));
    assert_eq!(check_device_id("a?b"), Err(DeviceIdError::Character('?')));
    assert_eq!(check_device_id("a#b"), Err(DeviceIdError::Character('#')));
    assert_eq!(check_device_id("a%b"), Err(DeviceIdError::Character('%')));
    assert_eq!(check_device_id("a b"), Err(DeviceIdError::Character(' ')));
    assert_eq!(check_device_id("a~b"), Err(DeviceIdError::Character('~')));
    assert_eq!(check_device_id("café"), Err(DeviceIdError::Character('é')));
    assert_eq!(
        check_device_id(&"x".repeat(MAX_NAME_LEN + 1)),
        Err(DeviceIdError::TooLong)
    );
    assert_eq!(
        DeviceIdError::Character('/').to_string(),
        "it contains '/'; only letters, digits, `-`, `_` and `.` are allowed"
    );
}

#[test]
fn odd_ids_map_to_safe_distinct_names() {
    let cases = [
        (".", "."),
        ("..", ".."),
        ("a/b", "a_b"),
        ("a?b", "a_b"),
        ("a#b", "a_b"),
        ("a%b", "a_b"),
        ("a b", "a_b"),
        ("a~b", "a_b"),
        ("", ""),
        ("café", "caf_"),
        ("温度计", "___"),
        ("../../cse-in", ".._.._cse-in"),
        ("a\nb\0", "a_b_"),
    ];
    let mut names = std::collections::HashSet::new();
    for (id, kept) in cases {
        let name = assert_mapped(id, kept);
        assert_ne!(name, ".");
        assert_ne!(name, "..");
        assert!(
            check_device_id(&name).is_err(),
            "mapped names are never valid ids"
        );
        assert_eq!(container_name(id), name, "deterministic");
        assert!(names.insert(name), "{id:?} collides");
    }
    // Pinned: the name must not change between releases (it is the container at the CSE).
    assert_eq!(container_name("a/b"), "a_b~c14cddc033f6");
}

#[test]
fn very_long_ids_are_cut_and_stay_distinct() {
    let long = "m".repeat(10_000);
    let name = assert_mapped(&long, &"m".repeat(51));
    assert_eq!(name.len(), MAX_NAME_LEN);
    let other = format!("{long}n");
    assert_ne!(container_name(&other), name);
    let just_over = "x".repeat(MAX_NAME_LEN + 1);
    assert_mapped(&just_over, &"x".repeat(51));
}

#[test]
fn device_label_keeps_the_original_id() {
    assert_eq!(device_label("a/b"), "device/a/b");
    assert_eq!(device_label("温度 计"), "device/温度 计");
    assert_eq!(device_label(&"é".repeat(1000)).chars().count(), 7 + 256);
    // Always a valid xs:token: no tab/CR/LF, no double or trailing space.
    assert_eq!(device_label("a\tb\r\n"), r"device/a\u{9}b\u{d}\u{a}");
    assert_eq!(
        device_label("two  spaces "),
        r"device/two \u{20}spaces\u{20}"
    );
    assert_eq!(device_label(" a   b"), r"device/ a \u{20}\u{20}b");
    assert_eq!(device_label("\0\u{1b}\u{7f}"), r"device/\u{0}\u{1b}\u{7f}");
}

#[test]
fn loggable_id_is_short_and_escaped() {
    assert_eq!(loggable_id("a\nb"), r#""a\nb""#);
    assert_eq!(loggable_id("é"), r#""\u{e9}""#);
    let long = loggable_id(&"x".repeat(1000));
    assert!(long.ends_with("…\"") && long.len() < 80, "{long}");
}

#[test]
fn segments_are_percent_encoded() {
    for (segment, encoded) in [
        ("meter-1", "meter-1"),
        ("a.b_c~d", "a.b_c~d"),
        ("a/b", "a%2Fb"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("a%b", "a%25b"),
        ("a b", "a%20b"),
        ("café", "caf%C3%A9"),
        ("", ""),
        ("a:b@c+d", "a%3Ab%40c%2Bd"),
    ] {
        assert_eq!(encode_segment(segment), encoded, "{segment:?}");
    }
    assert_eq!(
        address(&["cse-in", "gw 1", "a/b"]),
        "cse-in/gw%201/a%2Fb",
        "a `/` inside a name never becomes a separator"
    );
}

#[test]
fn url_path_keeps_encoded_addresses_and_guards_raw_ones() {
    let built = address(&["cse-in", "gw", "a%b", "é"]);
    assert_eq!(url_path(&built), built, "nothing is encoded twice");
    assert_eq!(url_path("/id-in/cse-in/gw"), "/id-in/cse-in/gw");
    assert_eq!(url_path("cse-in/a?b#c d"), "cse-in/a%3Fb%23c%20d");
    assert_eq!(url_path("cse-in/é"), "cse-in/%C3%A9");
}
