//! Lines up several series that share a clock (a price bar, the spot and perp aggregate
//! bars of the same period; a book row and a bar of the same second) so a strategy sees
//! each step's values together, whatever order the engine made them in.
//!
//! ```text
//! input 0: (ts, value) --\
//! input 1: (ts, value) ----> SeriesJoin::push --> (ts, [value; N]) once every input has ts
//! input 2: (ts, value) --/
//! ```
//!
//! Why: live, the venues' messages interleave differently from one run to the next (and
//! from the replay), so the second input of a step may come before or after the first.
//! Deciding on a step only once all its inputs are in makes the decision a function of
//! the data alone, which is what makes live equal replay.
//!
//! A step is complete the moment its last input arrives, and since every input's steps
//! only grow, complete steps leave in order. A step that one input skips (a gap in its
//! series) never completes; it is dropped when a later step needs its slot. Inputs may
//! drift apart by up to [`JOIN_STEPS`] steps; a value further behind than that finds its
//! slot taken, is dropped and counted.

/// How many steps the inputs of a join may drift apart.
pub const JOIN_STEPS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Slot<T, const N: usize> {
    ts_ms: i64,
    values: [Option<T>; N],
    /// Already handed out: a later value for this step is dropped, not joined again.
    done: bool,
}

/// Joins `N` series of one step length.
#[derive(Debug, Clone)]
pub struct SeriesJoin<T: Copy, const N: usize> {
    step_ms: i64,
    slots: [Option<Slot<T, N>>; JOIN_STEPS],
    /// Values dropped: their step's slot was taken by a later step, or it already left.
    dropped: u64,
    /// Steps that never completed (an input skipped them).
    incomplete: u64,
}

impl<T: Copy, const N: usize> SeriesJoin<T, N> {
    /// A join of series whose steps start at multiples of `step_ms` (at least 1).
    pub fn new(step_ms: i64) -> Self {
        Self {
            step_ms: step_ms.max(1),
            slots: [None; JOIN_STEPS],
            dropped: 0,
            incomplete: 0,
        }
    }

    /// Takes input `input`'s value for the step starting at `ts_ms`; hands every step
    /// this completes to `out` with all `N` values.
    ///
    /// # Panics
    /// If `input >= N`: a strategy names its inputs by constant.
    pub fn push(&mut self, input: usize, ts_ms: i64, value: T, out: impl FnOnce(i64, [T; N])) {
        let step = ts_ms.div_euclid(self.step_ms);
        let index = step.rem_euclid(JOIN_STEPS as i64) as usize;
        let slot = &mut self.slots[index];
        match slot {
            Some(s) if s.ts_ms == ts_ms && !s.done => {}
            Some(s) if s.ts_ms >= ts_ms => {
                self.dropped += 1;
                return;
            }
            _ => {
                if slot.is_some_and(|s| !s.done) {
                    self.incomplete += 1;
                }
                *slot = Some(Slot {
                    ts_ms,
                    values: [None; N],
                    done: false,
                });
            }
        }
        let s = slot.as_mut().expect("filled above");
        if s.values[input].replace(value).is_some() {
            // The same input twice for one step: the engine never does this.
            self.dropped += 1;
        }
        if s.values.iter().all(Option::is_some) {
            s.done = true;
            out(ts_ms, s.values.map(|v| v.expect("all present")));
        }
    }

    /// Values dropped because they came more than [`JOIN_STEPS`] steps behind another
    /// input, or twice.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Steps that never completed because an input skipped them.
    pub fn incomplete(&self) -> u64 {
        self.incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pushes: &[(usize, i64)]) -> (Vec<i64>, u64, u64) {
        let mut join = SeriesJoin::<i64, 2>::new(1000);
        let mut done = Vec::new();
        for &(input, ts) in pushes {
            join.push(input, ts, ts + input as i64, |t, v| {
                assert_eq!(v, [t, t + 1]);
                done.push(t);
            });
        }
        (done, join.dropped(), join.incomplete())
    }

    #[test]
    fn steps_leave_once_every_input_has_them_in_either_order() {
        let a = run(&[(0, 0), (0, 1000), (1, 0), (1, 1000), (0, 2000)]);
        let b = run(&[(1, 0), (0, 0), (1, 1000), (1, 2000), (0, 1000)]);
        assert_eq!(a.0, vec![0, 1000]);
        assert_eq!(b.0, vec![0, 1000]);
    }

    #[test]
    fn a_skipped_step_is_counted_when_its_slot_is_reused_and_a_late_value_is_dropped() {
        // Input 1 skips 0; the slot of step 0 is reused by step 16.
        let mut pushes = vec![(0, 0)];
        for s in 1..=16 {
            pushes.push((0, s * 1000));
            pushes.push((1, s * 1000));
        }
        let (done, dropped, incomplete) = run(&pushes);
        assert_eq!(done, (1..=16).map(|s| s * 1000).collect::<Vec<_>>());
        assert_eq!((dropped, incomplete), (0, 1));
        // A value for step 0 now is far behind: its slot is gone.
        let mut late = pushes.clone();
        late.push((1, 0));
        assert_eq!(run(&late).1, 1);
    }
}
