//! Phase timings for the benchmarks.

/// Phase timings on standard error when `KANTA_TIMINGS` is set (used by the benchmarks).
pub struct Timings {
    last: Option<std::cell::Cell<std::time::Instant>>,
}

impl Timings {
    pub fn from_env() -> Timings {
        Timings { last: std::env::var_os("KANTA_TIMINGS").map(|_| std::cell::Cell::new(std::time::Instant::now())) }
    }

    pub fn mark(&self, phase: &str) {
        if let Some(last) = &self.last {
            let now = std::time::Instant::now();
            eprintln!("timing: {phase}: {:.3} s", (now - last.get()).as_secs_f64());
            last.set(now);
        }
    }
}
