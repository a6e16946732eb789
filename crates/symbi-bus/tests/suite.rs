//! The behavioural suite, run against both backends: `memory::*` in process, `nats::*`
//! against a real nats-server (JetStream) that each test starts on a loopback port.

mod common;

use bytes::Bytes;
use common::*;
use std::time::Duration;
use symbi_bus::message::now_ms;
use symbi_bus::{
    BusError, BusSecurityMode, Codec, DeliveryStatus, KeyRing, Message, MessageId, MessageType,
    SendOptions, Topic,
};
use symbi_types::AgentId;

const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(10);

async fn direct_round_trip_and_status(b: Backend) {
    let e = env(b).await;
    let alice = agent(&e.bus, "alice").await;
    let bob = agent(&e.bus, "bob").await;
    let mid = e
        .bus
        .send(&alice, id(&bob), "hello bob", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Pending)
    );
    let mut inbox = e.bus.inbox(id(&bob)).await.unwrap();
    let d = inbox.recv_timeout(LONG).await.expect("delivered");
    let m = d.message().clone();
    assert_eq!(
        (m.id, m.sender, m.recipient),
        (mid, id(&alice), Some(id(&bob)))
    );
    assert_eq!(
        (m.message_type, m.payload_str()),
        (MessageType::Direct, Some("hello bob"))
    );
    assert_eq!(d.attempt(), 1);
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Pending),
        "handed out, not yet acknowledged"
    );
    d.ack().await.unwrap();
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    assert!(
        matches!(e.bus.inbox(id(&bob)).await, Err(BusError::InboxBusy(_))),
        "one open inbox per agent"
    );
    let stranger = AgentId::new();
    assert!(matches!(
        e.bus.send(&alice, stranger, "x", SendOptions::default()).await,
        Err(BusError::UnknownAgent(a)) if a == stranger
    ));
}

async fn every_security_mode_round_trips(b: Backend) {
    for mode in [
        BusSecurityMode::Plaintext,
        BusSecurityMode::SignedEveryMessage,
        BusSecurityMode::Session,
    ] {
        let e = env_with(b, test_settings(mode), RulePdp::default()).await;
        let alice = agent(&e.bus, "alice").await;
        let bob = agent(&e.bus, "bob").await;
        let mut sub = e
            .bus
            .subscribe(&bob, "news/*", SendOptions::default())
            .await
            .unwrap();
        let mut inbox = e.bus.inbox(id(&bob)).await.unwrap();
        for i in 0..5 {
            e.bus
                .send(&alice, id(&bob), format!("d{i}"), SendOptions::default())
                .await
                .unwrap();
            e.bus
                .publish(
                    &alice,
                    "news.today",
                    format!("p{i}"),
                    SendOptions::default(),
                )
                .await
                .unwrap();
        }
        for i in 0..5 {
            let d = inbox
                .recv_timeout(LONG)
                .await
                .unwrap_or_else(|| panic!("{mode:?}: direct {i}"));
            assert_eq!(
                d.message().payload_str(),
                Some(format!("d{i}").as_str()),
                "{mode:?}"
            );
            d.ack().await.unwrap();
            let m = sub
                .recv_timeout(LONG)
                .await
                .unwrap_or_else(|| panic!("{mode:?}: publish {i}"));
            assert_eq!(m.payload_str(), Some(format!("p{i}").as_str()));
            assert_eq!(m.topic.as_ref().map(|t| t.as_str()), Some("news/today"));
        }
        assert!(e.audit.of_type("security_violation").is_empty(), "{mode:?}");
    }
}

