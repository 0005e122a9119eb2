//! Pinning threads to cores (core_affinity), as production runs feed and core threads.

/// Pins the calling thread to `cpu`; false where the machine has no such core or refuses.
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == cpu)
        .is_some_and(core_affinity::set_for_current)
}

pub(crate) fn pin(cpu: Option<usize>, what: &str) {
    if let Some(cpu) = cpu {
        if !pin_current_thread(cpu) {
            eprintln!("run: could not pin the {what} thread to cpu {cpu}; running unpinned");
        }
    }
}
