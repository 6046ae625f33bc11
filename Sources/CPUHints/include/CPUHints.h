#ifndef MOESIM_CPU_HINTS_H
#define MOESIM_CPU_HINTS_H

// Swift has no prefetch instruction of its own; this inline wrapper gives the panel kernels one.
// A prefetch retires at once, so the kernel keeps computing while the line travels from memory
// (a plain load that misses would hold up retirement for the whole memory latency).
static inline void moesim_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

#endif
