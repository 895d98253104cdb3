//! A value kept with the key it was computed for (a `static` in the answer that needs
//! it): answers that come while the key is the same get it without computing it again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The last value computed, with the key it was computed for.
pub(super) struct Kept<K, V> {
    last: Mutex<Option<(K, V)>>,
    /// A new value is being made on a thread of its own ([`Kept::get_or_refresh`]).
    busy: AtomicBool,
}

impl<K: PartialEq + Clone, V: Clone> Kept<K, V> {
    pub(super) const fn new() -> Self {
        Kept {
            last: Mutex::new(None),
            busy: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(K, V)>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key`: the one kept, or a new one from `make`.
    pub(super) fn get_or(&self, key: K, make: impl FnOnce() -> V) -> V {
        if let Some((k, v)) = self.lock().as_ref() {
            if *k == key {
                return v.clone();
            }
        }
        // Made outside the lock: a slow fold does not hold up the other answers.
        let v = make();
        *self.lock() = Some((key, v.clone()));
        v
    }

    /// As [`Kept::get_or`], but where the value kept was made for a key that `near`
    /// accepts, that value is given once more while a new one is made on a thread of
    /// its own (one at a time): only an answer with no near value waits for `make`.
    pub(super) fn get_or_refresh(
        &'static self,
        key: K,
        near: impl FnOnce(&K) -> bool,
        make: impl FnOnce() -> V + Send + 'static,
    ) -> V
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let held = self.lock().clone();
        match held {
            Some((k, v)) if k == key => v,
            Some((k, v)) if near(&k) => {
                if !self.busy.swap(true, Ordering::SeqCst) {
                    std::thread::spawn(move || {
                        let v = make();
                        *self.lock() = Some((key, v));
                        self.busy.store(false, Ordering::SeqCst);
                    });
                }
                v
            }
            _ => {
                let v = make();
                *self.lock() = Some((key, v.clone()));
                v
            }
        }
    }
}
