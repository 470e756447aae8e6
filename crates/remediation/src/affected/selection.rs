//! The response's share of an archive audit, as `affected` and `incident` take it (and the
//! Spark job will): each evaluated message's findings at or above the threshold go to the
//! affected list, those below it are counted apart (to say how many addresses the threshold
//! left out), and who saw the exposed addresses without being shown goes to its own list.

use super::{AffectedAccumulator, SawOthers};
use leakaudit_policy::{Evaluation, Severity};
use leakaudit_scanner::Location;

pub struct Selection {
    /// `--min-severity`: the response takes findings at or above it.
    pub min: Severity,
    pub acc: AffectedAccumulator,
    pub below: AffectedAccumulator,
    pub saw: SawOthers,
}

impl Selection {
    pub fn new(min: Severity) -> Selection {
        Selection {
            min,
            acc: AffectedAccumulator::new(),
            below: AffectedAccumulator::new(),
            saw: SawOthers::new(),
        }
    }

    /// One evaluated message.
    pub fn add(&mut self, location: &Location, eval: &Evaluation) {
        for f in &eval.findings {
            if f.severity >= self.min {
                self.acc.add(f);
            } else {
                self.below.add(f);
            }
        }
        // Its envelope-only recipients, when the response takes its exposure.
        if let Some(f) = eval
            .findings
            .iter()
            .find(|f| !f.exposed.is_empty() && f.severity >= self.min)
        {
            self.saw.add(
                f.message_id.as_deref(),
                location,
                f.date,
                &eval.exposure.saw_others,
            );
        }
    }

    /// Addresses listed only below the threshold. Both lists come sorted by address: a
    /// merge, not a set of every listed address.
    pub fn below_only(&self) -> usize {
        if self.below.is_empty() {
            return 0;
        }
        let mut listed = self.acc.rows_iter().map(|r| r.address).peekable();
        self.below
            .rows_iter()
            .filter(|r| {
                while listed.next_if(|a| *a < r.address).is_some() {}
                listed.peek() != Some(&r.address)
            })
            .count()
    }
}
