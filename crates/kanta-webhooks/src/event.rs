//! Events and their JSON bodies. Every body is
//! `{"id", "type", "created_at", "data": {...}}`; `id` is the same for every endpoint and
//! every retry, so a receiver can drop duplicates.
//!
//! - `customer.stage_changed`: `data = {"customer", "from", "to", "run_id"}` — a scoring run
//!   moved the customer between lifecycle stages. A customer's first stage (`from` would be
//!   null) is not an event: the first run would otherwise announce every customer. Subscribe to
//!   a segment such as `stage = "new"` to hear about newcomers.
//! - `segment.entered` / `segment.exited`: `data = {"customer", "segment", "segment_id"}`.
//!   A new segment's first membership is a baseline, not entries.

use kanta_store::{NewDelivery, StageEvent, Transition};
use serde_json::json;

use crate::endpoint::{EventType, Subscription};

/// The delivery of a stage change, if the subscription wants it.
pub fn stage_change(s: &Subscription, e: &StageEvent) -> Option<NewDelivery> {
    let from = e.change.from.as_deref()?;
    let wanted = s.events.contains(&EventType::StageChanged)
        && s.stages.as_ref().is_none_or(|stages| stages.contains(&e.change.to));
    wanted.then(|| {
        let id = format!("stage_change:{}", e.id);
        let body = json!({
            "id": id,
            "type": EventType::StageChanged.as_str(),
            "created_at": e.change.time,
            "data": {"customer": e.customer, "from": from, "to": e.change.to, "run_id": e.change.run_id},
        });
        NewDelivery { event_id: id, event_type: EventType::StageChanged.as_str().into(), payload: body.to_string() }
    })
}

/// The delivery of a segment transition, if the subscription wants it.
pub fn transition(s: &Subscription, t: &Transition) -> Option<NewDelivery> {
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
            "data": {"customer": t.customer, "segment": t.segment, "segment_id": t.segment_id},
        });
        NewDelivery { event_id: id, event_type: kind.as_str().into(), payload: body.to_string() }
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
            kind: kind.into(),
            time: "2024-03-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn bodies_carry_a_stable_id_type_time_and_data() {
        let all = Subscription::default();
        let d = stage_change(&all, &stage(12, Some("loyal"), "slipping")).expect("wanted");
        assert_eq!((d.event_id.as_str(), d.event_type.as_str()), ("stage_change:12", "customer.stage_changed"));
        assert_eq!(
            d.payload,
            r#"{"id":"stage_change:12","type":"customer.stage_changed","created_at":"2024-03-01T00:00:00Z","data":{"customer":"00042","from":"loyal","to":"slipping","run_id":7}}"#
        );
        let d = transition(&all, &moved(5, "vip", "exit")).expect("wanted");
        assert_eq!(
            d.payload,
            r#"{"id":"segment_transition:5","type":"segment.exited","created_at":"2024-03-01T00:00:01Z","data":{"customer":"c7","segment":"vip","segment_id":3}}"#
        );
    }

    #[test]
    fn subscriptions_filter_by_type_segment_and_stage_and_first_stages_are_not_events() {
        let all = Subscription::default();
        assert_eq!(stage_change(&all, &stage(1, None, "new")), None);
        let narrow = Subscription {
            events: vec![EventType::SegmentEntered, EventType::StageChanged],
            segments: Some(vec!["slipping-high-value".into()]),
            stages: Some(vec!["slipping".into(), "lost".into()]),
        };
        assert!(stage_change(&narrow, &stage(2, Some("loyal"), "slipping")).is_some());
        assert!(stage_change(&narrow, &stage(3, Some("new"), "repeat")).is_none());
        assert!(transition(&narrow, &moved(4, "slipping-high-value", "enter")).is_some());
        assert!(transition(&narrow, &moved(5, "slipping-high-value", "exit")).is_none(), "exits not subscribed");
        assert!(transition(&narrow, &moved(6, "vip", "enter")).is_none(), "other segment");
        let segments_only = Subscription { events: vec![EventType::SegmentExited], ..Subscription::default() };
        assert!(stage_change(&segments_only, &stage(7, Some("loyal"), "lost")).is_none());
    }
}
