//! Receiving notifications: the HTTP long-poll of the polling channel, or the MQTT request
//! topic. A notification is answered only after its instance is journaled (then the CSE may
//! forget it: the journal has it); one that cannot be journaled is answered with an error and
//! left to catch-up.
use super::notification::{self, IncomingNotify, Notification};
use super::{setup, CommandSide, Route};
use crate::backoff::Backoff;
use crate::commands::Offered;
use crate::northbound::onem2m::primitive::{Operation, Request};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs the receiver of the configured route until `cancel`.
pub async fn run(side: Arc<CommandSide>, ae_id: String, cancel: CancellationToken) {
    match side.route.clone() {
        Route::PollingChannel => poll(side, ae_id, cancel).await,
        Route::Mqtt(mqtt) => {
            let mut requests = mqtt.listen(&ae_id);
            let mut connections = mqtt.connections();
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = connections.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Reconnected: notifications published meanwhile are lost.
                        side.catch_up.notify_one();
                    }
                    request = requests.recv() => {
                        let Some(request) = request else { return };
                        // JSON or CBOR, as the topic's last level says.
                        let parsed = crate::northbound::mqtt::topic_serialization(&request.topic)
                            .decode(0, &request.payload)
                            .map_err(|e| e.to_string())
                            .and_then(|v| notification::parse_request(&v.unwrap_or_default()));
                        match parsed {
                            Ok(n) => {
                                let rsc = handle(&side, &n).await;
                                let response = notification::response(&n, &ae_id, rsc);
                                if let Err(e) = mqtt.respond(&request.topic, &response) {
                                    tracing::warn!(error = %e, "cannot answer a notification");
                                }
                            }
                            Err(e) => tracing::warn!(topic = %request.topic, error = %e, "request from the CSE ignored"),
                        }
                    }
                }
            }
        }
    }
}

/// Long-polls `<pch>/pcu` with `rqet` = now + `poll_timeout`, re-polling at once after an
/// answer or a 4008 (nothing queued), on the backoff after a failure (then catching up).
async fn poll(side: Arc<CommandSide>, ae_id: String, cancel: CancellationToken) {
    let rvi = side.tree.config().release.clone();
    let pcu = setup::pcu_path(&side.tree);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    let mut failing = false;
    loop {
        let req = Request::retrieve(&pcu, &ae_id, &rvi).expiring_in(side.cfg.poll_timeout);
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = side.binding.send(req) => r,
        };
        let problem = match result {
            Ok(resp) if resp.rsc.0 == 2000 => {
                let body = resp.pc.unwrap_or_default();
                match notification::parse_request(&body) {
                    Ok(n) => {
                        let rsc = handle(&side, &n).await;
                        answer_on_pcu(&side, &pcu, &ae_id, &rvi, &n, rsc).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "polling channel answer ignored"),
                }
                None
            }
            // Nothing queued until rqet: poll again.
            Ok(resp) if resp.rsc.0 == 4008 => None,
            Ok(resp) if resp.rsc.0 == 4004 => {
                side.rebuild.notify_one();
                Some(format!("polling channel gone at the CSE ({})", resp.rsc))
            }
            Ok(resp) => Some(format!("{} {}", resp.rsc, resp.dbg.unwrap_or_default())),
            Err(e) => Some(e.to_string()),
        };
        match problem {
            None => {
                if failing {
                    failing = false;
                    backoff.reset();
                    tracing::info!("polling channel answers again; catching up");
                    side.catch_up.notify_one();
                }
            }
            Some(why) => {
                failing = true;
                let delay = backoff.next_delay();
                tracing::warn!(error = %why, retry_in = ?delay, "polling the command channel failed");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Over HTTP the answer to a polled request goes back through the polling channel: a NOTIFY
/// of `<pch>/pcu` carrying the response primitive.
async fn answer_on_pcu(
    side: &CommandSide,
    pcu: &str,
    ae_id: &str,
    rvi: &str,
    n: &IncomingNotify,
    rsc: u16,
) {
    let req = Request {
        op: Operation::Notify,
        pc: Some(serde_json::json!({ "m2m:rsp": notification::response(n, ae_id, rsc) })),
        ..Request::retrieve(pcu, ae_id, rvi)
    };
    match side.binding.send(req).await {
        Ok(resp) if resp.rsc.is_success() => {}
        Ok(resp) => {
            tracing::debug!(rsc = %resp.rsc, dbg = ?resp.dbg, "the CSE did not take our answer to a notification")
        }
        Err(e) => tracing::debug!(error = %e, "cannot answer a notification"),
    }
}

/// Journals (and dispatches) a notified instance; the `rsc` to answer.
async fn handle(side: &CommandSide, n: &IncomingNotify) -> u16 {
    match &n.notification {
        Notification::Verification | Notification::Other => 2000,
        Notification::Reboot { rbo } => {
            match side.reboot.get() {
                Some(reboot) => {
                    reboot.handle(rbo, &n.from).await;
                }
                None => tracing::warn!("reboot notification without [management] enabled; ignored"),
            }
            2000
        }
        Notification::Instance { container, cin } => {
            if let Some(rc) = side.remote_config.get().filter(|rc| rc.owns(container)) {
                rc.offer(cin).await;
                return 2000;
            }
            let Some(device) = side.device_of(container) else {
                tracing::warn!(container = %container, "notification about an unknown command container; catching up");
                side.catch_up.notify_one();
                return 2000;
            };
            let instance = match notification::instance(&device, cin) {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(device = %device, error = %e, "notified command instance ignored");
                    return 2000;
                }
            };
            // The backlog first (see `CommandSide::caught_up`).
            let _ = side.caught_up.subscribe().wait_for(|done| *done).await;
            match side.dispatcher.offer(instance).await {
                Ok(Offered::New | Offered::Known) => 2000,
                Err(e) => {
                    tracing::error!(error = %e, "cannot journal a command instance; left to catch-up");
                    5000
                }
            }
        }
    }
}
