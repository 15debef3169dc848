//! The end of a scenario: the persistent sessions and retained messages it
//! left on the broker are discarded, so a long-lived broker shared by many
//! runs stays as it was found.

use std::time::Duration;

use mqtt_codec::raw::RawPublish;
use tokio::time::Instant;

use super::Run;
use crate::client::Event;

/// How long the end-of-scenario clean-up may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Best-effort: discards the persistent sessions and retained messages the
/// scenario created, so a long-lived broker is left as it was found. Errors
/// are ignored: the scenario's verdict is already decided.
pub(super) async fn cleanup(run: &mut Run<'_>) {
    if run.persistent_ids.is_empty() && run.retained_topics.is_empty() {
        return;
    }
    let ids = std::mem::take(&mut run.persistent_ids);
    let topics = std::mem::take(&mut run.retained_topics);
    let target = run.target;
    let epoch = run.epoch;
    let work = async move {
        // A session may have been left on either node of a cross-node
        // run; on one cluster the second clean-up finds nothing.
        let second = target.node(crate::target::Node::Second);
        for id in ids {
            let _ = clean_connect(target, epoch, id.clone(), &[]).await;
            if let Some(second) = second {
                let _ = clean_connect(second, epoch, id, &[]).await;
            }
        }
        if !topics.is_empty() {
            let topics: Vec<Vec<u8>> = topics.into_iter().collect();
            let _ = clean_connect(target, epoch, Vec::new(), &topics).await;
        }
    };
    let _ = tokio::time::timeout(CLEANUP_TIMEOUT, work).await;
}

async fn clean_connect(
    target: &crate::target::Target,
    epoch: Instant,
    client_id: Vec<u8>,
    clear: &[Vec<u8>],
) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut conn = super::service::open_session(target, epoch, client_id, deadline)
        .await
        .ok()?;
    for topic in clear {
        let p = RawPublish {
            flags: 0b0001,
            topic: topic.clone(),
            packet_id: None,
            payload: Vec::new(),
        };
        conn.write(&p.to_packet().to_bytes()).await.ok()?;
    }
    conn.write(&[0xe0, 0x00]).await.ok()?;
    conn.shutdown().await;
    // Wait for the broker to close so the DISCONNECT is processed before the
    // next scenario might look.
    while let Some(a) = conn.next(deadline).await {
        if matches!(a.event, Event::Closed { .. }) {
            break;
        }
    }
    Some(())
}
