//! What templates see and what the guardrails need, read from the customer's record: the
//! profile, consent, the effective zone, the latest scores and recent orders.

use chrono_tz::Tz;
use kanta_domain::contact::TimeZoneName;
use kanta_journey::ConsentState;
use kanta_mail::context::{CustomerContext, LineContext, MessageContext, OrderContext, ScoresContext};
use kanta_store::CustomerRecord;

/// Orders a template sees, newest first.
const RECENT_ORDERS: usize = 10;

/// The template context of `record`, with `unsubscribe_url` for marketing mail.
pub(crate) fn message_context(record: &CustomerRecord, unsubscribe_url: Option<String>) -> MessageContext {
    let p = &record.profile;
    let attributes = match &p.attributes {
        Some(serde_json::Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let customer = CustomerContext {
        id: p.id.clone(),
        email: p.email.clone(),
        name: p.name.clone(),
        phone: p.phone.clone(),
        timezone: p.timezone.clone(),
        locale: p.locale.clone(),
        birthday: p.birthday.clone(),
        attributes,
    };
    let scores = record.scores.as_ref().map(|s| ScoresContext {
        r: s.r,
        f: s.f,
        m: s.m,
        rfm_segment: s.rfm_segment.clone(),
        stage: s.stage.clone(),
        value_tier: s.value_tier.clone(),
        main_category: s.main_category.clone(),
        p_alive: s.model.map(|m| m.p_alive),
        expected_30d: s.model.map(|m| m.expected_30d),
        clv_12m: s.model.and_then(|m| m.clv_12m),
        next_purchase: s.model.and_then(|m| m.next_purchase_at).map(|t| t.to_rfc3339()),
    });
    let orders = record
        .orders
        .iter()
        .rev()
        .take(RECENT_ORDERS)
        .map(|o| OrderContext {
            id: o.id.clone(),
            time: o.time.clone(),
            amount: o.amount,
            currency: o.currency.clone(),
            status: o.status.clone(),
            lines: o
                .lines
                .iter()
                .map(|l| LineContext {
                    product: l.product.clone(),
                    category: l.category.clone(),
                    quantity: l.quantity,
                    price: l.price,
                })
                .collect(),
        })
        .collect();
    MessageContext {
        customer,
        scores,
        orders,
        next_category: record.scores.as_ref().and_then(|s| s.next_category.clone()),
        unsubscribe_url,
    }
}

/// The customer's email consent as the guardrails read it (the latest change wins).
pub(crate) fn email_consent(record: &CustomerRecord) -> ConsentState {
    match record.consent.iter().find(|c| c.channel == "email").map(|c| c.status.as_str()) {
        Some("granted") => ConsentState::Granted,
        Some("revoked") => ConsentState::Revoked,
        _ => ConsentState::NeverGiven,
    }
}

/// The zone of the customer's local times: theirs → the journey's → the settings' → UTC.
/// A stored zone the database does not know is passed over (and logged).
pub(crate) fn zone(record: Option<&CustomerRecord>, journey: Option<Tz>, settings: Option<Tz>) -> Tz {
    let name = record.and_then(|r| r.profile.timezone.as_deref()).and_then(|tz| TimeZoneName::parse(tz).ok());
    let effective = kanta_journey::effective_zone(name.as_ref(), journey, settings);
    if let Some(unknown) = &effective.unknown_customer_zone {
        tracing::warn!("journey engine: customer zone passed over: {unknown}");
    }
    effective.tz
}
