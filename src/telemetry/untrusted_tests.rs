use super::*;

#[test]
fn short_plain_text_is_unchanged() {
    assert_eq!(Untrusted("TOO_LATE").to_string(), "TOO_LATE");
    assert_eq!(Untrusted("").to_string(), "");
    assert_eq!(
        Untrusted("a \"quoted\" \\ path").to_string(),
        "a \"quoted\" \\ path"
    );
}

#[test]
fn long_text_is_truncated_with_its_size() {
    let long = "x".repeat(10_000);
    let shown = Untrusted(&long).to_string();
    assert!(shown.starts_with(&"x".repeat(MAX_CHARS)));
    assert_eq!(
        shown,
        format!("{}…(truncated, 10000 bytes)", "x".repeat(MAX_CHARS))
    );
    // Exactly MAX_CHARS is not truncated; multi-byte characters count as one.
    let exact = "é".repeat(MAX_CHARS);
    assert_eq!(Untrusted(&exact).to_string(), exact);
}

#[test]
fn newlines_control_and_ansi_are_escaped() {
    let forged = "NONE\n2026-01-01T00:00:00Z INFO fake line\r\x1b[31mred\x1b[0m\0\t";
    let shown = Untrusted(forged).to_string();
    assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\x1b'));
    assert!(!shown.contains('\0') && !shown.contains('\t'));
    assert_eq!(
        shown,
        "NONE\\n2026-01-01T00:00:00Z INFO fake line\\r\\u{1b}[31mred\\u{1b}[0m\\0\\t"
    );
    // Bidi overrides and zero-width characters are shown as escapes too.
    assert_eq!(
        Untrusted("a\u{202e}b\u{200b}").to_string(),
        "a\\u{202e}b\\u{200b}"
    );
    // Ordinary non-ASCII text stays readable.
    assert_eq!(Untrusted("Straße 3 — Ø").to_string(), "Straße 3 — Ø");
}

#[test]
fn snippet_reads_only_the_head_of_a_huge_body() {
    let body = vec![b'A'; 100 * 1024 * 1024];
    let s = snippet(&body);
    assert_eq!(
        s,
        format!("{}…(truncated, 104857600 bytes)", "A".repeat(MAX_CHARS))
    );
    assert_eq!(snippet(b"{\"m2m:dbg\":\"x\"}"), "{\"m2m:dbg\":\"x\"}");
    assert_eq!(snippet(b"bad \xff\n"), "bad \u{fffd}\\n");
}

#[test]
fn limiter_lets_n_per_window_then_reports_the_suppressed_count() {
    let t0 = Instant::now();
    let mut l = LogLimiter::new(3, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(l.allow_at("gw1", t0), Some(0));
    }
    for _ in 0..1000 {
        assert_eq!(l.allow_at("gw1", t0 + Duration::from_secs(30)), None);
    }
    // Another source has its own budget.
    assert_eq!(l.allow_at("gw2", t0), Some(0));
    // Next window: the first line says how many were held back, then the count restarts.
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(l.allow_at("gw1", t1), Some(1000));
    assert_eq!(l.allow_at("gw1", t1), Some(0));
    assert_eq!(l.allow_at("gw1", t1), Some(0));
    assert_eq!(l.allow_at("gw1", t1), None);
}

#[test]
fn limiter_stays_bounded_with_hostile_source_names() {
    let t0 = Instant::now();
    let mut l = LogLimiter::new(1, Duration::from_secs(60));
    let mut logged = 0;
    for i in 0..100_000 {
        if l.allow_at(&format!("src{i}"), t0).is_some() {
            logged += 1;
        }
    }
    assert!(l.sources() <= MAX_SOURCES + 1, "{}", l.sources());
    // The first MAX_SOURCES sources log once each; all the others share one bucket.
    assert_eq!(logged, MAX_SOURCES + 1);
    // After the window, stale sources make room again.
    let later = t0 + Duration::from_secs(120);
    assert_eq!(l.allow_at("fresh", later), Some(0));
    assert!(l.sources() <= MAX_SOURCES + 1);
}
