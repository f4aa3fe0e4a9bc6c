//! Unwinds a parked thread's stack into return addresses with framehop, from the `.eh_frame`
//! tables of the loaded objects (no frame pointers needed; framehop falls back to them where
//! a module has no table). Runs on the watchdog while the thread is parked, so nothing here
//! allocates during the unwind (`MustNotAllocateDuringUnwind`, a fixed output buffer).
use framehop::{
    CacheNative, ExplicitModuleSectionInfo, Module, MustNotAllocateDuringUnwind, UnwindRegsNative,
    Unwinder, UnwinderNative,
};

use super::signal::{Parked, loaded_modules};

/// The deepest stack we keep; actix handler stacks are ~40 frames.
pub(crate) const MAX_FRAMES: usize = 128;

pub(crate) struct StackUnwinder {
    unwinder: UnwinderNative<Vec<u8>, MustNotAllocateDuringUnwind>,
    cache: CacheNative<MustNotAllocateDuringUnwind>,
}

impl StackUnwinder {
    /// Reads the unwind tables of every object loaded now (once, at start: loopscope loads
    /// no libraries later).
    pub(crate) fn new() -> Self {
        let mut unwinder = UnwinderNative::new();
        for m in loaded_modules() {
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: m.text_svma,
                eh_frame_svma: m.eh_frame.as_ref().map(|(r, _)| r.clone()),
                eh_frame: m.eh_frame.map(|(_, d)| d),
                eh_frame_hdr_svma: m.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
                eh_frame_hdr: m.eh_frame_hdr.map(|(_, d)| d),
                ..Default::default()
            };
            unwinder.add_module(Module::new(m.name, m.avma, m.base, info));
        }
        Self {
            unwinder,
            cache: CacheNative::new_in(),
        }
    }

    /// Fills `out` with lookup addresses (innermost first: the interrupted instruction, then
    /// each return address minus one) and returns how many.
    pub(crate) fn unwind(&mut self, parked: &Parked<'_>, out: &mut [u64; MAX_FRAMES]) -> usize {
        #[cfg(target_arch = "aarch64")]
        let regs = UnwindRegsNative::new(parked.lr, parked.sp, parked.fp);
        #[cfg(not(target_arch = "aarch64"))]
        let regs = UnwindRegsNative::new(parked.pc, parked.sp, parked.fp);
        let mut read = |addr| parked.read_stack(addr);
        let mut frames = self
            .unwinder
            .iter_frames(parked.pc, regs, &mut self.cache, &mut read);
        let mut n = 0;
        while n < MAX_FRAMES {
            match frames.next() {
                Ok(Some(frame)) => {
                    out[n] = frame.address_for_lookup();
                    n += 1;
                }
                // The end of the stack, or a frame we cannot unwind past: keep what we have.
                Ok(None) | Err(_) => break,
            }
        }
        n
    }
}
