#ifndef CLINUXDIAG_H
#define CLINUXDIAG_H

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

// NLMSG_* are macros, which Swift cannot import; these mirror them.
static inline unsigned int cld_nlmsg_align(unsigned int len) { return NLMSG_ALIGN(len); }
static inline unsigned int cld_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }

// getdents64 straight from the kernel: readdir() would add an fstat and an fcntl per
// directory (fdopendir) and copy each entry into its own struct.
static inline long cld_getdents64(int fd, void *buffer, unsigned long size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

// One sock_diag dump request, as the kernel expects it on the wire.
struct cld_diag_request {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
};

#endif
