//! TLS (custom CA, client identity) and HTTP authentication (basic, bearer) against a real ACME
//! CSE. Run: `cargo test --test acme_security -- --ignored --test-threads=1`.
mod common;

use citygate::northbound::config::{AuthConfig, BasicAuth, BearerAuth};
use citygate::northbound::onem2m::primitive::{Request, Rsc};
use citygate::northbound::{Binding, BindingError, HttpBinding, NorthboundConfig};
use common::northbound::acme::{Acme, Security, ADMIN};
use common::northbound::mem_store::MemStore;
use common::northbound::{config, fill, spawn_syncer, wait_for, AE_NAME, ORIGINATOR};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn basic(password_file: std::path::PathBuf) -> AuthConfig {
    AuthConfig {
        basic: Some(BasicAuth {
            user: "gw".into(),
            password_file: Some(password_file),
            password_env: None,
        }),
        bearer: None,
    }
}

async fn retrieve_cse(cfg: &NorthboundConfig) -> Result<Rsc, BindingError> {
    let b = HttpBinding::new(cfg)?;
    let r = tokio::time::timeout(T, b.send(Request::retrieve("cse-in", ADMIN, "3")))
        .await
        .expect("request timed out")?;
    Ok(r.rsc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh) and openssl"]
async fn tls_with_custom_ca_and_basic_auth() -> anyhow::Result<()> {
    let acme = Acme::start_secure(&Security {
        tls: true,
        basic: Some(("gw".into(), "gwpass".into())),
        token: None,
    })
    .await?;
    assert!(acme.url.starts_with("https://"));
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("pw");
    std::fs::write(&good, "gwpass\n")?;
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "wrong\n")?;

    let mut cfg = config(&acme.url);
    cfg.tls.ca_file = Some(acme.ca_file());
    cfg.auth = basic(good.clone());
    assert_eq!(retrieve_cse(&cfg).await?, Rsc::OK);

    // A client identity loads and does not disturb a server that asks for none.
    let (cert, key) = acme.pki().leaf("client", "clientAuth")?;
    let mut with_identity = cfg.clone();
    with_identity.tls.client_cert_file = Some(cert);
    with_identity.tls.client_key_file = Some(key);
    assert_eq!(retrieve_cse(&with_identity).await?, Rsc::OK);

    let mut wrong = cfg.clone();
    wrong.auth = basic(bad);
    assert_eq!(
        retrieve_cse(&wrong).await,
        Err(BindingError::AuthRefused { status: 401 })
    );

    let mut untrusted = cfg.clone();
    untrusted.tls.ca_file = None;
    let err = retrieve_cse(&untrusted).await.unwrap_err();
    assert!(matches!(err, BindingError::Connect(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // The whole path over TLS + basic auth; checked at the CSE through the same channel.
    let store = MemStore::new("e1");
    fill(&store, &["dev-tls"], 20);
    let run = spawn_syncer(cfg.clone(), store.clone());
    wait_for("delivered over TLS", T, || store.pending_count() == 0).await?;
    run.stop().await?;
    let b = HttpBinding::new(&cfg)?;
    let req = Request::retrieve(format!("cse-in/{AE_NAME}/dev-tls"), ORIGINATOR, "3").with_rcn(4);
    let resp = tokio::time::timeout(T, b.send(req)).await??;
    let cins = resp
        .pc
        .as_ref()
        .map(|pc| pc["m2m:cnt"]["m2m:cin"].as_array().map_or(0, Vec::len));
    assert_eq!(cins, Some(20));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn bearer_token_and_refusal_turns_health_red() -> anyhow::Result<()> {
    let acme = Acme::start_secure(&Security {
        tls: false,
        basic: None,
        token: Some("tok123".into()),
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok123")?;
    let mut cfg = config(&acme.url);
    cfg.auth = AuthConfig {
        basic: None,
        bearer: Some(BearerAuth {
            token_file: Some(token_file),
            token_env: None,
        }),
    };
    assert_eq!(retrieve_cse(&cfg).await?, Rsc::OK);

    std::env::set_var("CITYGATE_TEST_WRONG_TOKEN", "nope");
    let mut wrong = cfg.clone();
    wrong.auth.bearer = Some(BearerAuth {
        token_file: None,
        token_env: Some("CITYGATE_TEST_WRONG_TOKEN".into()),
    });
    let store = MemStore::new("e1");
    fill(&store, &["dev-a"], 5);
    let run = spawn_syncer(wrong, store.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snap = run.state.snapshot();
    run.stop().await?;
    assert!(snap.refused && !snap.healthy(), "{snap:?}");
    assert!(snap.connected, "the CSE answered, it refused");
    assert_eq!(store.pending_count(), 5);
    assert!(store.dead_letters().is_empty());

    let run = spawn_syncer(cfg, store.clone());
    wait_for("delivered with the right token", T, || {
        store.pending_count() == 0
    })
    .await?;
    assert!(run.state.snapshot().healthy());
    run.stop().await?;
    Ok(())
}
