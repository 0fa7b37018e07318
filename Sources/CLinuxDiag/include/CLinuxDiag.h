#ifndef CLINUXDIAG_H
#define CLINUXDIAG_H

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sqlite3.h>

// NLMSG_* are macros, which Swift cannot import; these mirror them.
static inline unsigned int cld_nlmsg_align(unsigned int len) { return NLMSG_ALIGN(len); }
static inline unsigned int cld_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }

// getdents64 straight from the kernel: readdir() would add an fstat and an fcntl per
// directory (fdopendir) and copy each entry into its own struct.
static inline long cld_getdents64(int fd, void *buffer, unsigned long size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

// sqlite3_config is variadic too, and takes effect only before SQLite is first used (later
// calls return SQLITE_MISUSE and change nothing). URI filenames ("file:...?immutable=1") for
// every connection; no global memory statistics, which nothing reads and which cost a mutex
// around every allocation SQLite makes.
static inline void cld_sqlite_configure(void) {
    sqlite3_config(SQLITE_CONFIG_URI, 1);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

// sqlite3_db_config is variadic, which Swift cannot call. With this set, closing the store
// leaves the WAL as it is; the store decides when to checkpoint (Store.trimWAL).
static inline int cld_sqlite_keep_wal_on_close(void *db) {
    return sqlite3_db_config((sqlite3 *)db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

// CPUs this process may run on (CPU_COUNT is a macro, which Swift cannot import). Unlike
// Foundation's activeProcessorCount it reads no cgroup quota files on every run: under a
// one-CPU quota the walk's two threads share that CPU.
int cld_usable_cpus(void);

// pthread_create, but the thread starts on a CPU other than the caller's when the caller may
// use one, and then takes the caller's affinity mask (what it would have inherited). Left to
// the scheduler, a new thread was queued behind its busy creator on the same CPU and started
// 3.6 ms later (median of 30, 2-CPU VM, the other CPU idle); sent elsewhere, it started within
// 0.1 to 0.4 ms. Where every other CPU is busy it may start later than it would have; the
// work it was made for does not wait for it (Parallel: the caller takes what is not begun).
int cld_thread_create_elsewhere(pthread_t *thread, void *(*start)(void *), void *argument);

// Gives each page of anonymous memory in [from, to) that is mapped, a page only read so far
// included (the kernel's shared zero page), a page of its own, and leaves the others unmapped
// (mincore; a page of a file counts as mapped when the file's page is cached); says whether
// the kernel did (0) or why not (an errno: EINVAL before Linux 5.14). The first write to a
// zero-page mapping replaces it, and once the process has a second thread on another CPU
// that interrupts the other CPU to flush its TLB, in a VM a trap to the hypervisor; a page
// not mapped yet needs no flush when it is.
int cld_populate_touched(uintptr_t from, uintptr_t to);

// cld_populate_touched over the executable's .bss (with the static Swift runtime, its
// once-tokens and metadata caches among others), before the first helper thread starts.
void cld_populate_bss(void);

// One sock_diag dump request, as the kernel expects it on the wire.
struct cld_diag_request {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
};

// The original inet_diag request (TCPDIAG_GETSOCK), which accepts AF_UNSPEC.
struct cld_diag_request_compat {
    struct nlmsghdr header;
    struct inet_diag_req request;
};

// Joins the network namespace open at fd, for the calling thread only. Through syscall(2)
// so that it does not depend on which glibc declarations the Swift Glibc module exposes.
static inline int cld_setns_net(int fd) { return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */); }

#endif
