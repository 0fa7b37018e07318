// The module exists for its header; what needs glibc's GNU extensions is defined here.
#define _GNU_SOURCE
#include <sched.h>
#include "CLinuxDiag.h"

int cld_usable_cpus(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}
