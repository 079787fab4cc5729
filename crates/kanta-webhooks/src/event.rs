//! Events and their JSON bodies. Every body is
//! `{"id", "type", "created_at", "data": {...}}`; `id` is the same for every endpoint and
//! every retry, so a receiver can drop duplicates.
//!
//! - `customer.stage_changed`: `data = {"customer", "from", "to", "run_id", …}` — a scoring run
//!   moved the customer between lifecycle stages. A customer's first stage (`from` would be
//!   null) is not an event: the first run would otherwise announce every customer. Subscribe to
//!   a segment such as `stage = "new"` to hear about newcomers.
//! - `segment.entered` / `segment.exited`: `data = {"customer", "segment", "segment_id", …}`.
//!   A new segment's first membership is a baseline, not entries.
//!
//! Both carry, when the customer is known and not erased, `profile` (`email`, `name`) and
//! `scores` (`stage`, `value_tier`, `clv_12m`, `p_alive`, `next_category` from the latest
//! run), read when the event is queued, so a CRM can open a task without calling back.

use kanta_store::{CustomerContext, NewDelivery, StageEvent, Transition};
use serde_json::{Value, json};

use crate::endpoint::{EventType, Subscription};

/// Add `profile` and `scores` to an event's `data`.
fn with_context(mut data: Value, context: Option<&CustomerContext>) -> Value {
    if let (Some(c), Value::Object(map)) = (context, &mut data) {
        map.insert("profile".into(), json!({"email": c.email, "name": c.name}));
        map.insert(
            "scores".into(),
            json!({"stage": c.stage, "value_tier": c.value_tier, "clv_12m": c.clv_12m, "p_alive": c.p_alive,
                   "next_category": c.next_category}),
        );
    }
    data
}

/// The delivery of a stage change, if the subscription wants it.
pub fn stage_change(s: &Subscription, e: &StageEvent, context: Option<&CustomerContext>) -> Option<NewDelivery> {
    let from = e.change.from.as_deref()?;
    let wanted = s.events.contains(&EventType::StageChanged)
        && s.stages.as_ref().is_none_or(|stages| stages.contains(&e.change.to));
    wanted.then(|| {
        let id = format!("stage_change:{}", e.id);
        let body = json!({
            "id": id,
            "type": EventType::StageChanged.as_str(),
            "created_at": e.change.time,
            "data": with_context(
                json!({"customer": e.customer, "from": from, "to": e.change.to, "run_id": e.change.run_id}),
                context
            ),
        });
        NewDelivery {
            customer: e.customer_key,
            event_id: id,
            event_type: EventType::StageChanged.as_str().into(),
            payload: body.to_string(),
        }
    })
}

/// The delivery of a segment transition, if the subscription wants it.
pub fn transition(s: &Subscription, t: &Transition, context: Option<&CustomerContext>) -> Option<NewDelivery> {
    let kind = match t.kind.as_str() {
        "enter" => EventType::SegmentEntered,
        "exit" => EventType::SegmentExited,
        _ => return None,
    };
    let wanted = s.events.contains(&kind) && s.segments.as_ref().is_none_or(|names| names.contains(&t.segment));
    wanted.then(|| {
        let id = format!("segment_transition:{}", t.id);
        let body = json!({
            "id": id,
            "type": kind.as_str(),
            "created_at": t.time,
            "data": with_context(
                json!({"customer": t.customer, "segment": t.segment, "segment_id": t.segment_id}),
                context
            ),
        });
        NewDelivery {
            customer: t.customer_key,
            event_id: id,
            event_type: kind.as_str().into(),
            payload: body.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use kanta_store::StageChange;

    use super::*;

    fn stage(id: i64, from: Option<&str>, to: &str) -> StageEvent {
        StageEvent {
            id,
            customer: "00042".into(),
            customer_key: 42,
            change: StageChange {
                run_id: 7,
                time: "2024-03-01T00:00:00Z".into(),
                from: from.map(str::to_string),
                to: to.into(),
            },
        }
    }

    fn moved(id: i64, segment: &str, kind: &str) -> Transition {
        Transition {
            id,
            segment_id: 3,
            segment: segment.into(),
            customer: "c7".into(),
            customer_key: 7,
            kind: kind.into(),
            time: "2024-03-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn bodies_carry_a_stable_id_type_time_and_data() {
        let all = Subscription::default();
        let d = stage_change(&all, &stage(12, Some("loyal"), "slipping"), None).expect("wanted");
        assert_eq!(
            (d.event_id.as_str(), d.event_type.as_str(), d.customer),
            ("stage_change:12", "customer.stage_changed", 42)
        );
        assert_eq!(
            d.payload,
            r#"{"id":"stage_change:12","type":"customer.stage_changed","created_at":"2024-03-01T00:00:00Z","data":{"customer":"00042","from":"loyal","to":"slipping","run_id":7}}"#
        );
        let d = transition(&all, &moved(5, "vip", "exit"), None).expect("wanted");
        assert_eq!(
            d.payload,
            r#"{"id":"segment_transition:5","type":"segment.exited","created_at":"2024-03-01T00:00:01Z","data":{"customer":"c7","segment":"vip","segment_id":3}}"#
        );
        let context = CustomerContext {
            email: Some("c7@example.com".into()),
            name: None,
            stage: Some("slipping".into()),
            value_tier: Some("top".into()),
            clv_12m: Some(512.5),
            p_alive: Some(0.25),
            next_category: Some("grinders".into()),
        };
        let d = transition(&all, &moved(6, "vip", "enter"), Some(&context)).expect("wanted");
        assert_eq!(
            d.payload,
            r#"{"id":"segment_transition:6","type":"segment.entered","created_at":"2024-03-01T00:00:01Z","data":{"customer":"c7","segment":"vip","segment_id":3,"profile":{"email":"c7@example.com","name":null},"scores":{"stage":"slipping","value_tier":"top","clv_12m":512.5,"p_alive":0.25,"next_category":"grinders"}}}"#
        );
    }

    #[test]
    fn subscriptions_filter_by_type_segment_and_stage_and_first_stages_are_not_events() {
        let all = Subscription::default();
        assert_eq!(stage_change(&all, &stage(1, None, "new"), None), None);
        let narrow = Subscription {
            events: vec![EventType::SegmentEntered, EventType::StageChanged],
            segments: Some(vec!["slipping-high-value".into()]),
            stages: Some(vec!["slipping".into(), "lost".into()]),
        };
        assert!(stage_change(&narrow, &stage(2, Some("loyal"), "slipping"), None).is_some());
        assert!(stage_change(&narrow, &stage(3, Some("new"), "repeat"), None).is_none());
        assert!(transition(&narrow, &moved(4, "slipping-high-value", "enter"), None).is_some());
        assert!(transition(&narrow, &moved(5, "slipping-high-value", "exit"), None).is_none(), "exits not subscribed");
        assert!(transition(&narrow, &moved(6, "vip", "enter"), None).is_none(), "other segment");
        let segments_only = Subscription { events: vec![EventType::SegmentExited], ..Subscription::default() };
        assert!(stage_change(&segments_only, &stage(7, Some("loyal"), "lost"), None).is_none());
    }
}
