//! A plain oneM2M HTTP client for the benchmarks' ceilings: one CREATE, independent of the
//! syncer under test. Included with `#[path]` by each benchmark that measures a ceiling.

/// POSTs `body` as a resource of type `ty` to `url` as originator `fr`; returns the RSC
/// (0 when the answer carries none).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    fr: &str,
    ty: u8,
    body: serde_json::Value,
) -> anyhow::Result<u16> {
    let r = client
        .post(url)
        .header("X-M2M-Origin", fr)
        .header(
            "X-M2M-RI",
            citygate::northbound::onem2m::primitive::next_request_id(),
        )
        .header("X-M2M-RVI", "3")
        .header("Accept", "application/json")
        .header("Content-Type", format!("application/json;ty={ty}"))
        .body(body.to_string())
        .send()
        .await?;
    let rsc = r
        .headers()
        .get("x-m2m-rsc")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    r.bytes().await?;
    Ok(rsc)
}