async fn ordering_per_sender(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let c = agent(&e.bus, "c").await;
    let r = agent(&e.bus, "r").await;
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let (bus1, bus2, a1, c1, to) = (e.bus.clone(), e.bus.clone(), a.clone(), c.clone(), id(&r));
    let s1 = tokio::spawn(async move {
        for i in 0..100u32 {
            bus1.send(&a1, to, i.to_string(), SendOptions::default())
                .await
                .unwrap();
        }
    });
    let s2 = tokio::spawn(async move {
        for i in 0..100u32 {
            bus2.send(&c1, to, i.to_string(), SendOptions::default())
                .await
                .unwrap();
        }
    });
    let (mut next_a, mut next_c) = (0u32, 0u32);
    for _ in 0..200 {
        let d = inbox.recv_timeout(LONG).await.expect("all 200 arrive");
        let n: u32 = d.message().payload_str().unwrap().parse().unwrap();
        let next = if d.message().sender == id(&a) {
            &mut next_a
        } else {
            &mut next_c
        };
        assert_eq!(n, *next, "per-sender order");
        *next += 1;
        d.ack().await.unwrap();
    }
    s1.await.unwrap();
    s2.await.unwrap();
    assert_eq!((next_a, next_c), (100, 100));
}

async fn retried_with_backoff_until_acknowledged(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    let mid = e
        .bus
        .send(&a, id(&r), "flaky", SendOptions::default())
        .await
        .unwrap();
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let d1 = inbox.recv_timeout(LONG).await.unwrap();
    assert_eq!(d1.attempt(), 1);
    d1.nack("temporary failure").await.unwrap();
    let d2 = inbox.recv_timeout(LONG).await.unwrap();
    assert_eq!((d2.attempt(), d2.message().id), (2, mid));
    d2.nack("temporary failure").await.unwrap();
    let d3 = inbox.recv_timeout(LONG).await.unwrap();
    assert_eq!(d3.attempt(), 3);
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Pending)
    );
    d3.ack().await.unwrap();
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    assert!(e.bus.dead_letters().await.unwrap().is_empty());
}

async fn receiver_failure_dead_letters_then_redrive(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    let mid = e
        .bus
        .send(&a, id(&r), "poison", SendOptions::default())
        .await
        .unwrap();
    {
        let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
        for attempt in 1..=3 {
            let d = inbox.recv_timeout(LONG).await.expect("redelivered");
            assert_eq!(d.attempt(), attempt);
            // The receiver "crashes": the delivery is dropped unacknowledged.
            drop(d);
        }
        assert!(
            inbox.recv_timeout(SHORT).await.is_none(),
            "no fourth attempt"
        );
    }
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = e.bus.dead_letters().await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].message.id, dead[0].attempts), (mid, 3));
    assert_eq!(
        dead[0].message.payload_str(),
        Some("poison"),
        "dead letters are inspectable"
    );
    assert!(
        dead[0].reason.contains("without acknowledgement"),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Failed)
    );
    e.bus.redrive(mid).await.unwrap();
    assert!(e.bus.dead_letters().await.unwrap().is_empty());
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let d = inbox.recv_timeout(LONG).await.expect("re-driven");
    assert_eq!((d.message().id, d.attempt()), (mid, 1));
    d.ack().await.unwrap();
    assert_eq!(
        e.bus.message_status(mid).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    assert!(matches!(
        e.bus.redrive(MessageId::new()).await,
        Err(BusError::UnknownMessage(_))
    ));
}

async fn hung_receiver_is_redelivered_after_ack_wait(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    e.bus
        .send(&a, id(&r), "slow", SendOptions::default())
        .await
        .unwrap();
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let held = inbox.recv_timeout(LONG).await.unwrap();
    let again = inbox
        .recv_timeout(LONG)
        .await
        .expect("redelivered after ack_wait");
    assert_eq!(
        (again.attempt(), again.message().id),
        (2, held.message().id)
    );
    again.ack().await.unwrap();
    std::mem::forget(held); // the hung receiver never answers
}

