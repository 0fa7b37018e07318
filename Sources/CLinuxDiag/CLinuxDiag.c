// The module exists for its header; what needs glibc's GNU extensions is defined here.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "CLinuxDiag.h"

int cld_usable_cpus(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// Defined by the linker around the executable's .bss.
extern char __bss_start[], _end[];


int cld_populate_touched(uintptr_t from, uintptr_t to) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    size_t count = (to - from) / page;
    unsigned char *mapped = malloc(count ? count : 1);
    if (!mapped) return ENOMEM;
    int code = mincore((void *)from, to - from, mapped) == 0 ? 0 : errno;
    for (size_t first = 0; first < count && code == 0;) {
        if (!(mapped[first] & 1)) { first++; continue; }
        size_t end = first;
        while (end < count && (mapped[end] & 1)) end++;
        // Where the advice is refused, the pages are faulted in one by one as before.
        if (madvise((void *)(from + first * page), (end - first) * page, MADV_POPULATE_WRITE) != 0) code = errno;
        first = end;
    }
    free(mapped);
    return code;
}

void cld_populate_bss(void) {
    // The pages that hold the executable's .bss.
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    (void)cld_populate_touched((uintptr_t)__bss_start & ~(page - 1), ((uintptr_t)_end + page - 1) & ~(page - 1));
}

struct cld_start {
    void *(*start)(void *);
    void *argument;
    int restore;
    cpu_set_t allowed;
};

static void *cld_start_anywhere(void *pointer) {
    struct cld_start start = *(struct cld_start *)pointer;
    free(pointer);
    if (start.restore) sched_setaffinity(0, sizeof start.allowed, &start.allowed);
    return start.start(start.argument);
}

int cld_thread_create_elsewhere(pthread_t *thread, void *(*start)(void *), void *argument) {
    struct cld_start *trampoline = malloc(sizeof *trampoline);
    if (!trampoline) return pthread_create(thread, 0, start, argument);
    trampoline->start = start;
    trampoline->argument = argument;
    trampoline->restore = 0;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    int here = sched_getcpu();
    if (here >= 0 && sched_getaffinity(0, sizeof trampoline->allowed, &trampoline->allowed) == 0) {
        cpu_set_t others = trampoline->allowed;
        CPU_CLR(here, &others);
        if (CPU_COUNT(&others) > 0 && pthread_attr_setaffinity_np(&attributes, sizeof others, &others) == 0) {
            trampoline->restore = 1;
        }
    }
    int result = pthread_create(thread, &attributes, cld_start_anywhere, trampoline);
    pthread_attr_destroy(&attributes);
    if (result != 0 && trampoline->restore) {
        // glibc applies the affinity after the clone; where that is refused (a sandbox, a
        // cpuset that shrank meanwhile), a thread started anywhere is still a helper.
        trampoline->restore = 0;
        result = pthread_create(thread, 0, cld_start_anywhere, trampoline);
    }
    if (result != 0) free(trampoline);
    return result;
}
