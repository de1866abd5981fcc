//! A `tracing` subscriber for tests: it keeps every event as one line of text, its level then
//! each field as ` name=value` (the message as ` message=...`), so a test can look for a log
//! line or count them. Spans are ignored.

use std::sync::{Arc, Mutex};

/// The events logged while it is a subscriber (default or global). Cloning shares them.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(event.metadata().level().to_string());
        event.record(&mut f);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Captured {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines at level WARN.
    pub fn warnings(&self) -> Vec<String> {
        self.lines().into_iter().filter(|e| e.starts_with("WARN")).collect()
    }

    /// How many lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|l| l.contains(text)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_as_level_and_fields() {
        let c = Captured::default();
        tracing::subscriber::with_default(c.clone(), || {
            tracing::warn!(path = "/x", "private directory open");
            tracing::info!("accept failed");
            tracing::info!("accept failed");
        });
        assert_eq!(c.warnings(), ["WARN message=private directory open path=\"/x\""]);
        assert_eq!(c.count("accept failed"), 2);
        assert_eq!(c.lines().len(), 3);
    }
}