async fn wildcard_subscriptions(b: Backend) {
    let e = env(b).await;
    let p = agent(&e.bus, "publisher").await;
    let s = agent(&e.bus, "subscriber").await;
    let o = SendOptions::default;
    let mut one = e.bus.subscribe(&s, "support/*", o()).await.unwrap();
    let mut rest = e.bus.subscribe(&s, "support.>", o()).await.unwrap();
    let mut exact = e
        .bus
        .subscribe(&s, "topic://oncall/page", o())
        .await
        .unwrap();
    let mut all = e.bus.subscribe(&s, ">", o()).await.unwrap();
    let mut same = e.bus.subscribe(&s, "support/*", o()).await.unwrap();
    let published = e.bus.publish(&p, "support/urgent", "1", o()).await.unwrap();
    assert_eq!(
        e.bus.message_status(published).await.unwrap(),
        None,
        "publishes carry no delivery status"
    );
    e.bus
        .publish(&p, "support.urgent.high", "2", o())
        .await
        .unwrap();
    e.bus.publish(&p, "oncall/page", "3", o()).await.unwrap();
    e.bus.publish(&p, "support", "4", o()).await.unwrap();
    async fn got(s: &mut symbi_bus::Subscription, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(
                s.recv_timeout(LONG)
                    .await
                    .expect("message")
                    .payload_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert!(
            s.recv_timeout(SHORT).await.is_none(),
            "{:?}: nothing more",
            s.pattern()
        );
        v
    }
    assert_eq!(got(&mut one, 1).await, ["1"]);
    assert_eq!(got(&mut same, 1).await, ["1"]);
    assert_eq!(got(&mut rest, 2).await, ["1", "2"]);
    assert_eq!(got(&mut exact, 1).await, ["3"]);
    assert_eq!(got(&mut all, 4).await, ["1", "2", "3", "4"]);
    // After a subscription is dropped, the others still work.
    drop(one);
    e.bus.publish(&p, "support/x", "5", o()).await.unwrap();
    assert_eq!(got(&mut same, 1).await, ["5"]);
    assert!(matches!(
        e.bus.publish(&p, "a/*", "x", o()).await,
        Err(BusError::Topic(_))
    ));
}

async fn request_response_with_timeout(b: Backend) {
    let e = env(b).await;
    let client = agent(&e.bus, "client").await;
    let server = agent(&e.bus, "server").await;
    let silent = agent(&e.bus, "silent").await;
    let o = SendOptions::default;
    assert!(matches!(
        e.bus
            .request(&client, id(&server), "ping", SHORT, o())
            .await,
        Err(BusError::NoResponders(_))
    ));
    let mut inbox = e.bus.inbox(id(&server)).await.unwrap();
    let bus = e.bus.clone();
    let server_id = id(&server);
    let responder = tokio::spawn(async move {
        for _ in 0..3 {
            let mut d = inbox.recv().await.unwrap();
            assert!(d.expects_response());
            assert_eq!(d.message().message_type, MessageType::Request);
            let reply = d.message().payload_str().unwrap().to_uppercase();
            bus.respond(server_id, &mut d, reply).await.unwrap();
        }
    });
    for word in ["ping", "hello", "bye"] {
        let resp = e
            .bus
            .request(&client, id(&server), word, LONG, o())
            .await
            .unwrap();
        assert_eq!(resp.payload_str(), Some(word.to_uppercase().as_str()));
        assert_eq!(
            (resp.message_type, resp.sender),
            (MessageType::Response, id(&server))
        );
    }
    responder.await.unwrap();
    let _silent_inbox = e.bus.inbox(id(&silent)).await.unwrap();
    let t0 = std::time::Instant::now();
    let r = e
        .bus
        .request(
            &client,
            id(&silent),
            "anyone?",
            Duration::from_millis(300),
            o(),
        )
        .await;
    assert!(matches!(r, Err(BusError::Timeout { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

async fn routing_denied_by_policy(b: Backend) {
    let pdp = RulePdp {
        deny_send: vec![("mallory".into(), "bob".into())],
        deny_topic_prefix: vec!["secret/".into()],
        deny_subscribe: vec!["eve".into()],
    };
    let e = env_with(b, test_settings(BusSecurityMode::SignedEveryMessage), pdp).await;
    let mallory = agent(&e.bus, "mallory").await;
    let bob = agent(&e.bus, "bob").await;
    let eve = agent(&e.bus, "eve").await;
    let o = SendOptions::default;
    let err = e.bus.send(&mallory, id(&bob), "hi", o()).await.unwrap_err();
    assert!(
        matches!(
            err,
            BusError::PolicyDenied {
                operation: "message_send",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("test rule forbids message_send by mallory on bob"),
        "{err}"
    );
    assert!(matches!(
        e.bus.request(&mallory, id(&bob), "hi", SHORT, o()).await,
        Err(BusError::PolicyDenied { .. })
    ));
    // `secret.plans` is the same topic as `secret/plans`: re-spelling does not escape a deny.
    let err = e
        .bus
        .publish(&bob, "secret.plans", "x", o())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("publish denied by policy"),
        "{err}"
    );
    let err = e.bus.subscribe(&eve, "news/>", o()).await.unwrap_err();
    assert!(matches!(
        err,
        BusError::PolicyDenied {
            operation: "subscribe",
            ..
        }
    ));
    // Allowed traffic still flows, and the denied message never reached the inbox.
    e.bus.send(&eve, id(&bob), "ok", o()).await.unwrap();
    let drained = e.bus.inbox_drain(id(&bob)).await.unwrap();
    assert_eq!(
        drained
            .iter()
            .map(|m| m.payload_str().unwrap())
            .collect::<Vec<_>>(),
        ["ok"]
    );
    let denials = e.audit.of_type("policy_decision");
    assert_eq!(denials.len(), 4, "each denial is audited");
    assert_eq!(denials[0].event.details["component"], "bus");
}

/// The bus reuses built policy requests between messages; every message is still
/// decided, and a renamed recipient or a changed sender principal is what policy sees next.
async fn every_message_is_decided_with_current_names(b: Backend) {
    let pdp = RulePdp {
        deny_send: vec![
            ("alice".into(), "vault".into()),
            ("alice-untrusted".into(), "bob".into()),
        ],
        ..RulePdp::default()
    };
    let e = env_with(b, test_settings(BusSecurityMode::Plaintext), pdp).await;
    let alice = agent(&e.bus, "alice").await;
    let bob = agent(&e.bus, "bob").await;
    let o = SendOptions::default;
    for _ in 0..3 {
        e.bus.send(&alice, id(&bob), "ok", o()).await.unwrap();
    }
    // Renamed: the next message is decided on the new name, and refused.
    e.bus.register_agent(id(&bob), "vault").await.unwrap();
    let err = e.bus.send(&alice, id(&bob), "x", o()).await.unwrap_err();
    assert!(matches!(err, BusError::PolicyDenied { .. }), "{err}");
    e.bus.register_agent(id(&bob), "bob").await.unwrap();
    e.bus.send(&alice, id(&bob), "ok", o()).await.unwrap();
    // Same agent id, different principal (another name here): decided on what is passed.
    let untrusted = symbi_types::Principal {
        name: "alice-untrusted".into(),
        ..alice.clone()
    };
    let err = e
        .bus
        .send(&untrusted, id(&bob), "x", o())
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::PolicyDenied { .. }), "{err}");
    e.bus.send(&alice, id(&bob), "ok", o()).await.unwrap();
    let drained = e.bus.inbox_drain(id(&bob)).await.unwrap();
    assert_eq!(drained.len(), 5, "only the allowed messages arrived");
    assert_eq!(e.audit.of_type("policy_decision").len(), 2);
}

async fn rate_limit_enforced(b: Backend) {
    let mut s = test_settings(BusSecurityMode::Plaintext);
    s.rate_limit_per_agent = 5;
    s.rate_limit_burst = 5;
    let e = env_with(b, s, RulePdp::default()).await;
    let a = agent(&e.bus, "chatty").await;
    let q = agent(&e.bus, "quiet").await;
    let r = agent(&e.bus, "r").await;
    for _ in 0..5 {
        e.bus
            .send(&a, id(&r), "m", SendOptions::default())
            .await
            .unwrap();
    }
    let err = e
        .bus
        .publish(&a, "t", "m", SendOptions::default())
        .await
        .unwrap_err();
    match &err {
        BusError::RateLimited {
            agent,
            per_second,
            retry_after,
        } => {
            assert_eq!((*agent, *per_second), (id(&a), 5));
            assert!(
                *retry_after > Duration::ZERO && *retry_after <= Duration::from_millis(200),
                "{retry_after:?}"
            );
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("exceeded its message rate limit of 5/s")
    );
    // Per agent: another sender is not affected.
    e.bus
        .send(&q, id(&r), "m", SendOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    e.bus
        .send(&a, id(&r), "m", SendOptions::default())
        .await
        .unwrap();
}

async fn backpressure_bounds_the_inbox(b: Backend) {
    let mut s = test_settings(BusSecurityMode::SignedEveryMessage);
    s.queue_capacity = 8;
    let e = env_with(b, s, RulePdp::default()).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    for i in 0..8 {
        e.bus
            .send(&a, id(&r), vec![i as u8; 100], SendOptions::default())
            .await
            .unwrap();
    }
    let t0 = std::time::Instant::now();
    let err = e
        .bus
        .send(&a, id(&r), "one too many", SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::QueueFull { .. }), "{err}");
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "the sender waited for room first"
    );
    // A receiver taking one message makes room; a waiting sender then gets through.
    let bus = e.bus.clone();
    let (a2, to) = (a.clone(), id(&r));
    let waiting = tokio::spawn(async move {
        bus.send(
            &a2,
            to,
            "made it",
            SendOptions::default().ttl(Duration::from_secs(60)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let d = inbox.recv_timeout(LONG).await.unwrap();
    d.ack().await.unwrap();
    let _ = waiting.await.unwrap();
    let mut n = 0;
    while let Some(d) = inbox.recv_timeout(Duration::from_secs(2)).await {
        d.ack().await.unwrap();
        n += 1;
    }
    assert!(n <= 8, "never more than the bound was queued ({n})");
}

async fn subscription_backpressure_is_bounded(b: Backend) {
    let mut s = test_settings(BusSecurityMode::Plaintext);
    s.queue_capacity = 4;
    s.send_timeout = Duration::from_millis(50);
    let e = env_with(b, s, RulePdp::default()).await;
    let p = agent(&e.bus, "p").await;
    let sub_agent = agent(&e.bus, "s").await;
    let mut sub = e
        .bus
        .subscribe(&sub_agent, "load", SendOptions::default())
        .await
        .unwrap();
    for i in 0..20 {
        e.bus
            .publish(&p, "load", format!("{i}"), SendOptions::default())
            .await
            .unwrap();
    }
    // Nobody reads for a while: the queue fills and the rest times out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut got = 0;
    for _ in 0..200 {
        if sub.dropped() + got >= 20 {
            break;
        }
        if sub.recv_timeout(Duration::from_millis(20)).await.is_some() {
            got += 1;
        }
    }
    assert!(sub.queued() <= 4);
    assert_eq!(
        got + sub.dropped(),
        20,
        "every message was either queued or counted as dropped"
    );
    assert!(
        sub.dropped() > 0,
        "a full subscription drops rather than grows"
    );
}

async fn inbox_drain_and_expiry(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    let ids: Vec<MessageId> = futures::future::join_all((0..3).map(|i| {
        e.bus
            .send(&a, id(&r), format!("m{i}"), SendOptions::default())
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    let short = e
        .bus
        .send(
            &a,
            id(&r),
            "short-lived",
            SendOptions::default().ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let drained = e.bus.inbox_drain(id(&r)).await.unwrap();
    let mut payloads: Vec<_> = drained
        .iter()
        .map(|m| m.payload_str().unwrap().to_string())
        .collect();
    payloads.sort();
    assert_eq!(payloads, ["m0", "m1", "m2"]);
    let json = drained[0].to_api_json();
    for k in [
        "message_id",
        "sender",
        "recipient",
        "topic",
        "payload",
        "message_type",
        "timestamp_secs",
        "ttl_seconds",
    ] {
        assert!(json.get(k).is_some(), "{k} in {json}");
    }
    assert_eq!(json["message_type"], "direct");
    for i in ids {
        assert_eq!(
            e.bus.message_status(i).await.unwrap(),
            Some(DeliveryStatus::Delivered)
        );
    }
    assert_eq!(
        e.bus.message_status(short).await.unwrap(),
        Some(DeliveryStatus::Expired)
    );
    assert!(e.bus.inbox_drain(id(&r)).await.unwrap().is_empty());
    assert!(matches!(
        e.bus.inbox_drain(AgentId::new()).await,
        Err(BusError::UnknownAgent(_))
    ));
}

fn forged(sender: AgentId, to: AgentId, payload: &'static str) -> Message {
    Message {
        id: MessageId::new(),
        sender,
        recipient: Some(to),
        topic: None,
        correlation_id: None,
        payload: Bytes::from_static(payload.as_bytes()),
        message_type: MessageType::Direct,
        timestamp_ms: now_ms(),
        ttl_ms: 60_000,
    }
}

/// Replay, tampered ciphertext, wrong signer, stale timestamp, downgrade: each rejected
/// (never delivered) and audited as a `security_violation`.
async fn secure_messages_reject_and_audit(b: Backend, mode: BusSecurityMode) {
    let settings = test_settings(mode);
    let e = env_with(b, settings.clone(), RulePdp::default()).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let codec = e.bus.codec();

    // A genuine message arrives once; its replay is dropped.
    let wire = codec.seal(&forged(id(&a), id(&r), "genuine")).unwrap();
    let _ = e.bus.ingest(wire.clone()).await;
    let d = inbox
        .recv_timeout(LONG)
        .await
        .expect("genuine message delivered");
    assert_eq!(d.message().payload_str(), Some("genuine"));
    d.ack().await.unwrap();
    let _ = e.bus.ingest(wire.clone()).await;
    // The receiver keeps receiving (on NATS that is what pulls the message in).
    assert!(
        inbox.recv_timeout(SHORT).await.is_none(),
        "replay not delivered"
    );
    let v = violation(&e.audit, "replay").await;
    assert_eq!(v["component"], "bus");
    assert_eq!(v["claimed_sender"], id(&a).to_string());

    // Tampered ciphertext (last byte of the body).
    let mut t = wire.to_vec();
    let at = if mode == BusSecurityMode::SignedEveryMessage {
        t.len() - 65
    } else {
        t.len() - 1
    };
    t[at] ^= 0x40;
    let _ = e.bus.ingest(Bytes::from(t)).await;
    assert!(inbox.recv_timeout(SHORT).await.is_none());
    violation(
        &e.audit,
        if mode == BusSecurityMode::SignedEveryMessage {
            "signature"
        } else {
            "decrypt"
        },
    )
    .await;

    // Wrong signer: a node with another master secret claims to be `a`.
    let other = std::sync::Arc::new(KeyRing::new(
        symbi_crypto::provider("ring").unwrap(),
        [9; 32],
    ));
    let intruder = Codec::new(other, *codec.settings());
    let _ = e
        .bus
        .ingest(intruder.seal(&forged(id(&a), id(&r), "forged")).unwrap())
        .await;
    assert!(inbox.recv_timeout(SHORT).await.is_none());
    let v = violation(&e.audit, "signature").await;
    assert!(
        v["detail"].as_str().unwrap().contains(&id(&a).to_string()),
        "{v}"
    );

    // Stale timestamp.
    let mut old = forged(id(&a), id(&r), "old");
    old.timestamp_ms -= 2 * settings.max_clock_skew.as_millis() as u64;
    let _ = e.bus.ingest(codec.seal(&old).unwrap()).await;
    assert!(inbox.recv_timeout(SHORT).await.is_none());
    violation(&e.audit, "stale_timestamp").await;

    // Downgrade: a plaintext message where sealed ones are required.
    let plain = Codec::new(
        e.keys.clone(),
        symbi_bus::secure::CodecSettings {
            mode: BusSecurityMode::Plaintext,
            ..*codec.settings()
        },
    );
    let _ = e
        .bus
        .ingest(plain.seal(&forged(id(&a), id(&r), "plain")).unwrap())
        .await;
    assert!(inbox.recv_timeout(SHORT).await.is_none());
    violation(&e.audit, "security_mode").await;

    assert!(
        inbox.recv_timeout(SHORT).await.is_none(),
        "nothing but the genuine message was delivered"
    );

    // Publishes are verified the same way.
    let mut sub = e
        .bus
        .subscribe(&r, "alerts", SendOptions::default())
        .await
        .unwrap();
    let mut p = forged(id(&a), id(&r), "alert");
    p.message_type = MessageType::Publish;
    p.recipient = None;
    p.topic = Some(Topic::parse("alerts").unwrap());
    let _ = e.bus.ingest(intruder.seal(&p).unwrap()).await;
    assert!(sub.recv_timeout(SHORT).await.is_none());
    let n = e.audit.of_type("security_violation").len();
    assert!(n >= 6, "{n} violations audited");
}

async fn secure_signed(b: Backend) {
    secure_messages_reject_and_audit(b, BusSecurityMode::SignedEveryMessage).await
}

async fn secure_session(b: Backend) {
    secure_messages_reject_and_audit(b, BusSecurityMode::Session).await
}

async fn size_and_identity_errors(b: Backend) {
    let mut s = test_settings(BusSecurityMode::SignedEveryMessage);
    s.max_payload_size = 1024;
    let e = env_with(b, s, RulePdp::default()).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    let err = e
        .bus
        .send(&a, id(&r), vec![0u8; 2048], SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        BusError::PayloadTooLarge {
            size: 2048,
            limit: 1024
        }
    ));
    let nobody = symbi_types::Principal::agent("operator");
    assert!(matches!(
        e.bus
            .send(&nobody, id(&r), "x", SendOptions::default())
            .await,
        Err(BusError::NotAnAgent(_))
    ));
}

/// While messages are queued, handed out and acknowledged concurrently, every status
/// query answers pending or delivered — never unknown (a message must not fall between its
/// queue and its final status).
async fn status_is_known_throughout_delivery(b: Backend) {
    let e = env(b).await;
    let a = agent(&e.bus, "a").await;
    let r = agent(&e.bus, "r").await;
    const N: usize = 2_000;
    let mut inbox = e.bus.inbox(id(&r)).await.unwrap();
    let receiver = tokio::spawn(async move {
        for _ in 0..N {
            let d = inbox.recv_timeout(LONG).await.expect("delivered");
            d.ack().await.unwrap();
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let bus = e.bus.clone();
    let watcher = tokio::spawn(async move {
        let mut checked = 0;
        while let Some(mid) = rx.recv().await {
            for _ in 0..3 {
                let s = bus.message_status(mid).await.unwrap();
                assert!(
                    matches!(s, Some(DeliveryStatus::Pending | DeliveryStatus::Delivered)),
                    "{mid}: {s:?}"
                );
                checked += 1;
                tokio::task::yield_now().await;
            }
        }
        checked
    });
    for i in 0..N {
        let mid = e
            .bus
            .send(&a, id(&r), format!("m{i}"), SendOptions::default())
            .await
            .unwrap();
        tx.send(mid).unwrap();
    }
    drop(tx);
    receiver.await.unwrap();
    assert_eq!(watcher.await.unwrap(), 3 * N);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Memory).await }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Nats).await }
            )*
        }
    };
}

suite!(
    direct_round_trip_and_status,
    status_is_known_throughout_delivery,
    every_security_mode_round_trips,
    ordering_per_sender,
    retried_with_backoff_until_acknowledged,
    receiver_failure_dead_letters_then_redrive,
    hung_receiver_is_redelivered_after_ack_wait,
    wildcard_subscriptions,
    request_response_with_timeout,
    routing_denied_by_policy,
    every_message_is_decided_with_current_names,
    rate_limit_enforced,
    backpressure_bounds_the_inbox,
    subscription_backpressure_is_bounded,
    inbox_drain_and_expiry,
    secure_signed,
    secure_session,
    size_and_identity_errors,
);
