//! Segment refresh: after each scoring run every saved segment's members are recomputed and the
//! customers who entered or left are recorded (the transitions webhooks deliver).

use kanta_store::{RefreshCounts, SegmentInfo, Storage};

use crate::JobError;

/// What refreshing one segment did.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    /// The segment as it was before the refresh.
    pub segment: SegmentInfo,
    /// Entered, exited, members — or why the refresh failed (e.g. an expression that names a
    /// field an older version knew).
    pub result: Result<RefreshCounts, String>,
}

/// Refresh every saved segment at `now`, one transaction each; a segment that fails does not
/// stop the others.
pub async fn refresh_all(store: &dyn Storage, now: i64) -> Result<Vec<Refreshed>, JobError> {
    let mut out = Vec::new();
    for segment in store.segments().await? {
        let result = match kanta_segment::parse(&segment.expression) {
            Ok(expr) => store.refresh_segment(segment.id, &expr, now).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("invalid expression: {e}")),
        };
        out.push(Refreshed { segment, result });
    }
    Ok(out)
}

/// One line per segment, for logs and `kanta score`.
pub fn describe(refreshed: &[Refreshed]) -> Vec<String> {
    refreshed
        .iter()
        .map(|r| match &r.result {
            Ok(c) => {
                format!("segment `{}`: {} members, {} entered, {} left", r.segment.name, c.members, c.entered, c.exited)
            }
            Err(e) => format!("segment `{}`: not refreshed: {e}", r.segment.name),
        })
        .collect()
}
