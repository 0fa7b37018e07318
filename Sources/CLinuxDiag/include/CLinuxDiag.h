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

// One sock_diag dump request, as the kernel expects it on the wire.
struct cld_diag_request {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
};

// Joins the network namespace open at fd, for the calling thread only. Through syscall(2)
// so that it does not depend on which glibc declarations the Swift Glibc module exposes.
static inline int cld_setns_net(int fd) { return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */); }

#endif
