//! Panics during a seed are findings, not crashes of the simulator: each seed runs
//! under `catch_unwind`, and the panic's message and place become its violation.
//! While a seed runs, the panic hook records the message instead of printing it
//! (thousands of seeds would otherwise flood the terminal); outside a seed the
//! previous hook runs as before.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IN_SEED: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_SEED.with(Cell::get) {
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                LAST.with(|l| *l.borrow_mut() = Some(format!("{text}{place}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic comes back as `Err` with its message and place.
pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    IN_SEED.with(|s| s.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    IN_SEED.with(|s| s.set(false));
    r.map_err(|_| {
        let what = LAST
            .with(|l| l.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into());
        format!("panic: {what}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_message_with_its_place() {
        assert_eq!(catch(|| 7), Ok(7));
        let e = catch(|| {
            let v: Vec<u8> = Vec::new();
            v[3]
        })
        .unwrap_err();
        assert!(e.starts_with("panic: index out of bounds"), "{e}");
        assert!(e.contains("panics.rs"), "{e}");
    }
}
