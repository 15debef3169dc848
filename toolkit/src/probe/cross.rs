//! `--cross`: a plain client and a TLS client on the same broker, each
//! receiving what the other publishes, proving both listeners route into one
//! broker.

use rumqttc::QoS;

use super::check::{round_trip_between, subscribe};
use super::{Target, connect, nonce, qos_digit};
use crate::exit::{Failure, Status};

/// Runs the cross probe: TLS to plain, then plain to TLS, at each QoS.
pub(super) async fn run(plain: &Target, tls: &Target, qos_list: &[QoS]) -> anyhow::Result<()> {
    let mut plain_session = connect::open(plain, Some("plain ")).await?;
    let mut tls_session = connect::open(tls, Some("tls   ")).await?;
    let base = format!("toolkit/probe/{}", nonce());
    let to_plain = format!("{base}/to-plain");
    let to_tls = format!("{base}/to-tls");

    let plain_granted = subscribe(&mut plain_session, &to_plain, "plain ").await?;
    let tls_granted = subscribe(&mut tls_session, &to_tls, "tls   ").await?;

    let mut failures: Vec<(String, Failure)> = Vec::new();
    for (direction, from_tls) in [("tls -> plain", true), ("plain -> tls", false)] {
        let mut passed = true;
        for &qos in qos_list {
            let label = format!("{direction}  ");
            let result = if from_tls {
                round_trip_between(
                    &mut tls_session,
                    Some(&mut plain_session),
                    &to_plain,
                    qos,
                    plain_granted,
                    &label,
                )
                .await
            } else {
                round_trip_between(
                    &mut plain_session,
                    Some(&mut tls_session),
                    &to_tls,
                    qos,
                    tls_granted,
                    &label,
                )
                .await
            };
            match result {
                Ok(()) => {}
                Err(f) if f.status == Status::Lost => {
                    println!("{label}qos {}    FAILED: {f}", qos_digit(qos));
                    passed = false;
                    failures.push((direction.to_owned(), f));
                }
                Err(f) => return Err(f.into()),
            }
        }
        println!("{direction}  {}", if passed { "ok" } else { "FAILED" });
    }
    let _ = plain_session.unsubscribe(&to_plain).await;
    let _ = tls_session.unsubscribe(&to_tls).await;
    plain_session.disconnect().await;
    tls_session.disconnect().await;
    match failures.into_iter().next() {
        Some((direction, failure)) => {
            Err(Failure::new(failure.status, format!("{direction}: {failure}")).into())
        }
        None => {
            println!(
                "ok       messages cross both ways between {} (plain) and {} (TLS)",
                plain.addr(),
                tls.addr()
            );
            Ok(())
        }
    }
}
